/**
 * open_nsfw and its INT8 / FP16 variants through Triton (prints tables; not a test).
 *
 *   node dist/bench/models.js [--url host:port] [--models open_nsfw,open_nsfw_int8,open_nsfw_fp16]
 *        [--batches 1,8,32] [--seconds 6] [--warmup 1]
 *
 * Throughput table, per model and batch size: one client, one request at a time (closed loop) for
 * --seconds of batches of real images (the evaluation set, cycled), in --rounds slices that
 * alternate between the models (A B C A B C …), so a change in the shared machine's load weighs on
 * every model alike rather than on whichever ran then: frames/s (and its ratio to FP32), p50/p99 request
 * latency as the client sees it, Triton's compute time per frame (ModelStatistics compute_infer
 * over the cell divided by the frames it ran: the backend's own time, without queueing or
 * transfer), and the RSS of the model's backend process (its Python-backend stub, where
 * onnxruntime runs) after the cell. The machine's load average is printed with every row: the
 * cores are shared.
 *
 * Agreement table: every variant against open_nsfw (FP32) on the evaluation set of
 * scripts/models/images.py (≥ 200 images, none of them in the calibration set): top-1 agreement,
 * mean and max |Δ nsfw score|, and how many images cross the 0.5 threshold either way.
 *
 * Default Triton: FRAMEWIRE_TRITON_URL, else the stack's 127.0.0.1:8001.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { TritonClient } from '../src/infer/triton/client.js';
import { classificationRequest, describeModel, parseClassification, type ModelSpec } from '../src/infer/triton/model.js';
import type { ModelStatistics } from '../src/infer/triton/types.js';
import { IMAGE_BYTES, modelImages, type ImageSet } from '../test/helpers/images.js';
import { quantile } from './lib.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.FRAMEWIRE_TRITON_URL ?? '127.0.0.1:8001' },
    models: { type: 'string', default: 'open_nsfw,open_nsfw_int8,open_nsfw_fp16' },
    batches: { type: 'string', default: '1,8,32' },
    seconds: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '3' },
  },
});
const MODELS = values.models!.split(',');
const BATCHES = values.batches!.split(',').map(Number);
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);
const ROUNDS = Math.max(1, Number(values.rounds));
const REFERENCE = 'open_nsfw';

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** The tritonserver listening on this gRPC port, and the RSS of a model's backend stub in its process group. */
function tritonPid(port: string): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (args[0]?.endsWith('tritonserver') && args.includes(`--grpc-port=${port}`)) return Number(name);
    } catch {
      /* exited */
    }
  }
  return undefined;
}

function stubRssMb(tritonPgid: number | undefined, model: string): number {
  if (tritonPgid === undefined) return Number.NaN;
  let mb = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      if (pgid !== tritonPgid) continue;
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (!cmd.includes(`/${model}/`) || !cmd.includes('model.py')) continue;
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${name}/status`, 'utf8'));
      if (m) mb += Number(m[1]) / 1024;
    } catch {
      /* exited */
    }
  }
  return mb || Number.NaN;
}

async function stats(client: TritonClient, model: string): Promise<ModelStatistics> {
  return (await client.modelStatistics(model))[0]!;
}

/** A batch of `n` images starting at image `from` of the set (cycled). */
function batchOf(set: ImageSet, from: number, n: number): Buffer {
  const count = set.names.length;
  const out = Buffer.allocUnsafe(n * IMAGE_BYTES);
  for (let i = 0; i < n; i++) {
    const k = (from + i) % count;
    set.pixels.copy(out, i * IMAGE_BYTES, k * IMAGE_BYTES, (k + 1) * IMAGE_BYTES);
  }
  return out;
}

interface Cell {
  spec: ModelSpec;
  batch: number;
  tensors: Buffer[];
  k: number;
  lat: number[];
  elapsed: number;
  inferred: number;
  computeNs: number;
}

function cell(spec: ModelSpec, set: ImageSet, batch: number): Cell {
  return { spec, batch, tensors: Array.from({ length: 8 }, (_, i) => batchOf(set, i * batch, batch)), k: 0, lat: [], elapsed: 0, inferred: 0, computeNs: 0 };
}

async function once(client: TritonClient, c: Cell): Promise<void> {
  await client.modelInfer(classificationRequest(c.spec, c.tensors[c.k++ % c.tensors.length]!, c.batch, 1, String(c.k)), 60_000);
}

/** One slice of a cell: `seconds` of closed-loop requests, Triton's statistics around them. */
async function slice(client: TritonClient, c: Cell, seconds: number): Promise<void> {
  const s0 = await stats(client, c.spec.name);
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const t = performance.now();
    await once(client, c);
    c.lat.push(performance.now() - t);
  }
  c.elapsed += (performance.now() - t0) / 1000;
  const s1 = await stats(client, c.spec.name);
  c.inferred += s1.inference_count - s0.inference_count;
  c.computeNs += s1.inference_stats!.compute_infer!.ns - s0.inference_stats!.compute_infer!.ns;
}

function row(c: Cell, pgid: number | undefined, reference: Cell | undefined) {
  const lat = [...c.lat].sort((a, b) => a - b);
  const fps = (lat.length * c.batch) / c.elapsed;
  const refFps = reference ? (reference.lat.length * reference.batch) / reference.elapsed : Number.NaN;
  return {
    model: c.spec.name,
    batch: c.batch,
    'frames/s': fps.toFixed(1),
    '× FP32': reference ? (fps / refFps).toFixed(2) : '–',
    'p50 ms': quantile(lat, 0.5).toFixed(1),
    'p99 ms': quantile(lat, 0.99).toFixed(1),
    'Triton compute ms/frame': c.inferred ? (c.computeNs / 1e6 / c.inferred).toFixed(2) : '?',
    'backend RSS MB': stubRssMb(pgid, c.spec.name).toFixed(0),
    requests: lat.length,
    'load avg': loadavg(),
  };
}

/** The nsfw score of every image of the set (batches of 8). */
async function nsfwScores(client: TritonClient, spec: ModelSpec, set: ImageSet): Promise<Float64Array> {
  const n = set.names.length;
  const out = new Float64Array(n);
  for (let from = 0; from < n; from += 8) {
    const count = Math.min(8, n - from);
    const res = await client.modelInfer(classificationRequest(spec, set.pixels.subarray(from * IMAGE_BYTES, (from + count) * IMAGE_BYTES), count, 2, `eval-${from}`), 60_000);
    const labels = parseClassification(res.raw_output_contents[0]!, count, 2);
    for (let i = 0; i < count; i++) out[from + i] = labels[i]!.find((l) => l.label === 'nsfw')!.score;
  }
  return out;
}

const client = new TritonClient({ url: values.url!, controlDeadlineMs: 10_000 });
const pgid = tritonPid(values.url!.split(':').pop()!);
try {
  const evaluation = modelImages('evaluation');
  const specs = new Map<string, ModelSpec>();
  for (const m of MODELS) specs.set(m, await describeModel(client, m));

  const rows = [];
  for (const b of BATCHES) {
    const cells = MODELS.map((m) => cell(specs.get(m)!, evaluation, b));
    for (const c of cells) for (const until = performance.now() + WARMUP * 1000; performance.now() < until; ) await once(client, c);
    for (let r = 0; r < ROUNDS; r++) for (const c of cells) await slice(client, c, SECONDS / ROUNDS);
    const reference = cells.find((c) => c.spec.name === REFERENCE);
    for (const c of cells) rows.push(row(c, pgid, c === reference ? undefined : reference));
  }
  console.log(`\nopen_nsfw variants through Triton at ${values.url}: one client, one request at a time, ${SECONDS} s per row in ${ROUNDS} slices alternating between the models, after ${WARMUP} s warm-up each; 2 shared cores`);
  console.table(rows);

  const reference = await nsfwScores(client, specs.get(REFERENCE) ?? (await describeModel(client, REFERENCE)), evaluation);
  const agreement = [];
  for (const m of MODELS) {
    if (m === REFERENCE) continue;
    const s = await nsfwScores(client, specs.get(m)!, evaluation);
    let same = 0;
    let sumAbs = 0;
    let maxAbs = 0;
    let up = 0;
    let down = 0;
    for (let i = 0; i < s.length; i++) {
      const a = reference[i]! > 0.5;
      const b = s[i]! > 0.5;
      if (a === b) same++;
      else if (b) up++;
      else down++;
      const d = Math.abs(s[i]! - reference[i]!);
      sumAbs += d;
      maxAbs = Math.max(maxAbs, d);
    }
    agreement.push({
      model: m,
      images: s.length,
      'top-1 agreement %': ((100 * same) / s.length).toFixed(2),
      'mean |Δ nsfw|': (sumAbs / s.length).toFixed(4),
      'max |Δ nsfw|': maxAbs.toFixed(4),
      'sfw→nsfw': up,
      'nsfw→sfw': down,
      'load avg': loadavg(),
    });
  }
  const refNsfw = [...reference].filter((x) => x > 0.5).length;
  const refAbove = [...reference].filter((x) => x > 0.1).length;
  console.log(`\nagreement with ${REFERENCE} (FP32) on the evaluation set (scripts/models/images.py evaluation: ${evaluation.names.length} images, none in the calibration set); FP32 scores nsfw > 0.5 on ${refNsfw} of them, > 0.1 on ${refAbove}`);
  console.table(agreement);
} finally {
  client.close();
}
