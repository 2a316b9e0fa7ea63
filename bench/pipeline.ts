/**
 * Replay-mode throughput against the decode-only floor, on the real local stack (prints a table;
 * not a test).
 *
 *   node dist/bench/pipeline.js [--streams 4,16] [--content solid,real] [--seconds 20]
 *        [--chunk-kib 4-64] [--pes-length on|off] [--idle-ms 1000] [--port 18083]
 *
 * Per row (N streams × one content):
 *  - floor: N parallel plain `ffmpeg -v error -f mpegts -i X.ts -vf scale=224:224 -pix_fmt rgb24
 *    -f rawvideo -` on the same TS files, stdout drained: frames/s and the children's CPU seconds
 *    (utime + stime of the reaped children, from /proc/self/stat);
 *  - processor: the N streams' chunks (cut at random 4–64 KiB, contract headers, fw-epoch-ms = now,
 *    fw-eos on each session's last chunk) pre-loaded into a fresh 3-partition topic, then
 *    `framewire run` in replay mode on colour_probe; frames/s = frames / (last publishedTs −
 *    processor ready), and the CPU of its whole process group (node + its ffmpeg children) from
 *    ready to the last label, per frame, against the floor's.
 * Triton's CPU (tritonserver and its Python backend stubs, found by name) over the processor's
 * window is printed too: it shares the 2 cores. Content: solid = lavfi color (one colour per
 * stream), real = testsrc2, both 640×360 at 25 fps, GOP 25.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import {
  chunkHeaders,
  collectOutputs,
  cpuSecondsByName,
  createChunkTopic,
  cutArbitrary,
  encodeVideo,
  fetchMetrics,
  groupCpuSeconds,
  groupRssMb,
  metricSum,
  prng,
  reapedChildrenCpuSeconds,
  removeRunTopics,
  requireStack,
  runPrefix,
  sleep,
  spawnFramewire,
  spawnGroup,
  stopGroup,
  waitReadyAt,
  machineMeter,
  type Video,
} from './lib.js';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '4,16' },
    content: { type: 'string', default: 'solid,real' },
    seconds: { type: 'string', default: '20' },
    'chunk-kib': { type: 'string', default: '4-64' },
    'pes-length': { type: 'string', default: 'on' },
    'idle-ms': { type: 'string', default: '1000' },
    port: { type: 'string', default: '18083' },
  },
});
const NS = values.streams!.split(',').map(Number);
const CONTENTS = values.content!.split(',');
const SECONDS = Number(values.seconds);
const [MIN_KIB, MAX_KIB] = values['chunk-kib']!.split('-').map(Number) as [number, number];
const PES = values['pes-length'] !== 'off';
const IDLE_MS = Number(values['idle-ms']);
const PORT = Number(values.port);
const FPS = 25;
const SIZE = '640x360';
const FRAME_BYTES = 224 * 224 * 3;
const COLOURS = ['red', '0x00FF00', 'blue', 'yellow', 'cyan', 'magenta', 'white', 'black'];

function videos(dir: string, content: string, n: number, cache: Map<string, Video>): Video[] {
  const get = (name: string, lavfi: string) => {
    if (!cache.has(name)) cache.set(name, encodeVideo(path.join(dir, `${name}.ts`), { lavfi, gop: FPS, pesLength: PES }));
    return cache.get(name)!;
  };
  return Array.from({ length: n }, (_, i) =>
    content === 'solid'
      ? get(`solid-${i % COLOURS.length}`, `color=c=${COLOURS[i % COLOURS.length]}:s=${SIZE}:r=${FPS}:d=${SECONDS}`)
      : get('real', `testsrc2=s=${SIZE}:r=${FPS}:d=${SECONDS}`),
  );
}

/** N plain ffmpeg decoders at the model's input size, in parallel, as the floor. */
async function floor(vs: Video[]): Promise<{ fps: number; cpu: number; frames: number; wall: number }> {
  const cpu0 = reapedChildrenCpuSeconds();
  const t0 = performance.now();
  let bytes = 0;
  await Promise.all(
    vs.map(async (v) => {
      const g = spawnGroup('ffmpeg', ['-v', 'error', '-f', 'mpegts', '-i', v.file, '-vf', 'scale=224:224', '-pix_fmt', 'rgb24', '-f', 'rawvideo', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
      g.child.stdout!.on('data', (d: Buffer) => (bytes += d.length));
      const code = await g.exited;
      if (code !== 0) throw new Error(`floor ffmpeg exited ${code}: ${g.stderr()}`);
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  await sleep(100); // reaped: their times are in our cutime/cstime
  const frames = bytes / FRAME_BYTES;
  return { fps: frames / wall, cpu: reapedChildrenCpuSeconds() - cpu0, frames, wall };
}

async function preload(topic: string, vs: Video[]): Promise<{ chunks: number; frames: number }> {
  const kafka = new kafkajs.Kafka({ clientId: 'bench-preload', brokers: ['127.0.0.1:9092'], logLevel: kafkajs.logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const epoch = Date.now();
  const rnd = prng(42);
  let chunks = 0;
  let frames = 0;
  try {
    for (let i = 0; i < vs.length; i++) {
      const v = vs[i]!;
      const cuts = cutArbitrary(v.ts.length, MIN_KIB * 1024, MAX_KIB * 1024, rnd);
      const session = `p${i}-${epoch.toString(36)}`;
      let batch: kafkajs.Message[] = [];
      let batchBytes = 0;
      for (let s = 0; s < cuts.length; s++) {
        const { start, end } = cuts[s]!;
        batch.push({ key: `bench-${i}`, partition: i % 3, value: v.ts.subarray(start, end), headers: chunkHeaders(`bench-${i}`, session, s, epoch, s === cuts.length - 1) });
        batchBytes += end - start;
        if (batchBytes > 768 * 1024 || s === cuts.length - 1) {
          await producer.send({ topic, acks: -1, messages: batch });
          batch = [];
          batchBytes = 0;
        }
      }
      chunks += cuts.length;
      frames += v.packets.length;
    }
  } finally {
    await producer.disconnect();
  }
  return { chunks, frames };
}

function topology(dir: string, prefix: string): string {
  const file = path.join(dir, `${prefix}.yaml`);
  writeFileSync(
    file,
    `name: bench
kafka: { brokers: ["127.0.0.1:9092"], clientId: bench }
http: { listen: "127.0.0.1:${PORT}" }
latency: { budgetMs: 250 }
sources: [{ type: kafka, topic: ${prefix}.chunks, group: ${prefix}, partitions: 3, dlqTopic: ${prefix}.dlq, fromBeginning: true, commitIntervalMs: 500 }]
decode: { idleTimeoutMs: ${IDLE_MS} }
batch: { maxWaitMs: 10, queueFrames: 256, maxInflight: 2, mode: replay }
models: [{ name: colour_probe, topK: 3 }]
smoothing: { method: off }
sinks: [{ type: kafka, topic: ${prefix}.labels, eventsTopic: ${prefix}.events }]
shutdown: { drainTimeoutMs: 2000 }
`,
  );
  return file;
}

async function processor(dir: string, vs: Video[]) {
  const prefix = runPrefix(`bpipe-${vs.length}`);
  await createChunkTopic(`${prefix}.chunks`, 3);
  const { chunks, frames } = await preload(`${prefix}.chunks`, vs);
  const proc = spawnFramewire(['run', '--topology', topology(dir, prefix)]);
  let out: Awaited<ReturnType<typeof collectOutputs>> | undefined;
  try {
    const ready = await waitReadyAt(PORT);
    const cpu0 = groupCpuSeconds(proc.pid);
    const triton0 = cpuSecondsByName('triton').seconds;
    out = await collectOutputs(prefix);
    let cpu1 = cpu0;
    let triton1 = triton0;
    let peakRss = 0;
    let lastProgress = Date.now();
    let lastCovered = 0;
    let seen = 0;
    const labelled = new Set<string>();
    for (;;) {
      cpu1 = groupCpuSeconds(proc.pid);
      triton1 = cpuSecondsByName('triton').seconds;
      peakRss = Math.max(peakRss, groupRssMb(proc.pid));
      for (; seen < out.labels.length; seen++) labelled.add(`${out.labels[seen]!.stream}/${out.labels[seen]!.frame}`);
      const covered = labelled.size + out.dropped.reduce((a, d) => a + d.count, 0);
      if (covered >= frames) break;
      if (covered !== lastCovered) [lastCovered, lastProgress] = [covered, Date.now()];
      else if (Date.now() - lastProgress > 30_000) break; // stuck: report what there is
      await sleep(200);
    }
    const text = await fetchMetrics(PORT);
    const lastPublished = Math.max(...out.labels.map((l) => l.publishedTs));
    const wall = (lastPublished - ready) / 1000;
    const dropped = out.dropped.reduce((a, d) => a + d.count, 0);
    // Steady rate: the 10th to the 90th percentile of labels by publish time (no start-up, no idle flush).
    const pub = out.labels.map((l) => l.publishedTs).sort((a, b) => a - b);
    const lo = pub[Math.floor(pub.length * 0.1)]!;
    const hi = pub[Math.floor(pub.length * 0.9)]!;
    const steadyFps = (Math.floor(pub.length * 0.9) - Math.floor(pub.length * 0.1)) / Math.max(0.001, (hi - lo) / 1000);
    const reasons = [...new Set(out.dropped.map((d) => d.reason))].join(',');
    return {
      prefix,
      chunks,
      frames,
      labelled: labelled.size,
      dropped: dropped ? `${dropped} (${reasons})` : '0',
      fps: labelled.size / wall,
      steadyFps,
      wall,
      cpu: cpu1 - cpu0,
      triton: triton1 - triton0,
      tritonProcs: cpuSecondsByName('triton').processes,
      peakRss,
      meanBatch: metricSum(text, 'framewire_batch_size_frames_sum') / metricSum(text, 'framewire_batch_size_frames_count'),
      decoderRestarts: metricSum(text, 'framewire_decoder_restarts_total'),
      proc,
      out,
    };
  } catch (err) {
    console.error(proc.stderr());
    throw err;
  } finally {
    await out?.stop();
    await stopGroup(proc);
    await removeRunTopics(prefix, [prefix, `${prefix}-reader`]);
  }
}

await requireStack();
const machine = machineMeter();
const dir = mkdtempSync(path.join(tmpdir(), 'fw-bench-pipe-'));
const rows: Record<string, string | number>[] = [];
try {
  const cache = new Map<string, Video>();
  for (const content of CONTENTS) {
    for (const n of NS) {
      const vs = videos(dir, content, n, cache);
      const meter = machineMeter();
      const f = await floor(vs);
      const p = await processor(dir, vs);
      const floorCpuPerFrame = (1000 * f.cpu) / f.frames;
      const procCpuPerFrame = (1000 * p.cpu) / p.labelled;
      rows.push({
        content: content === 'solid' ? 'solid colour' : 'testsrc2',
        streams: n,
        'labelled/frames': `${p.labelled}/${p.frames}`,
        dropped: p.dropped,
        'proc frames/s': p.fps.toFixed(0),
        'proc steady frames/s': p.steadyFps.toFixed(0),
        'floor frames/s': f.fps.toFixed(0),
        'ratio (≥0.8)': (p.fps / f.fps).toFixed(2),
        'proc CPU ms/frame': procCpuPerFrame.toFixed(2),
        'floor CPU ms/frame': floorCpuPerFrame.toFixed(2),
        'CPU ratio (≤1.25)': (procCpuPerFrame / floorCpuPerFrame).toFixed(2),
        'proc wall s': p.wall.toFixed(1),
        'floor wall s': f.wall.toFixed(1),
        'proc CPU s': p.cpu.toFixed(1),
        'Triton CPU s': p.triton.toFixed(1),
        'Triton CPU %': ((100 * p.triton) / p.wall).toFixed(0),
        'mean batch': p.meanBatch.toFixed(1),
        'peak RSS MB': p.peakRss.toFixed(0),
        'machine busy %': meter.busy().toFixed(0),
      });
      if (p.decoderRestarts) console.error(`note: ${p.decoderRestarts} decoder restarts in the ${content} ${n}-stream run`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(
  `\npipeline benchmark: replay mode vs the decode-only floor; ${SECONDS} s × ${FPS} fps per stream, ${SIZE} H.264 (GOP ${FPS}, PES lengths ${PES ? 'written' : 'omitted'}), chunks ${MIN_KIB}–${MAX_KIB} KiB, colour_probe 224×224, 2 cores`,
);
console.table(rows);
console.log(machine.report());
console.log('steady = the 10th–90th percentile of labels by publish time (no start-up, no idle flush); the ratio uses the whole-run figure.');
console.log('proc = framewire run (node + its ffmpeg decoders, whole process group) from /readyz to the last label; frames/s = labelled / (last publishedTs − ready).');
console.log(`floor = N × plain ffmpeg → 224×224 rgb24 on the same files, spawn to exit. The processor's time includes its decoders' idle flush (decode.idleTimeoutMs ${IDLE_MS}) when it ignores fw-eos.`);
console.log('Triton CPU = tritonserver + triton_python_backend_stub processes over the processor window (other users of the shared Triton count too). Peak RSS = the processor group.');
