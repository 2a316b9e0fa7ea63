/**
 * Scheduling benchmark on the real local stack (prints a table; not a test).
 *
 *   node dist/bench/scheduling.js [--streams 1,4,16,32] [--seconds 20] [--models colour_probe,open_nsfw] [--mode live]
 *        [--cameras simulated|ingest] [--camera-codec x264|copy|bframes] [--pes-length on|off] [--budget 250] [--triton host:port]
 *        [--critical N] [--degrade on|off]
 *
 * For each model and N: a fresh processor (`framewire run`, budget --budget ms, default 250) and N
 * realtime cameras. --models takes any model with a FRAME input, e.g. open_nsfw_int8; --triton
 * points the processor at another Triton (a second stack with a model repository of its own).
 *  - simulated (default): 640×360 H.264 at 25 fps; the cameras publish a pre-encoded MPEG-TS file
 *    paced by its packets' pts (no encoder per camera, so the machine's 2 cores go to the
 *    pipeline), cut where the packets end, with the contract's headers;
 *  - ingest: each camera is a real `framewire ingest --realtime` child process encoding a lavfi
 *    pattern (testsrc2, smptebars, solid colour) at mixed sizes and rates (320×240, 640×360,
 *    1280×720; 25 and 30 fps; GOPs 12–250 when the CLI takes --gop, otherwise x264's default),
 *    so the encoders share the cores as camera boxes on the same host would.
 * Reported per row: frames/s labelled, labelled % of the frames the cameras sent, capture→publish
 * p50/p99 of labelled frames, drop rate by reason, processor peak RSS and CPU% (of one core; node
 * alone, and its whole process group with the ffmpeg decoders), and in ingest mode the cameras' CPU%.
 * --critical N: the first N cameras are `critical`, the others `normal`, with degradation on
 * (`priority.degrade.enabled`, unless --degrade off); the row then also gives the critical streams'
 * labelled % within the budget, the others' `deadline`/`overload` share and the rates announced
 * in `degraded` events.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import {
  ROOT,
  cpuSeconds,
  groupCpuSeconds,
  quantile,
  reapedChildrenCpuSeconds,
  removeRunTopics,
  requireStack,
  rssMb,
  runPrefix,
  spawnFramewire,
  stopGroup,
  waitReady,
  machineMeter,
  type Group,
} from './lib.js';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '1,4,16,32' },
    seconds: { type: 'string', default: '20' },
    models: { type: 'string', default: 'colour_probe,open_nsfw' },
    mode: { type: 'string', default: 'live' },
    port: { type: 'string', default: '18081' },
    // batch.fairShares: 'true' (default) or 'false' (earliest deadline first only), to compare.
    fair: { type: 'string', default: 'true' },
    cameras: { type: 'string', default: 'simulated' },
    timeline: { type: 'boolean', default: false },
    'camera-codec': { type: 'string', default: 'x264' },
    'pes-length': { type: 'string', default: 'on' },
    budget: { type: 'string', default: '250' },
    triton: { type: 'string', default: '127.0.0.1:8001' },
    // More decode-stage fields, YAML flow style, to compare settings: --decode 'shedCatchUpMs: 0'.
    decode: { type: 'string', default: '' },
    critical: { type: 'string', default: '0' },
    degrade: { type: 'string', default: 'on' },
  },
});
const NS = values.streams!.split(',').map(Number);
const SECONDS = Number(values.seconds);
const MODELS = values.models!.split(',');
const PORT = Number(values.port);
const FPS = 25;
const BUDGET = Number(values.budget);
const TRITON = values.triton!;
const INGEST = values.cameras === 'ingest';
const TIMELINE = values.timeline === true;
const CRITICAL = Number(values.critical);
const DEGRADE = CRITICAL > 0 && values.degrade !== 'off';
/**
 * --camera-codec copy: the ingest cameras remux pre-encoded H.264 files (IP cameras) instead of
 * encoding lavfi patterns on this machine; bframes: the same with files made by plain
 * `-c:v libx264 -preset veryfast` (x264's defaults: B-frames, b-pyramid), remuxed by `--codec auto`.
 */
const BFRAME_CAMERAS = INGEST && values['camera-codec'] === 'bframes';
const COPY_CAMERAS = INGEST && (values['camera-codec'] === 'copy' || BFRAME_CAMERAS);
const PES = values['pes-length'] !== 'off';

/** The ingest-mode cameras, cycled: mixed sizes, rates, patterns and keyframe intervals. */
const INGEST_CAMERAS = [
  { size: '320x240', fps: 25, src: 'testsrc2', gop: 25 },
  { size: '640x360', fps: 25, src: 'testsrc2', gop: 50 },
  { size: '1280x720', fps: 30, src: 'testsrc2', gop: 30 },
  { size: '640x360', fps: 30, src: 'smptebars', gop: 12 },
  { size: '320x240', fps: 30, src: 'color=c=red', gop: 250 },
  { size: '640x360', fps: 25, src: 'color=c=blue', gop: 25 },
  { size: '1280x720', fps: 25, src: 'smptebars', gop: 100 },
  { size: '640x360', fps: 30, src: 'testsrc2', gop: 60 },
];
/** Whether this tree's `framewire ingest` takes --gop (it may not: then x264's default applies). */
const INGEST_GOP = INGEST && execFileSync('node', [path.join(ROOT, 'bin/framewire.js'), 'ingest', '--help'], { encoding: 'utf8' }).includes('--gop');

/** A pre-encoded TS file and, per video packet, where its bytes end and its pts. */
function prepareVideo(dir: string): { ts: Buffer; packets: { end: number; ptsMs: number }[] } {
  const file = path.join(dir, 'camera.ts');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=s=640x360:r=${FPS}:d=${SECONDS + 2},format=yuv420p`, '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', String(FPS), '-f', 'mpegts', ...(PES ? ['-omit_video_pes_length', '0'] : []), file]);
  const csv = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,pos', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  // Lines can be blank (ffprobe's side data); a packet row has both fields.
  const rows = csv.split('\n').map((l) => l.trim().split(',')).filter((f) => f.length >= 2 && f[0] !== '' && f[1] !== '').map((f) => [Number(f[0]), Number(f[1])] as [number, number]);
  const ts = readFileSync(file);
  const p0 = rows[0]![0];
  // Bytes of packet k are complete once the next packet starts.
  return { ts, packets: rows.map(([pts], k) => ({ ptsMs: (pts - p0) * 1000, end: k + 1 < rows.length ? rows[k + 1]![1] : ts.length })) };
}

/** Frames the cameras sent. */
async function cameras(n: number, topic: string, video: ReturnType<typeof prepareVideo>, producer: kafkajs.Producer): Promise<number> {
  const t0 = Date.now() + 200;
  const sent = new Array<number>(n).fill(0);
  const seq = new Array<number>(n).fill(0);
  const sessions = Array.from({ length: n }, (_, i) => `s${i}-${Date.now().toString(36)}`);
  const last = video.packets.findIndex((p) => p.ptsMs >= SECONDS * 1000);
  for (let k = 0; k < (last < 0 ? video.packets.length : last); k++) {
    const due = t0 + video.packets[k]!.ptsMs;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const messages = [];
    for (let i = 0; i < n; i++) {
      const end = video.packets[k]!.end;
      if (end <= sent[i]!) continue;
      messages.push({
        key: `bench-${i}`,
        value: video.ts.subarray(sent[i]!, end),
        headers: { 'fw-stream': `bench-${i}`, 'fw-session': sessions[i]!, 'fw-seq': String(seq[i]!++), 'fw-format': 'mpegts', 'fw-epoch-ms': String(t0) },
      });
      sent[i] = end;
    }
    await producer.send({ topic, acks: -1, messages });
  }
  return n * (last < 0 ? video.packets.length : last);
}

/**
 * Ingest mode: N `framewire ingest --realtime` children (each its own process group), for
 * SECONDS of their lavfi pattern. Frames they sent and the CPU they used (reaped, so the
 * processor must still be running: it is not reaped yet).
 */
async function ingestCameras(n: number, topic: string, dir: string): Promise<{ frames: number; cpu: number }> {
  const cpu0 = reapedChildrenCpuSeconds();
  const groups: Group[] = [];
  let frames = 0;
  try {
    for (let i = 0; i < n; i++) {
      const c = INGEST_CAMERAS[i % INGEST_CAMERAS.length]!;
      frames += c.fps * SECONDS;
      const pattern = `${c.src}${c.src.includes('=') ? ':' : '='}s=${c.size}:r=${c.fps}:d=${SECONDS}`;
      let input = `lavfi:${pattern}`;
      if (COPY_CAMERAS) {
        // An IP camera: its H.264 comes encoded (here: beforehand), ingest remuxes it (--codec copy).
        input = path.join(dir, `camera-${i % INGEST_CAMERAS.length}.mp4`);
        const tune = BFRAME_CAMERAS ? [] : ['-tune', 'zerolatency'];
        if (!existsSync(input)) execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', pattern, '-c:v', 'libx264', '-preset', 'veryfast', ...tune, '-g', String(c.gop), '-pix_fmt', 'yuv420p', input]);
      }
      const args = ['ingest', '--realtime', '--stream', `bench-${i}`, '--topic', topic, '--input', input];
      if (COPY_CAMERAS) args.push('--codec', BFRAME_CAMERAS ? 'auto' : 'copy');
      else if (INGEST_GOP) args.push('--gop', String(c.gop));
      groups.push(spawnFramewire(args));
    }
    const codes = await Promise.all(groups.map((g) => g.exited));
    codes.forEach((code, i) => {
      if (code !== 0) console.error(`camera bench-${i} exited ${code}: ${groups[i]!.stderr()}`);
    });
  } finally {
    for (const g of groups) await stopGroup(g, 2000);
  }
  return { frames, cpu: reapedChildrenCpuSeconds() - cpu0 };
}

async function run(model: string, n: number, video: ReturnType<typeof prepareVideo>, dir: string): Promise<Record<string, string | number>> {
  const prefix = runPrefix(`bsched-${model}-${n}`);
  const topo = path.join(dir, `${prefix}.yaml`);
  writeFileSync(
    topo,
    `name: bench
kafka: { brokers: ["127.0.0.1:9092"], clientId: bench }
http: { listen: "127.0.0.1:${PORT}" }
latency: { budgetMs: ${BUDGET} }
sources: [{ type: kafka, topic: ${prefix}.chunks, group: ${prefix}, partitions: 4, dlqTopic: ${prefix}.dlq }]
decode: { idleTimeoutMs: 2000${values.decode ? `, ${values.decode}` : ''} }
triton: { url: "${TRITON}" }
${CRITICAL > 0 ? `priority: { streams: [{ streams: "^bench-(${Array.from({ length: CRITICAL }, (_, i) => i).join('|')})$", priority: critical }], degrade: { enabled: ${DEGRADE} } }
` : ''}batch: { maxWaitMs: 10, mode: ${values.mode}, streamQueueFrames: 16, queueFrames: 512, maxInflight: 2, fairShares: ${values.fair === 'false' ? 'false' : 'true'} }
models: [{ name: ${model}, topK: 2 }]
smoothing: { method: off }
sinks: [{ type: kafka, topic: ${prefix}.labels, eventsTopic: ${prefix}.events }]
`,
  );
  const meter = machineMeter();
  const proc: Group = spawnFramewire(['run', '--topology', topo]);
  const kafka = new kafkajs.Kafka({ clientId: 'bench', brokers: ['127.0.0.1:9092'], logLevel: kafkajs.logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const reader = kafka.consumer({ groupId: `${prefix}-reader`, maxWaitTimeInMs: 100 });
  try {
    await waitReady(PORT);
    await producer.connect();
    await reader.connect();
    await reader.subscribe({ topics: [`${prefix}.labels`, `${prefix}.events`], fromBeginning: true });
    const lat: number[] = [];
    const dropped: Record<string, number> = {};
    const timeline: Record<string, number>[] = [];
    /** --timeline: dropped frames per camera, by reason. */
    const perCamera: Record<string, Record<string, number>> = {};
    /** Dropped frames among each session's first 2 s (decoders starting, all streams at once). */
    let droppedAtStart = 0;
    let labelled = 0;
    const crit = { labelled: 0, within: 0, late: 0, lateAfterStart: 0, degraded: 0 };
    const others = { late: 0, lateAfterStart: 0, degraded: 0 };
    const degradedEvents: string[] = [];
    let t0 = Date.now();
    await reader.run({
      eachMessage: async ({ topic, message }) => {
        const v = JSON.parse(message.value!.toString()) as { type?: string; stream?: string; reason?: string; count?: number; captureTs?: number; publishedTs?: number; fromFrame?: number; toFrame?: number; degraded?: boolean; rate?: number; restored?: boolean };
        const critical = CRITICAL > 0 && Number(v.stream?.slice('bench-'.length)) < CRITICAL;
        if (topic.endsWith('.labels')) {
          labelled++;
          lat.push(v.publishedTs! - v.captureTs!);
          if (critical) {
            crit.labelled++;
            if (v.publishedTs! - v.captureTs! <= BUDGET) crit.within++;
          }
        } else if (v.type === 'degraded') {
          const e = v as { reason?: string; load?: number; ts?: number };
          degradedEvents.push(`${((e.ts! - t0) / 1000).toFixed(1)}s ${v.stream!.slice('bench-'.length)}→${v.restored ? 'full' : v.rate} (${e.reason} ${e.load})`);
        } else if (v.type === 'dropped') {
          dropped[v.reason!] = (dropped[v.reason!] ?? 0) + v.count!;
          const cls = critical ? crit : others;
          if (v.reason === 'deadline' || v.reason === 'overload') {
            cls.late += v.count!;
            // After the sessions' first 2 s (every decoder starting at once).
            cls.lateAfterStart += Math.max(0, v.toFrame! - Math.max(v.fromFrame!, 2 * FPS) + 1);
          }
          else if (v.degraded) cls.degraded += v.count!;
          droppedAtStart += Math.max(0, Math.min(v.toFrame!, 2 * FPS - 1) - v.fromFrame! + 1);
          // --timeline: dropped frames per second of stream time, by reason.
          if (TIMELINE) {
            const row = (perCamera[v.stream!] ??= {});
            row[v.reason!] = (row[v.reason!] ?? 0) + v.count!;
          }
          if (TIMELINE) for (let f = v.fromFrame!; f <= v.toFrame!; f++) {
            const sec = Math.floor(f / FPS);
            const row = (timeline[sec] ??= {});
            row[v.reason!] = (row[v.reason!] ?? 0) + 1;
          }
        }
      },
    });
    const cpu0 = cpuSeconds(proc.pid);
    const group0 = groupCpuSeconds(proc.pid);
    let peak = 0;
    let rssQuarter = 0;
    let heapQuarter = '';
    const quarter = setTimeout(() => {
      rssQuarter = rssMb(proc.pid);
      void processorFigures(PORT).then((f) => (heapQuarter = f.heap));
    }, (SECONDS * 1000) / 4);
    const rssTimer = setInterval(() => (peak = Math.max(peak, rssMb(proc.pid))), 500);
    t0 = Date.now();
    let sent: number;
    let camerasCpu = Number.NaN;
    if (INGEST) ({ frames: sent, cpu: camerasCpu } = await ingestCameras(n, `${prefix}.chunks`, dir));
    else sent = await cameras(n, `${prefix}.chunks`, video, producer);
    const wall = (Date.now() - t0) / 1000;
    const cpu = cpuSeconds(proc.pid) - cpu0;
    const groupCpu = groupCpuSeconds(proc.pid) - group0;
    const rssEnd = rssMb(proc.pid);
    const atEnd = await processorFigures(PORT);
    clearTimeout(quarter);
    await new Promise((r) => setTimeout(r, 4000)); // decoders flush after the idle timeout
    clearInterval(rssTimer);
    const total = labelled + Object.values(dropped).reduce((a, b) => a + b, 0);
    if (CRITICAL > 0 && process.env.BENCH_DEGRADE_LOG) console.log(proc.stderr().split('\n').filter((l) => l.includes('sampling rate')).join('\n'));
    if (CRITICAL > 0) console.log(`degraded events (camera→rate fps), in order: ${degradedEvents.join(' ') || 'none'}`);
    if (TIMELINE) console.log(`drops per second of stream time (${model}, ${n} streams): ${timeline.map((r, i) => `${i}s ${JSON.stringify(r ?? {})}`).join(' ')}`);
    if (TIMELINE) console.log(`drops per camera: ${Object.entries(perCamera).sort().map(([s, r]) => `${s} ${JSON.stringify(r)}`).join(' ')}`);
    lat.sort((a, b) => a - b);
    const rate = (r: string) => (total ? ((100 * (dropped[r] ?? 0)) / total).toFixed(1) : '0.0');
    return {
      model,
      streams: n,
      'frames/s labelled': (labelled / wall).toFixed(1),
      // Of the frames the cameras sent (their whole sessions, start-up included).
      'labelled %': ((100 * labelled) / sent).toFixed(1),
      'p50 ms': quantile(lat, 0.5),
      'p99 ms': quantile(lat, 0.99),
      'drop %': total ? ((100 * (total - labelled)) / total).toFixed(1) : '0.0',
      'deadline %': rate('deadline'),
      'overload %': rate('overload'),
      'of drops, in first 2 s %': total > labelled ? ((100 * droppedAtStart) / (total - labelled)).toFixed(0) : '–',
      'other %': total ? ((100 * Object.entries(dropped).filter(([r]) => r !== 'deadline' && r !== 'overload').reduce((a, [, c]) => a + c, 0)) / total).toFixed(1) : '0.0',
      'RSS MB': peak.toFixed(0),
      // Flat memory: RSS a quarter into the run vs at its end.
      'RSS ¼ → end MB': `${rssQuarter.toFixed(0)} → ${rssEnd.toFixed(0)}`,
      // Where RSS growth is: V8 heap used / memory outside the heap (Buffers), MB.
      'heap+ext ¼ → end MB': `${heapQuarter} → ${atEnd.heap}`,
      'CPU %': ((100 * cpu) / wall).toFixed(0),
      'group CPU %': ((100 * groupCpu) / wall).toFixed(0),
      ...(INGEST ? { 'cameras CPU %': ((100 * camerasCpu) / wall).toFixed(0) } : {}),
      'mean batch': atEnd.meanBatch,
      ...(CRITICAL > 0
        ? {
            // Of the frames the critical cameras sent: labelled within the budget.
            'critical in budget %': ((100 * crit.within) / ((sent * CRITICAL) / n)).toFixed(1),
            'critical late %': ((100 * crit.late) / ((sent * CRITICAL) / n)).toFixed(2),
            'critical late after 2 s %': ((100 * crit.lateAfterStart) / ((sent * CRITICAL) / n)).toFixed(2),
            'others late %': ((100 * others.late) / ((sent * (n - CRITICAL)) / n)).toFixed(2),
            'others late after 2 s %': ((100 * others.lateAfterStart) / ((sent * (n - CRITICAL)) / n)).toFixed(2),
            'others degraded %': ((100 * others.degraded) / ((sent * (n - CRITICAL)) / n)).toFixed(1),
            'degraded events': degradedEvents.length,
          }
        : {}),
      'machine busy %': meter.busy().toFixed(0),
    };
  } catch (err) {
    console.error(proc.stderr());
    throw err;
  } finally {
    await reader.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await stopGroup(proc);
    await removeRunTopics(prefix, [prefix, `${prefix}-reader`]);
  }
}

/**
 * From the processor's /metrics: V8 heap used + external (Buffer) memory, MB ("24+18"), and the
 * mean frames per inference request so far. '?' when it does not answer.
 */
async function processorFigures(port: number): Promise<{ heap: string; meanBatch: string }> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    // Sum of a metric's samples, whatever their labels.
    const sum = (name: string) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
    return {
      heap: `${(sum('framewire_nodejs_heap_size_used_bytes') / 1e6).toFixed(0)}+${(sum('framewire_nodejs_external_memory_bytes') / 1e6).toFixed(0)}`,
      meanBatch: (sum('framewire_batch_size_frames_sum') / sum('framewire_batch_size_frames_count')).toFixed(1),
    };
  } catch {
    return { heap: '?', meanBatch: '?' };
  }
}

// The stack must be up already; benchmarks never start one (the machine's stack may be shared).
await requireStack();
const machine = machineMeter();
const dir = mkdtempSync(path.join(tmpdir(), 'fw-bench-sched-'));
const video = INGEST ? { ts: Buffer.alloc(0), packets: [] } : prepareVideo(dir);
const rows = [];
for (const model of MODELS) for (const n of NS) rows.push(await run(model, n, video, dir));
const camerasText = INGEST
  ? `framewire ingest --realtime${BFRAME_CAMERAS ? ' --codec auto (pre-encoded x264-default files: B-frames)' : COPY_CAMERAS ? ' --codec copy (pre-encoded H.264 files)' : ''} cameras cycling ${INGEST_CAMERAS.map((c) => `${c.size}@${c.fps} ${c.src.replace('color=c=', '')}${INGEST_GOP ? ` g${c.gop}` : ''}`).join(', ')}${INGEST_GOP ? '' : ' (GOP: x264 default; this ingest has no --gop)'}`
  : `640×360 H.264 at ${FPS} fps per stream, pre-encoded and paced`;
console.log(`\nscheduling benchmark: ${values.mode} mode, fairShares ${values.fair}, budget ${BUDGET} ms, ${camerasText}, ${SECONDS} s per row, 2 cores`);
console.table(rows);
console.log(machine.report());
