/** Shared by the benchmarks: process figures from /proc, readiness polling, percentiles. */
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import type { LabelRecord, DroppedEvent as DroppedRecord } from '../src/core/frame.js';


export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Waits until the processor's /readyz answers 200. */
export async function waitReady(port: number, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`processor on port ${port} not ready after ${timeoutMs / 1000} s`);
}

/** CPU seconds (user + system) a process has used. */
export function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, in clock ticks of 1/100 s
}

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

/** The q-quantile (0..1) of an ascending array. */
export function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN;
}

/**
 * Deletes a run's topics (`<prefix>.chunks/.dlq/.labels/.events`) and consumer groups, so runs do
 * not pile partitions and segments up in the local broker (hundreds of leftover partitions were
 * measured to slow it down and push later runs' drop rates up).
 */
export async function removeRunTopics(prefix: string, groups: string[]): Promise<void> {
  const kafka = new kafkajs.Kafka({ clientId: 'bench-cleanup', brokers: ['127.0.0.1:9092'], logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const topics = ['chunks', 'dlq', 'labels', 'events'].map((t) => `${prefix}.${t}`).filter((t) => existing.has(t));
    if (topics.length) await admin.deleteTopics({ topics });
    await admin.deleteGroups(groups).catch(() => {});
  } catch (err) {
    console.error(`could not delete the topics of ${prefix}: ${(err as Error).message}`);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Process groups, the stack, inputs and paced producers, shared by latency / pipeline / backlog /
// scheduling. The benchmarks drive the processor only through its CLI, topology, topics and
// /metrics, so they measure whatever decode path the tree has.

/** Every process group a benchmark started, killed (SIGKILL) if the benchmark itself dies. */
const groups = new Set<number>();
process.once('exit', () => {
  for (const pgid of groups) killGroup(pgid, 'SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    /* already gone */
  }
}

export interface Group {
  child: ChildProcess;
  pid: number;
  /** Last ~4 KB of stderr, for error reports. */
  stderr(): string;
  exited: Promise<number | null>;
}

/** Spawns a command as the leader of its own process group (its ffmpeg children join the group). */
export function spawnGroup(cmd: string, args: string[], opts: SpawnOptions = {}): Group {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], ...opts, detached: true });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  const pid = child.pid;
  groups.add(pid);
  let tail = '';
  child.stderr?.on('data', (d: Buffer) => (tail = (tail + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      // Whatever the leader left behind (its ffmpeg children) goes with it; then the id is
      // forgotten, so a later kill can never reach a process that reused it.
      killGroup(pid, 'SIGKILL');
      groups.delete(pid);
      resolve(code);
    }),
  );
  return { child, pid, stderr: () => tail, exited };
}

/** `framewire <args>` (bin/framewire.js) in its own process group. */
/**
 * `node bin/framewire.js <args>` as its own process group. FW_NODE_ARGS adds node flags to the
 * `run` command (the processor), e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` for a CPU profile or
 * `--heapsnapshot-signal=SIGUSR2` for heap snapshots.
 */
export function spawnFramewire(args: string[], opts: SpawnOptions = {}): Group {
  const nodeArgs = args[0] === 'run' && process.env.FW_NODE_ARGS ? process.env.FW_NODE_ARGS.split(' ').filter(Boolean) : [];
  return spawnGroup('node', [...nodeArgs, path.join(ROOT, 'bin/framewire.js'), ...args], opts);
}

/** SIGTERM to the whole group, SIGKILL to whatever is left after the grace period (ffmpeg children too). */
export async function stopGroup(g: Group, graceMs = 8000): Promise<void> {
  if (!groups.has(g.pid)) return; // exited already (and its group was killed then)
  killGroup(g.pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([g.exited, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
  clearTimeout(timer);
  if (groups.has(g.pid)) killGroup(g.pid, 'SIGKILL'); // the leader ignored SIGTERM for the whole grace period
  await g.exited;
}

/**
 * Checks that the local stack the benchmarks use is up (Kafka 9092, Triton HTTP 8000 ready).
 * Never starts one: on a shared machine the stack is someone else's.
 */
export async function requireStack(): Promise<void> {
  const net = await import('node:net');
  await new Promise<void>((resolve, reject) => {
    const s = net.connect(9092, '127.0.0.1', () => (s.end(), resolve()));
    s.once('error', () => reject(new Error('Kafka is not listening on 127.0.0.1:9092 (start the stack: npx framewire stack up)')));
  });
  const r = await fetch('http://127.0.0.1:8000/v2/health/ready').catch(() => undefined);
  if (r?.status !== 200) throw new Error('Triton is not ready on 127.0.0.1:8000 (start the stack: npx framewire stack up)');
}

/** A random run prefix: topics `<prefix>.chunks/.labels/.events/.dlq`, group `<prefix>`. */
export function runPrefix(name: string): string {
  return `${name}-${randomBytes(3).toString('hex')}`;
}

/** Waits for /readyz with a fine poll, returning when (Date.now()) it first answered 200. */
export async function waitReadyAt(port: number, timeoutMs = 60_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) return Date.now();
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`processor on port ${port} not ready after ${timeoutMs / 1000} s`);
}

interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  pgid: number;
  /** utime + stime, s */
  self: number;
  /** cutime + cstime (children reaped by it), s */
  reaped: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const open = text.indexOf('(');
    const close = text.lastIndexOf(')');
    const f = text.slice(close + 2).split(' ');
    return {
      pid,
      comm: text.slice(open + 1, close),
      ppid: Number(f[1]),
      pgid: Number(f[2]),
      self: (Number(f[11]) + Number(f[12])) / 100,
      reaped: (Number(f[13]) + Number(f[14])) / 100,
    };
  } catch {
    return undefined; // exited meanwhile
  }
}

function allStats(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/**
 * CPU seconds of a whole process group: every live member's own time plus the time of the
 * children it has reaped (an ffmpeg decoder that exited is in its parent's cutime; a live one is
 * counted itself), so the figure only grows while members come and go. Sample it before the
 * group exits.
 */
export function groupCpuSeconds(pgid: number): number {
  let s = 0;
  for (const p of allStats()) if (p.pgid === pgid) s += p.self + p.reaped;
  return s;
}

/** CPU seconds of the processes whose name starts with `prefix` (e.g. Triton: `tritonserver`, `triton_python_b…`). */
export function cpuSecondsByName(prefix: string): { seconds: number; processes: number } {
  let seconds = 0;
  let processes = 0;
  for (const p of allStats()) {
    if (!p.comm.startsWith(prefix)) continue;
    seconds += p.self + p.reaped;
    processes++;
  }
  return { seconds, processes };
}

/** This process's reaped children's CPU (s): the delta around a phase is what its children used. */
export function reapedChildrenCpuSeconds(): number {
  return readStat(process.pid)!.reaped;
}

/** RSS of a whole process group, MB. */
export function groupRssMb(pgid: number): number {
  let mb = 0;
  for (const p of allStats()) if (p.pgid === pgid) mb += (() => { try { return rssMb(p.pid); } catch { return 0; } })();
  return mb;
}

// --- inputs -----------------------------------------------------------------------------------

export interface Video {
  file: string;
  ts: Buffer;
  /** Per video packet, in file order: where its bytes end in the file, its pts relative to the first (ms), keyframe. */
  packets: { end: number; ptsMs: number; key: boolean }[];
}

export interface EncodeOptions {
  /** A lavfi source graph, e.g. `testsrc2=s=640x360:r=25:d=20`. */
  lavfi: string;
  gop: number;
  /** Write PES packet lengths (`-omit_video_pes_length 0`); false keeps ffmpeg's default (omitted). */
  pesLength: boolean;
}

/**
 * Pre-encodes a test pattern to H.264 MPEG-TS like a camera would (libx264 veryfast zerolatency)
 * and indexes its video packets with ffprobe (byte position, pts, keyframe).
 */
export function encodeVideo(file: string, o: EncodeOptions): Video {
  execFileSync('ffmpeg', [
    '-v', 'error', '-y', '-f', 'lavfi', '-i', `${o.lavfi},format=yuv420p`,
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', String(o.gop),
    '-f', 'mpegts', ...(o.pesLength ? ['-omit_video_pes_length', '0'] : []), file,
  ]);
  return indexVideo(file);
}

export function indexVideo(file: string): Video {
  const csv = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,pos,flags', '-of', 'csv=p=0', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const rows = csv
    .split('\n')
    .map((l) => l.trim().split(','))
    .filter((f) => f.length >= 3 && f[0] !== '' && f[1] !== '')
    .map((f) => ({ pts: Number(f[0]), pos: Number(f[1]), key: f[2]!.startsWith('K') }));
  const ts = readFileSync(file);
  const p0 = rows[0]!.pts;
  // Bytes of packet k are complete once the next packet starts.
  return { file, ts, packets: rows.map((r, k) => ({ ptsMs: (r.pts - p0) * 1000, key: r.key, end: k + 1 < rows.length ? rows[k + 1]!.pos : ts.length })) };
}

/** A small deterministic PRNG (mulberry32, the tests' own), so chunk boundaries are the same from run to run. */
export { seededRng as prng } from '../test/helpers/colours.js';

/** Cuts bytes [0, length) into chunks of random sizes in [minBytes, maxBytes] (contract: boundaries are arbitrary). */
export function cutArbitrary(length: number, minBytes: number, maxBytes: number, rnd: () => number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (let at = 0; at < length; ) {
    const end = Math.min(length, at + minBytes + Math.floor(rnd() * (maxBytes - minBytes + 1)));
    out.push({ start: at, end });
    at = end;
  }
  return out;
}

export function chunkHeaders(stream: string, session: string, seq: number, epochMs: number, eos = false): Record<string, string> {
  const h: Record<string, string> = { 'fw-stream': stream, 'fw-session': session, 'fw-seq': String(seq), 'fw-format': 'mpegts', 'fw-epoch-ms': String(epochMs) };
  if (eos) h['fw-eos'] = '1';
  return h;
}

/** Creates a chunk topic the way the processor would (a full 1 MiB chunk plus headers fits). */
export async function createChunkTopic(topic: string, partitions: number): Promise<void> {
  const kafka = new kafkajs.Kafka({ clientId: 'bench-admin', brokers: ['127.0.0.1:9092'], logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, configEntries: [{ name: 'max.message.bytes', value: String(2 << 20) }] }] });
  } finally {
    await admin.disconnect();
  }
}

export interface PacedCamera {
  stream: string;
  session: string;
  video: Video;
  partition?: number;
  /** Capture time of the session's first frame (fw-epoch-ms). */
  epochMs: number;
  /** First packet to send (earlier ones were pre-loaded) and the next fw-seq / byte offset. */
  fromPacket: number;
  seq: number;
  sent: number;
  /** Stop before the packet with this pts (ms). */
  untilPtsMs: number;
}

/**
 * Realtime cameras without encoders: each sends the bytes of its pre-encoded file up to the end
 * of packet k when packet k is due (epoch + pts), cut where the packets end, with the contract's
 * headers. All cameras share one producer and one timer loop. Returns packets sent per camera.
 */
export async function pacedCameras(cams: PacedCamera[], topic: string, producer: kafkajs.Producer, stop?: () => boolean): Promise<number[]> {
  type Due = { at: number; cam: number; k: number };
  const events: Due[] = [];
  cams.forEach((c, i) => {
    for (let k = c.fromPacket; k < c.video.packets.length && c.video.packets[k]!.ptsMs < c.untilPtsMs; k++) events.push({ at: c.epochMs + c.video.packets[k]!.ptsMs, cam: i, k });
  });
  events.sort((a, b) => a.at - b.at);
  const count = cams.map(() => 0);
  for (let e = 0; e < events.length && !stop?.(); ) {
    const wait = events[e]!.at - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const messages: kafkajs.Message[] = [];
    const now = Date.now();
    for (; e < events.length && events[e]!.at <= now; e++) {
      const { cam, k } = events[e]!;
      const c = cams[cam]!;
      const end = c.video.packets[k]!.end;
      count[cam]!++;
      if (end <= c.sent) continue;
      const m = { key: c.stream, value: c.video.ts.subarray(c.sent, end), headers: chunkHeaders(c.stream, c.session, c.seq++, c.epochMs), partition: c.partition };
      c.sent = end;
      messages.push(m);
    }
    if (messages.length) await producer.send({ topic, acks: -1, messages });
  }
  return count;
}

// --- /metrics ---------------------------------------------------------------------------------

export async function fetchMetrics(port: number): Promise<string> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch {
    return '';
  }
}

/** Sum of a metric's samples whose labels contain `match` (e.g. `stage="decode"`), whatever else. */
export function metricSum(text: string, name: string, match = ''): number {
  let s = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)`, 'gm'))) if (!match || (m[1] ?? '').includes(match)) s += Number(m[2]);
  return s;
}

/** A histogram's cumulative buckets (le → count) for the samples whose labels contain `match`; undefined when absent. */
export function histogram(text: string, name: string, match: string): Map<number, number> | undefined {
  const h = new Map<number, number>();
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\S+)`, 'gm'))) {
    if (!m[1]!.includes(match)) continue;
    const le = /le="([^"]+)"/.exec(m[1]!)![1]!;
    h.set(le === '+Inf' ? Infinity : Number(le), (h.get(le === '+Inf' ? Infinity : Number(le)) ?? 0) + Number(m[2]));
  }
  return h.size ? h : undefined;
}

/** Bucket counts of `b` minus those of `a` (the observations between two scrapes). */
export function histogramDelta(b: Map<number, number>, a: Map<number, number> | undefined): Map<number, number> {
  const d = new Map<number, number>();
  for (const [le, c] of b) d.set(le, c - (a?.get(le) ?? 0));
  return d;
}

/**
 * The q-quantile of a cumulative histogram, interpolated linearly inside the bucket it falls in
 * (as Prometheus' histogram_quantile does; the lowest bucket starts at 0, a quantile in +Inf is
 * reported as the highest finite bound). Only as exact as the bucket bounds.
 */
export function histogramQuantile(h: Map<number, number>, q: number): { value: number; count: number } {
  const les = [...h.keys()].sort((a, b) => a - b);
  const total = h.get(Infinity) ?? h.get(les[les.length - 1]!)!;
  if (!total) return { value: Number.NaN, count: 0 };
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const le of les) {
    const c = h.get(le)!;
    if (c >= rank) {
      if (le === Infinity) return { value: prevLe, count: total };
      return { value: prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1e-9, c - prevCount), count: total };
    }
    prevLe = le;
    prevCount = c;
  }
  return { value: prevLe, count: total };
}

/** The records a run's outputs carry (docs/contracts.md), as the processor writes them. */
export type { LabelRecord, DroppedRecord };

/** A consumer of a run's labels and events topics from the beginning, collecting records. */
export interface Collector {
  labels: LabelRecord[];
  dropped: DroppedRecord[];
  /** Dead letters (`fw-dlq-reason: fw-dlq-detail`), when collected. */
  dlq: string[];
  stop(): Promise<void>;
}

/** `withDlq`: also the dead-letter topic, which must exist by then (create it first). */
export async function collectOutputs(prefix: string, withDlq = false): Promise<Collector> {
  const kafka = new kafkajs.Kafka({ clientId: 'bench-reader', brokers: ['127.0.0.1:9092'], logLevel: kafkajs.logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `${prefix}-reader`, maxWaitTimeInMs: 100 });
  const out: Collector = { labels: [], dropped: [], dlq: [], stop: async () => void (await consumer.disconnect().catch(() => {})) };
  await consumer.connect();
  // The processor creates these when it starts; subscribing first would fail on a missing topic.
  await consumer.subscribe({ topics: [`${prefix}.labels`, `${prefix}.events`, ...(withDlq ? [`${prefix}.dlq`] : [])], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, message }) => {
      if (topic.endsWith('.dlq')) {
        const h = (k: string) => message.headers?.[k]?.toString() ?? '?';
        out.dlq.push(`${h('fw-stream')} seq ${h('fw-seq')}: ${h('fw-dlq-reason')}: ${h('fw-dlq-detail')}`);
        return;
      }
      const v = JSON.parse(message.value!.toString()) as { type?: string };
      if (topic.endsWith('.labels')) out.labels.push(v as LabelRecord);
      else if (v.type === 'dropped') out.dropped.push(v as DroppedRecord);
    },
  });
  return out;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * How busy the whole machine was over a run (all users: the cores are shared), from /proc/stat,
 * and the load average at the end: the context for noisy figures.
 */
export function machineMeter(): { busy(): number; report(): string } {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3]! + (f[4] ?? 0);
    return { total: f.reduce((a, b) => a + b, 0), idle };
  };
  const a = read();
  const busy = () => {
    const b = read();
    return (100 * (b.total - a.total - (b.idle - a.idle))) / Math.max(1, b.total - a.total);
  };
  return {
    busy,
    report() {
      const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
      return `machine over the run: ${busy().toFixed(0)} % of all cores busy (every process, other users' included), load average ${load}`;
    },
  };
}
