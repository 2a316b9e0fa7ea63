/**
 * framewire's Triton client vs Triton's reference Python client (tritonclient[grpc] asyncio),
 * same model, batch, concurrency and transport, in one run (prints a table; not a test).
 *
 *   node dist/bench/triton-client.js [--seconds 1.5] [--url host:port] [--only UINT8/shm/8/4,FP32/grpc]
 *
 * Cells: input 224×224×3 UINT8 (colour_probe) and FP32 (colour_probe_fp32); batch 1, 8, 32;
 * concurrency 1 and 4; tensors in the gRPC message or in system shared memory (outputs are
 * classification strings, always in the message). Each cell: a short warm-up, then --seconds of
 * closed-loop requests; the reference client runs each cell right after framewire does. Reported: frames/s, p50/p99 latency, framewire/reference throughput, and
 * at batch 1 the client overhead: mean client latency minus Triton's own mean request time
 * (ModelStatistics `success` over the cell).
 *
 * By default a private tritonserver (ports 8200-8202) serves the two models, so other users of
 * the stack's Triton do not disturb the figures; --url uses an existing one instead.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { TritonClient } from '../src/infer/triton/client.js';
import { describeModel, type ModelSpec } from '../src/infer/triton/model.js';
import { ShmRing } from '../src/infer/triton/shm.js';
import type { InferRequest } from '../src/infer/triton/types.js';
import { startTriton, type TritonProcess } from '../test/helpers/triton.js';
import { solidFrames } from '../test/helpers/frames.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1.5' }, warmup: { type: 'string', default: '0.3' }, url: { type: 'string' }, only: { type: 'string' } } });
const SECONDS = Number(values.seconds);
const WARMUP = Number(values.warmup);

interface Cell {
  model: string;
  datatype: 'UINT8' | 'FP32';
  batch: number;
  concurrency: number;
  transport: 'grpc' | 'shm';
}
interface Result {
  frames: number;
  requests: number;
  elapsed: number;
  latencies: number[];
  serverMs: number;
  /** Client process CPU seconds (user + system, all threads) over the measured window. */
  cpuS: number;
}

const cells: Cell[] = [];
for (const [model, datatype] of [['colour_probe', 'UINT8'], ['colour_probe_fp32', 'FP32']] as const)
  for (const transport of ['grpc', 'shm'] as const)
    for (const batch of [1, 8, 32])
      for (const concurrency of [1, 4]) cells.push({ model, datatype, batch, concurrency, transport });
// --only UINT8/shm/8/4,FP32/grpc: rerun the rows whose `datatype/transport/batch/conc` starts with one of these.
if (values.only) {
  const keep = values.only.split(',');
  const id = (c: Cell) => `${c.datatype}/${c.transport}/${c.batch}/${c.concurrency}`;
  cells.splice(0, cells.length, ...cells.filter((c) => keep.some((k) => id(c).startsWith(k))));
}

async function serverMeanMs(client: TritonClient, model: string, fn: () => Promise<void>): Promise<number> {
  const s0 = (await client.modelStatistics(model))[0]!.inference_stats!.success!;
  await fn();
  const s1 = (await client.modelStatistics(model))[0]!.inference_stats!.success!;
  return s1.count > s0.count ? (s1.ns - s0.ns) / (s1.count - s0.count) / 1e6 : NaN;
}

async function framewireCell(client: TritonClient, spec: ModelSpec, cell: Cell): Promise<Result> {
  const data = solidFrames(spec, new Array(cell.batch).fill('red'));
  // One ring (and region name) per cell; registered inside the try so a failure still deletes its file.
  const ring = cell.transport === 'shm' ? new ShmRing({ tag: `bench-${cells.indexOf(cell)}`, slots: cell.concurrency, inputSlotBytes: data.length }) : undefined;
  const latencies: number[] = [];
  let requests = 0;
  const outputs = [{ name: spec.outputName, parameters: { classification: { int64_param: 1 } } }];
  const worker = async (slot: number, until: number, record: boolean) => {
    const shape = [cell.batch, spec.height, spec.width, 3];
    const req: InferRequest = ring
      ? { model_name: spec.name, inputs: [{ name: spec.inputName, datatype: spec.inputDatatype, shape, parameters: ring.inputParameters(slot, data.length) }], outputs, raw_input_contents: [] }
      : { model_name: spec.name, inputs: [{ name: spec.inputName, datatype: spec.inputDatatype, shape }], outputs, raw_input_contents: [data] };
    while (performance.now() < until) {
      if (ring) ring.writeInput(slot, data); // a new batch each time, as in the pipeline
      const t0 = performance.now();
      await client.modelInfer(req, 10_000);
      if (record) {
        latencies.push(performance.now() - t0);
        requests++;
      }
    }
  };
  const workers = (until: number, record: boolean) => Promise.all(Array.from({ length: cell.concurrency }, (_, w) => worker(w, until, record)));
  let elapsed = 0;
  try {
    if (ring) await ring.register(client);
    await workers(performance.now() + WARMUP * 1000, false);
    let cpuS = 0;
    const serverMs = await serverMeanMs(client, spec.name, async () => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await workers(t0 + SECONDS * 1000, true);
      elapsed = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      cpuS = (c.user + c.system) / 1e6;
    });
    return { frames: requests * cell.batch, requests, elapsed, latencies, serverMs, cpuS };
  } finally {
    if (ring) {
      await ring.unregister(client);
      ring.close();
    }
  }
}

/**
 * The reference client in one Python process (one interpreter start), run cell by cell: each
 * cell right after framewire's run of it, so a change in the machine's load (2 shared cores)
 * hits both sides of a row alike instead of one whole column.
 */
class Reference {
  private readonly child;
  private out = '';
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly exited: Promise<number | null>;

  constructor(url: string) {
    const py = path.join(process.env.FRAMEWIRE_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'framewire'), 'venv/bin/python');
    this.child = spawn(py, [path.join(ROOT, 'bench/triton_reference.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdin.write(JSON.stringify({ url, seconds: SECONDS, warmup: WARMUP }) + '\n');
    this.child.stdout.on('data', (d) => {
      this.out += d;
      for (let nl = this.out.indexOf('\n'); nl >= 0; nl = this.out.indexOf('\n')) {
        const line = this.out.slice(0, nl);
        this.out = this.out.slice(nl + 1);
        this.waiting.shift()?.(line);
      }
    });
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
  }

  async cell(cell: Cell): Promise<Result> {
    const line = new Promise<string>((resolve) => this.waiting.push(resolve));
    this.child.stdin.write(JSON.stringify(cell) + '\n');
    const got = await Promise.race([line, this.exited.then((code) => Promise.reject(new Error(`reference client exited with ${code}`)))]);
    const r = JSON.parse(got) as { frames: number; requests: number; elapsed: number; latencies_ms: number[]; server_ms: number | null; cpu_s: number };
    return { frames: r.frames, requests: r.requests, elapsed: r.elapsed, latencies: r.latencies_ms, serverMs: r.server_ms ?? NaN, cpuS: r.cpu_s };
  }

  async close(): Promise<void> {
    this.child.stdin.end();
    await this.exited;
  }
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');

async function main(): Promise<void> {
  let triton: TritonProcess | undefined;
  const url = values.url ?? (triton = await startTriton({ httpPort: 8200, grpcPort: 8201, metricsPort: 8202, models: ['colour_probe', 'colour_probe_fp32'] })).url;
  const client = new TritonClient({ url });
  try {
    const specs = new Map<string, ModelSpec>();
    for (const m of ['colour_probe', 'colour_probe_fp32']) specs.set(m, await describeModel(client, m));
    const t0 = Date.now();
    const fw: Result[] = [];
    const ref: Result[] = [];
    const reference = new Reference(url);
    for (const cell of cells) {
      fw.push(await framewireCell(client, specs.get(cell.model)!, cell));
      ref.push(await reference.cell(cell));
    }
    await reference.close();
    console.log(`\nTriton client benchmark: ${os.cpus().length} CPUs, Triton at ${url}, ${SECONDS}s per cell after ${WARMUP}s warm-up (${((Date.now() - t0) / 1000).toFixed(0)}s)\n`);
    console.log('| input | transport | batch | conc | framewire frames/s | p50 ms | p99 ms | reference frames/s | p50 ms | p99 ms | fw/ref | fw overhead ms | ref overhead ms | fw CPU ms/req | ref CPU ms/req |');
    console.log('| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |');
    for (const [i, c] of cells.entries()) {
      const a = fw[i]!;
      const b = ref[i]!;
      const tpA = a.frames / a.elapsed;
      const tpB = b.frames / b.elapsed;
      const ovA = c.batch === 1 ? mean(a.latencies) - a.serverMs : NaN;
      const ovB = c.batch === 1 ? mean(b.latencies) - b.serverMs : NaN;
      console.log(
        `| ${c.datatype} | ${c.transport} | ${c.batch} | ${c.concurrency} | ${f(tpA, 0)} | ${f(pct(a.latencies, 50), 2)} | ${f(pct(a.latencies, 99), 2)} | ${f(tpB, 0)} | ${f(pct(b.latencies, 50), 2)} | ${f(pct(b.latencies, 99), 2)} | ${f(tpA / tpB, 2)} | ${c.batch === 1 ? f(ovA, 2) : ''} | ${c.batch === 1 ? f(ovB, 2) : ''} | ${f((1000 * a.cpuS) / a.requests, 2)} | ${f((1000 * b.cpuS) / b.requests, 2)} |`,
      );
    }
    console.log('\noverhead = mean client latency − Triton\'s mean request time (ModelStatistics success) over the same cell; batch 1 only.');
    console.log('CPU ms/req = the client process\'s CPU time (user + system, all threads) over the cell / requests: what the client takes from the cores Triton shares.');
  } finally {
    client.close();
    await triton?.stop();
  }
}

await main();
