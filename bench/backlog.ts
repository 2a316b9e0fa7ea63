/**
 * Backlog benchmark on the real local stack (prints a table; not a test): how fast a processor
 * that starts late gets its live streams back within budget, and whether every frame is still
 * accounted for.
 *
 *   node dist/bench/backlog.js [--chunks 2000] [--dead 20] [--live 4] [--backlog-seconds 10]
 *        [--seconds 20] [--budget 250] [--idle-ms 2000] [--dead-chunk-kib 4-64] [--pes-length on|off]
 *
 * Into a fresh 3-partition topic, before the processor starts: --backlog-seconds of 4 live
 * cameras (one chunk per video packet, as a paced camera sends them) and, for the rest of the
 * --chunks, 20 dead sessions (streams that ended a while ago and never continue; no fw-eos, cut
 * at random 4–64 KiB), interleaved by capture time. Then `framewire run` (live mode, budget
 * 250 ms, colour_probe) starts while the live cameras keep producing paced (in-process, no
 * encoder) for --seconds. Reported:
 *  - recovery: from /readyz until, for every live stream, 1 s of consecutive frames (25) is
 *    labelled within the budget (the publish time of the first frame of that run; the worst stream);
 *  - the backlog: when the processor had consumed it (chunks received ≥ chunks in the topic, from
 *    /metrics), chunks/s consumed and frames/s shed (skipped undecoded) meanwhile;
 *  - the accounting, after the cameras stop and the idle timeout has passed: every frame of every
 *    session labelled or dropped once, with its reason; frames with neither, or covered twice.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import kafkajs from 'kafkajs';
import {
  chunkHeaders,
  collectOutputs,
  createChunkTopic,
  encodeVideo,
  fetchMetrics,
  metricSum,
  pacedCameras,
  prng,
  removeRunTopics,
  requireStack,
  runPrefix,
  sleep,
  spawnFramewire,
  stopGroup,
  waitReadyAt,
  machineMeter,
  type PacedCamera,
  type Video,
} from './lib.js';

const { values } = parseArgs({
  options: {
    chunks: { type: 'string', default: '2000' },
    dead: { type: 'string', default: '20' },
    live: { type: 'string', default: '4' },
    'backlog-seconds': { type: 'string', default: '10' },
    seconds: { type: 'string', default: '20' },
    budget: { type: 'string', default: '250' },
    'idle-ms': { type: 'string', default: '2000' },
    'dead-chunk-kib': { type: 'string', default: '4-64' },
    'pes-length': { type: 'string', default: 'on' },
    port: { type: 'string', default: '18084' },
  },
});
const CHUNKS = Number(values.chunks);
const DEAD = Number(values.dead);
const LIVE = Number(values.live);
const BACKLOG_MS = Number(values['backlog-seconds']) * 1000;
const SECONDS = Number(values.seconds);
const BUDGET = Number(values.budget);
const IDLE_MS = Number(values['idle-ms']);
const [MIN_KIB, MAX_KIB] = values['dead-chunk-kib']!.split('-').map(Number) as [number, number];
const PES = values['pes-length'] !== 'off';
const PORT = Number(values.port);
const FPS = 25;
const RUN_FRAMES = FPS; // 1 s of consecutive on-budget frames

interface Session {
  stream: string;
  session: string;
  /** Frames the session has (decodable video packets sent). */
  frames: number;
  live: boolean;
}

function topology(dir: string, prefix: string): string {
  const file = path.join(dir, `${prefix}.yaml`);
  writeFileSync(
    file,
    `name: bench
kafka: { brokers: ["127.0.0.1:9092"], clientId: bench }
http: { listen: "127.0.0.1:${PORT}" }
latency: { budgetMs: ${BUDGET} }
sources: [{ type: kafka, topic: ${prefix}.chunks, group: ${prefix}, partitions: 3, dlqTopic: ${prefix}.dlq, fromBeginning: true }]
decode: { idleTimeoutMs: ${IDLE_MS} }
batch: { maxWaitMs: 10, mode: live, streamQueueFrames: 16, queueFrames: 512, maxInflight: 2 }
models: [{ name: colour_probe, topK: 2 }]
smoothing: { method: off }
sinks: [{ type: kafka, topic: ${prefix}.labels, eventsTopic: ${prefix}.events }]
shutdown: { drainTimeoutMs: 2000 }
`,
  );
  return file;
}

/** Pre-loads the backlog; returns the live cameras (to continue from where the backlog ends) and every session. */
async function preload(topic: string, video: Video, producer: kafkajs.Producer, t0: number) {
  const rnd = prng(7);
  const sessions: Session[] = [];
  const messages: { at: number; m: kafkajs.Message }[] = [];
  const live: PacedCamera[] = [];
  const liveEpoch = t0 - BACKLOG_MS;
  const run = t0.toString(36);
  for (let i = 0; i < LIVE; i++) {
    const cam: PacedCamera = { stream: `live-${i}`, session: `l${i}-${run}`, video, partition: i % 3, epochMs: liveEpoch, fromPacket: 0, seq: 0, sent: 0, untilPtsMs: BACKLOG_MS + SECONDS * 1000 };
    for (let k = 0; k < video.packets.length && video.packets[k]!.ptsMs < BACKLOG_MS; k++) {
      const p = video.packets[k]!;
      if (p.end <= cam.sent) continue;
      messages.push({ at: liveEpoch + p.ptsMs, m: { key: cam.stream, partition: cam.partition, value: video.ts.subarray(cam.sent, p.end), headers: chunkHeaders(cam.stream, cam.session, cam.seq++, liveEpoch) } });
      cam.sent = p.end;
      cam.fromPacket = k + 1;
    }
    live.push(cam);
    sessions.push({ stream: cam.stream, session: cam.session, frames: video.packets.filter((p) => p.ptsMs < cam.untilPtsMs).length, live: true });
  }
  const liveChunks = messages.length;
  const perDead = Math.max(1, Math.round((CHUNKS - liveChunks) / DEAD));
  for (let d = 0; d < DEAD; d++) {
    // A prefix of the file, in perDead chunks of random sizes, ending where a video packet ends.
    const sizes = Array.from({ length: perDead }, () => (MIN_KIB + Math.floor(rnd() * (MAX_KIB - MIN_KIB + 1))) * 1024);
    const target = sizes.reduce((a, b) => a + b, 0);
    let last = 0;
    while (last + 1 < video.packets.length && video.packets[last + 1]!.end <= target) last++;
    const end = video.packets[last]!.end;
    const stream = `dead-${d}`;
    const session = `d${d}-${run}`;
    const durationMs = video.packets[last]!.ptsMs;
    // Ended between 1 and 30 s before the live backlog began.
    const epoch = liveEpoch - durationMs - 1000 - Math.floor(rnd() * 29_000);
    let at = 0;
    let seq = 0;
    for (const s of sizes) {
      const to = Math.min(end, at + s);
      if (to <= at) break;
      messages.push({ at: epoch + (durationMs * to) / end, m: { key: stream, partition: (LIVE + d) % 3, value: video.ts.subarray(at, to), headers: chunkHeaders(stream, session, seq++, epoch) } });
      at = to;
    }
    if (at < end) messages.push({ at: epoch + durationMs, m: { key: stream, partition: (LIVE + d) % 3, value: video.ts.subarray(at, end), headers: chunkHeaders(stream, session, seq++, epoch) } });
    sessions.push({ stream, session, frames: last + 1, live: false });
  }
  // Interleaved by capture time, as they would have arrived; sessions keep their order.
  messages.sort((a, b) => a.at - b.at);
  for (let i = 0; i < messages.length; ) {
    const batch: kafkajs.Message[] = [];
    let bytes = 0;
    for (; i < messages.length && (batch.length === 0 || bytes < 768 * 1024); i++) {
      batch.push(messages[i]!.m);
      bytes += (messages[i]!.m.value as Buffer).length;
    }
    await producer.send({ topic, acks: -1, messages: batch });
  }
  return { live, sessions, liveChunks, deadChunks: messages.length - liveChunks };
}

await requireStack();
const machine = machineMeter();
const dir = mkdtempSync(path.join(tmpdir(), 'fw-bench-backlog-'));
const prefix = runPrefix('bbacklog');
let proc: ReturnType<typeof spawnFramewire> | undefined;
let out: Awaited<ReturnType<typeof collectOutputs>> | undefined;
const kafka = new kafkajs.Kafka({ clientId: 'bench', brokers: ['127.0.0.1:9092'], logLevel: kafkajs.logLevel.NOTHING });
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
try {
  const video = encodeVideo(path.join(dir, 'camera.ts'), { lavfi: `testsrc2=s=640x360:r=${FPS}:d=${BACKLOG_MS / 1000 + SECONDS + 2}`, gop: FPS, pesLength: PES });
  await createChunkTopic(`${prefix}.chunks`, 3);
  await createChunkTopic(`${prefix}.dlq`, 1);
  await producer.connect();
  const pre = await preload(`${prefix}.chunks`, video, producer, Date.now());
  const backlogChunks = pre.liveChunks + pre.deadChunks;
  // The live cameras go on (their next packets are due now) while the processor starts.
  const cameras = pacedCameras(pre.live, `${prefix}.chunks`, producer);
  const started = Date.now();
  proc = spawnFramewire(['run', '--topology', topology(dir, prefix)]);
  const ready = await waitReadyAt(PORT);
  out = await collectOutputs(prefix, true);
  // Until the backlog is consumed: /metrics every 100 ms against the chunks in the topic so far.
  let drainedAt = Number.NaN;
  let drained = { received: 0, shed: 0 };
  let camerasDone = false;
  void cameras.then(() => (camerasDone = true));
  while (!camerasDone) {
    const text = await fetchMetrics(PORT);
    const received = metricSum(text, 'framewire_chunks_received_total');
    const inTopic = pre.deadChunks + pre.live.reduce((a, c) => a + c.seq, 0);
    if (Number.isNaN(drainedAt) && received >= inTopic - 2 * LIVE) {
      drainedAt = Date.now();
      drained = { received, shed: metricSum(text, 'framewire_frames_shed_total') };
    }
    await sleep(100);
  }
  await cameras;
  const atEnd = await fetchMetrics(PORT);
  await sleep(IDLE_MS + 5000); // idle timeout: the last frames of every session come out, or are reported
  const final = await fetchMetrics(PORT);

  // Recovery per live stream: the first run of RUN_FRAMES consecutive frames labelled within budget.
  const recovery: number[] = [];
  const onBudgetAfter: number[] = [];
  for (const s of pre.sessions.filter((x) => x.live)) {
    const byFrame = new Map<number, { lat: number; pub: number; cap: number }>();
    for (const l of out.labels) if (l.stream === s.stream && l.session === s.session) byFrame.set(l.frame, { lat: l.publishedTs - l.captureTs, pub: l.publishedTs, cap: l.captureTs });
    let runStart = -1;
    let found = Number.NaN;
    let foundFrame = -1;
    for (let f = 0; f < s.frames; f++) {
      const r = byFrame.get(f);
      if (!r || r.lat > BUDGET) {
        runStart = -1;
        continue;
      }
      if (runStart < 0) runStart = f;
      if (f - runStart + 1 >= RUN_FRAMES) {
        found = byFrame.get(runStart)!.pub - ready;
        foundFrame = runStart;
        break;
      }
    }
    recovery.push(found);
    if (foundFrame >= 0) {
      let ok = 0;
      for (let f = foundFrame; f < s.frames; f++) if ((byFrame.get(f)?.lat ?? Infinity) <= BUDGET) ok++;
      onBudgetAfter.push((100 * ok) / (s.frames - foundFrame));
    }
  }

  // Accounting: every frame of every session exactly once (a label, or one dropped record).
  let expected = 0;
  let labelled = 0;
  let neither = 0;
  let twice = 0;
  let beyond = 0;
  const reasons: Record<string, number> = {};
  for (const s of pre.sessions) {
    const cover = new Uint8Array(s.frames);
    const bump = (f: number) => {
      if (f < 0 || f >= s.frames) beyond++;
      else if (cover[f]++ === 1) twice++;
    };
    for (const l of out.labels) if (l.session === s.session) (bump(l.frame), labelled++);
    for (const d of out.dropped) {
      if (d.session !== s.session) continue;
      reasons[d.reason] = (reasons[d.reason] ?? 0) + d.count;
      for (let f = d.fromFrame; f <= d.toFrame; f++) bump(f);
    }
    expected += s.frames;
    for (const c of cover) if (c === 0) neither++;
  }
  const backlogS = (drainedAt - ready) / 1000;
  const worst = Math.max(...recovery);
  console.log(
    `\nbacklog benchmark: ${backlogChunks} chunks pre-loaded (${pre.deadChunks} from ${DEAD} dead sessions, ${pre.liveChunks} = ${BACKLOG_MS / 1000} s of ${LIVE} live cameras), then the processor starts while the live cameras go on for ${SECONDS} s; live mode, budget ${BUDGET} ms, idle timeout ${IDLE_MS} ms, 640×360 testsrc2 H.264 at ${FPS} fps, 2 cores`,
  );
  console.table([
    {
      'start → ready s': ((ready - started) / 1000).toFixed(1),
      'recovered s after ready (≤5)': Number.isNaN(worst) ? 'never' : (worst / 1000).toFixed(1),
      'per live stream s': recovery.map((r) => (Number.isNaN(r) ? 'never' : (r / 1000).toFixed(1))).join(' '),
      'on budget after, %': onBudgetAfter.map((p) => p.toFixed(0)).join(' '),
      'backlog consumed s': Number.isNaN(backlogS) ? 'not within the run' : backlogS.toFixed(1),
      'chunks/s consumed': Number.isNaN(backlogS) ? '–' : (drained.received / backlogS).toFixed(0),
      'frames/s shed': Number.isNaN(backlogS) ? '–' : (drained.shed / backlogS).toFixed(0),
      'frames shed (run)': metricSum(atEnd, 'framewire_frames_shed_total'),
      'load sheds': metricSum(final, 'framewire_load_sheds_total'),
    },
  ]);
  console.table([
    {
      sessions: pre.sessions.length,
      frames: expected,
      labelled,
      ...Object.fromEntries(Object.entries(reasons).map(([r, c]) => [`dropped ${r}`, c])),
      'neither (≠0: lost)': neither,
      'covered twice': twice,
      'beyond last frame': beyond,
      'dlq chunks': metricSum(final, 'framewire_chunks_dead_lettered_total'),
    },
  ]);
  console.log(`recovery = from /readyz to the publish of the first of ${RUN_FRAMES} consecutive frames labelled within ${BUDGET} ms, worst live stream; "on budget after" = share of each live stream's frames from there on labelled within budget.`);
  for (const d of out.dlq.slice(0, 5)) console.log(`dead letter: ${d}`);
  console.log(machine.report());
  console.log(`backlog consumed = /readyz until framewire_chunks_received_total reached the chunks in the topic (polled every 100 ms); accounting counted ${IDLE_MS + 5000} ms after the cameras stopped.`);
} catch (err) {
  if (proc) console.error(proc.stderr());
  throw err;
} finally {
  await producer.disconnect().catch(() => {});
  await out?.stop();
  if (proc) await stopGroup(proc);
  await removeRunTopics(prefix, [prefix, `${prefix}-reader`]);
  rmSync(dir, { recursive: true, force: true });
}
