/**
 * Shared helpers of the end-to-end tests (test/e2e/): they run the real `framewire run` processor
 * as a child process against the real local stack (Kafka 127.0.0.1:9092, Triton gRPC
 * 127.0.0.1:8001, ffmpeg) and observe it only through its contracts (docs/contracts.md): Kafka
 * topics, the WebSocket, /metrics, /healthz, /readyz, exit codes and stderr.
 *
 * Every test uses its own random topics and consumer group, and a free HTTP port, so test files
 * may run concurrently with each other and with anything else on the stack.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel, type Consumer, type IHeaders } from 'kafkajs';
import WebSocket from 'ws';

/** Compiled to dist/test/helpers/e2e.js: the repository root is three levels up. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const BROKERS = ['127.0.0.1:9092'];
export const TRITON_URL = '127.0.0.1:8001';
export const MODEL = 'colour_probe';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const randomId = (bytes = 4): string => randomBytes(bytes).toString('hex');

/** `scripts/stack.sh up`: idempotent, returns at once when the stack is already up. */
export function ensureStack(): void {
  execFileSync('bash', [path.join(ROOT, 'scripts/stack.sh'), 'up'], { stdio: 'inherit' });
}

/** A TCP port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

// ------------------------------------------------------------------------------------ kafka

export const kafka = new Kafka({ clientId: 'framewire-e2e', brokers: BROKERS, logLevel: logLevel.NOTHING });

export interface TopicRecord {
  partition: number;
  offset: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
  /** Date.now() when the collector received it. */
  receivedAt: number;
}

export function headersToStrings(h: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined) continue;
    const one = Array.isArray(v) ? v[0] : v;
    out[k] = Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
  }
  return out;
}

/**
 * Reads a topic from the beginning with a fresh consumer group and keeps every record (in
 * arrival order, so per-partition order is kept) until stopped.
 */
export class TopicCollector {
  readonly records: TopicRecord[] = [];
  private readonly parsed: unknown[] = [];
  private consumer: Consumer | undefined;
  readonly group = `fw-e2e-reader-${randomId()}`;

  private constructor(readonly topic: string) {}

  static async start(topic: string): Promise<TopicCollector> {
    const c = new TopicCollector(topic);
    const consumer = kafka.consumer({ groupId: c.group, maxWaitTimeInMs: 100, sessionTimeout: 10_000, heartbeatInterval: 1_000 });
    c.consumer = consumer;
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        c.records.push({
          partition,
          offset: message.offset,
          key: message.key?.toString('utf8') ?? '',
          value: message.value ?? Buffer.alloc(0),
          headers: headersToStrings(message.headers),
          receivedAt: Date.now(),
        });
      },
    });
    await withTimeout(joined, 20_000, `reader of ${topic} joining its group`);
    return c;
  }

  /** Values parsed as JSON (label records, events). */
  json<T = Record<string, unknown>>(): T[] {
    while (this.parsed.length < this.records.length) {
      const r = this.records[this.parsed.length]!;
      let v: unknown;
      try {
        v = JSON.parse(r.value.toString('utf8'));
      } catch {
        v = { '<not json>': r.value.toString('utf8').slice(0, 200) };
      }
      this.parsed.push(v);
    }
    return this.parsed.slice() as T[];
  }

  /** Disconnects and deletes the reader's consumer group. */
  async stop(): Promise<void> {
    const c = this.consumer;
    this.consumer = undefined;
    if (!c) return;
    await c.disconnect().catch(() => undefined);
    await deleteGroups([this.group]);
  }
}

/** Produces raw records (for bad input); resolves when acknowledged. Returns their offsets. */
export async function produceRaw(
  topic: string,
  messages: { key: string; value: Buffer; headers: Record<string, string> }[],
): Promise<{ partition: number; offset: string }[]> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const out: { partition: number; offset: string }[] = [];
    // One at a time: each record's own partition/offset, and order kept within a stream.
    for (const m of messages) {
      const [res] = await producer.send({ topic, acks: -1, messages: [m] });
      out.push({ partition: res!.partition, offset: res!.baseOffset ?? '' });
    }
    return out;
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

/** Best effort: the topics of a finished test are removed so the broker does not fill up. */
export async function deleteTopics(topics: string[]): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const mine = topics.filter((t) => existing.has(t));
    if (mine.length) await admin.deleteTopics({ topics: mine, timeout: 10_000 });
  } catch {
    /* best effort */
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Best effort: deletes (empty) consumer groups a test created, e.g. the processor's once it stopped. */
export async function deleteGroups(groups: string[]): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.deleteGroups(groups);
  } catch {
    /* best effort: a group with members left, or already gone */
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

// ------------------------------------------------------------------------------------ waiting

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `cond` every `everyMs` until true (returns true) or the timeout passes (returns false). */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= until) return false;
    await sleep(everyMs);
  }
}

/** Waits until `count()` has not changed for `quietMs` (true), or the timeout passes (false). */
export async function waitQuiet(count: () => number, quietMs: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  let last = count();
  let since = Date.now();
  while (Date.now() < until) {
    await sleep(100);
    const n = count();
    if (n !== last) {
      last = n;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return true;
  }
  return false;
}

// ------------------------------------------------------------------------------------ topology

export interface TestTopology {
  file: string;
  dir: string;
  name: string;
  port: number;
  httpBase: string;
  wsUrl: string;
  group: string;
  chunks: string;
  dlq: string;
  labels: string;
  events: string;
  alerts: string;
  topics: string[];
}

export interface TopologyOptions {
  idleTimeoutMs?: number;
  commitIntervalMs?: number;
  partitions?: number;
  budgetMs?: number;
  drainTimeoutMs?: number;
  /**
   * Scheduling mode. Tests that assert every frame is labelled use `replay` (nothing dropped);
   * `live` drops frames that miss the budget, e.g. the first frames while ffmpeg starts.
   */
  mode?: 'live' | 'replay';
  model?: string;
  /** Extra fields of the model entry, YAML flow style (e.g. `clip: { stride: 4 }`). */
  modelFields?: string;
  /** Extra top-level YAML (sampling, smoothing, …). */
  extra?: string;
  /** Extra entries of the sinks list, YAML lines (e.g. `  - { type: webhook, url: … }`). */
  extraSinks?: string;
}

/** A temp YAML topology with random topic names, a random group and a free HTTP port. */
export async function newTopology(opts: TopologyOptions = {}): Promise<TestTopology> {
  const id = randomId();
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-e2e-'));
  const base = `e2e.${id}`;
  const t: TestTopology = {
    file: path.join(dir, 'topology.yaml'),
    dir,
    name: `e2e-${id}`,
    port,
    httpBase: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    group: `fw-e2e-${id}`,
    chunks: `${base}.chunks`,
    dlq: `${base}.dlq`,
    labels: `${base}.labels`,
    events: `${base}.events`,
    alerts: `${base}.alerts`,
    topics: [],
  };
  t.topics = [t.chunks, t.dlq, t.labels, t.events, t.alerts];
  const yaml = `name: ${t.name}
kafka: { brokers: ["${BROKERS.join('", "')}"], clientId: ${t.name} }
http: { listen: "127.0.0.1:${port}" }
latency: { budgetMs: ${opts.budgetMs ?? 250} }
sources:
  - { type: kafka, topic: ${t.chunks}, group: ${t.group}, partitions: ${opts.partitions ?? 3}, dlqTopic: ${t.dlq}, commitIntervalMs: ${opts.commitIntervalMs ?? 200} }
decode: { idleTimeoutMs: ${opts.idleTimeoutMs ?? 1500} }
batch: { maxWaitMs: 15, queueFrames: 256, maxInflight: 2, mode: ${opts.mode ?? 'replay'} }
triton: { url: "${TRITON_URL}", timeoutMs: 5000 }
models: [ { name: ${opts.model ?? MODEL}, topK: 3${opts.modelFields ? `, ${opts.modelFields}` : ''} } ]
${opts.extra ?? ''}
sinks:
  - { type: kafka, topic: ${t.labels}, eventsTopic: ${t.events}, alertsTopic: ${t.alerts} }
  - { type: websocket, path: /ws }
${opts.extraSinks ?? ''}
shutdown: { drainTimeoutMs: ${opts.drainTimeoutMs ?? 10_000} }
`;
  writeFileSync(t.file, yaml);
  return t;
}

/** Deletes a test topology's topics, consumer group and temp folder (after hooks). */
export async function removeTopology(topo: TestTopology | undefined): Promise<void> {
  if (!topo) return;
  await deleteTopics(topo.topics);
  await deleteGroups([topo.group]);
  removeDir(topo.dir);
}

/** Writes arbitrary topology text to a temp file (for invalid topologies). */
export function writeTempFile(text: string, name = 'topology.yaml'): { file: string; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-e2e-'));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return { file, dir };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

// ------------------------------------------------------------------------------------ processor

const live = new Set<Processor>();
// Last resort: a test runner that exits (or crashes) never leaves a processor behind.
process.on('exit', () => {
  for (const p of live) p.child.kill('SIGKILL');
});

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** `node bin/framewire.js <args>` as a child of the test, with stdout/stderr captured. */
export class Processor {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  readonly startedAt = Date.now();
  stdout = '';
  stderr = '';
  status: ExitStatus | undefined;

  constructor(args: string[], readonly label = 'processor') {
    this.child = spawn(process.execPath, [path.join(ROOT, 'bin/framewire.js'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env },
    });
    live.add(this);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdout = cap(this.stdout + d)));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr = cap(this.stderr + d)));
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.status = { code, signal };
        live.delete(this);
        resolve(this.status);
      });
      this.child.once('error', () => {
        this.status = { code: null, signal: null };
        live.delete(this);
        resolve(this.status);
      });
    });
  }

  static run(topologyFile: string, label?: string): Processor {
    return new Processor(['run', '--topology', topologyFile], label);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.status === undefined;
  }

  /** Polls /readyz until 200; throws (with the stderr tail) when it exits or time runs out. */
  async waitReady(httpBase: string, timeoutMs = 40_000): Promise<number> {
    const t0 = Date.now();
    let last = '';
    while (Date.now() - t0 < timeoutMs) {
      if (!this.running) throw new Error(`${this.label} exited (${fmtStatus(this.status!)}) before it was ready\n${this.tail()}`);
      try {
        const res = await httpGet(`${httpBase}/readyz`, 1000);
        if (res.status === 200) return Date.now() - t0;
        last = `${res.status} ${res.body}`;
      } catch (err) {
        last = (err as Error).message;
      }
      await sleep(200);
    }
    throw new Error(`${this.label} not ready after ${timeoutMs} ms (last /readyz: ${last})\n${this.tail()}`);
  }

  /** SIGTERM (drains) and waits; SIGKILL if it has not exited after `timeoutMs`. */
  async stop(timeoutMs = 30_000): Promise<ExitStatus> {
    if (!this.running) return this.status!;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL, as a crash. */
  async kill(): Promise<ExitStatus> {
    if (!this.running) return this.status!;
    this.child.kill('SIGKILL');
    return this.exited;
  }

  /** The last `lines` lines of stderr (JSON log lines), for failure messages. */
  tail(lines = 40): string {
    const all = this.stderr.trimEnd().split('\n');
    return `--- ${this.label} (pid ${this.child.pid}) stderr, last ${Math.min(lines, all.length)} of ${all.length} lines ---\n${all.slice(-lines).join('\n')}`;
  }

  /** stderr parsed as JSON log lines (non-JSON lines are skipped). */
  logs(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* partial line */
      }
    }
    return out;
  }
}

function cap(s: string, max = 4 << 20): string {
  return s.length > max ? s.slice(s.length - max) : s;
}

export function fmtStatus(s: ExitStatus): string {
  return s.signal ? `signal ${s.signal}` : `code ${s.code}`;
}

/**
 * Stops every processor this file started that is still running (for `after` hooks): SIGTERM,
 * then SIGKILL after `graceMs`.
 */
export async function stopAllProcessors(graceMs = 15_000): Promise<void> {
  await Promise.all([...live].map((p) => p.stop(graceMs)));
}

/** Runs `fn`; if it throws, prints the processors' stderr tails first (then rethrows). */
export async function withLogs<T>(procs: () => (Processor | undefined)[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    for (const p of procs()) if (p) console.error(p.tail(60));
    throw err;
  }
}

/** Direct children of a process (e.g. a processor's ffmpeg decoders), with their command lines. */
export function childProcesses(pid: number): { pid: number; cmd: string }[] {
  let out = '';
  try {
    out = execFileSync('pgrep', ['-a', '-P', String(pid)], { encoding: 'utf8' });
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const i = l.indexOf(' ');
      return { pid: Number(l.slice(0, i)), cmd: l.slice(i + 1) };
    });
}

/** Processes whose command line matches `pattern` (pgrep -f). */
export function pgrep(pattern: string): { pid: number; cmd: string }[] {
  let out = '';
  try {
    out = execFileSync('pgrep', ['-a', '-f', pattern], { encoding: 'utf8' });
  } catch {
    return [];
  }
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const i = l.indexOf(' ');
      return { pid: Number(l.slice(0, i)), cmd: l.slice(i + 1) };
    })
    .filter((p) => p.pid !== process.pid);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------ http

export async function httpGet(url: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

/** GET /metrics as Prometheus text. */
export async function scrapeMetrics(httpBase: string): Promise<string> {
  const res = await httpGet(`${httpBase}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.body}`);
  return res.body;
}

/**
 * Sum of the samples of `name` whose labels include all of `labels` (0 when none).
 * E.g. metricValue(text, 'framewire_chunks_dead_lettered_total', { reason: 'missing-header' }).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const lm of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[lm[1]!] = lm[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

// ------------------------------------------------------------------------------------ websocket

/** A WebSocket client of /ws that keeps every JSON message it receives, in order. */
export class WsCollector {
  readonly messages: Record<string, unknown>[] = [];
  closed = false;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      try {
        this.messages.push(JSON.parse(String(data)) as Record<string, unknown>);
      } catch {
        this.messages.push({ type: '<not json>', raw: String(data) });
      }
    });
    ws.on('close', () => (this.closed = true));
    ws.on('error', () => undefined);
  }

  /** Connects to `wsUrl` (optionally `?streams=a,b`) and resolves once open. */
  static async connect(wsUrl: string, streams?: string[]): Promise<WsCollector> {
    const url = streams?.length ? `${wsUrl}?streams=${streams.map(encodeURIComponent).join(',')}` : wsUrl;
    const ws = new WebSocket(url);
    const c = new WsCollector(ws);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      }),
      10_000,
      `WebSocket ${url} opening`,
    );
    return c;
  }

  labels(): LabelRecord[] {
    return this.messages.filter((m) => m.type === 'label') as unknown as LabelRecord[];
  }

  events(type?: string): Record<string, unknown>[] {
    return this.messages.filter((m) => m.type !== 'label' && (type === undefined || m.type === type));
  }

  close(): void {
    if (!this.closed) this.ws.terminate();
    this.closed = true;
  }
}

// ------------------------------------------------------------------------------------ video

/** The colour_probe classes as ffmpeg colours (pure RGB corners; ffmpeg's `green` is 0x008000). */
export const COLOURS = {
  black: '0x000000',
  white: '0xFFFFFF',
  red: '0xFF0000',
  green: '0x00FF00',
  blue: '0x0000FF',
  yellow: '0xFFFF00',
  cyan: '0x00FFFF',
  magenta: '0xFF00FF',
} as const;
export type Colour = keyof typeof COLOURS;
export const COLOUR_NAMES = Object.keys(COLOURS) as Colour[];

export interface Segment {
  colour: Colour;
  frames: number;
}

export interface ColourVideo {
  /** runIngest input: `lavfi:<graph>`. */
  input: string;
  graph: string;
  width: number;
  height: number;
  fps: number;
  segments: Segment[];
  /** Expected top label of each frame index 0..frames-1. */
  expected: Colour[];
  frames: number;
  /** First frame index of each segment after the first (where the colour changes). */
  changes: number[];
}

/**
 * A lavfi graph of solid-colour segments, each exactly `frames` frames long (trim by frame count,
 * not by duration, so rounding never adds or removes a frame), concatenated, as yuv420p.
 */
export function colourVideo(width: number, height: number, fps: number, segments: Segment[]): ColourVideo {
  if (segments.length === 0) throw new RangeError('at least one segment');
  const parts = segments.map((s, i) => `color=c=${COLOURS[s.colour]}:s=${width}x${height}:r=${fps},trim=end_frame=${s.frames},setpts=PTS-STARTPTS[s${i}]`);
  const inputs = segments.map((_, i) => `[s${i}]`).join('');
  const graph = `${parts.join(';')};${inputs}concat=n=${segments.length}:v=1:a=0,format=yuv420p`;
  const expected: Colour[] = [];
  const changes: number[] = [];
  for (const [i, s] of segments.entries()) {
    if (i > 0) changes.push(expected.length);
    for (let f = 0; f < s.frames; f++) expected.push(s.colour);
  }
  return { input: `lavfi:${graph}`, graph, width, height, fps, segments, expected, frames: expected.length, changes };
}

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Segments of random colours (never the same colour twice in a row) and random lengths in
 * [minFrames, maxFrames], totalling exactly `totalFrames` (the last one absorbs the remainder).
 */
export function randomSegments(rng: () => number, totalFrames: number, minFrames = 10, maxFrames = 40): Segment[] {
  const segs: Segment[] = [];
  let left = totalFrames;
  let prev: Colour | undefined;
  while (left > 0) {
    let n = minFrames + Math.floor(rng() * (maxFrames - minFrames + 1));
    if (left - n < minFrames) n = left; // no runt at the end
    const choices = COLOUR_NAMES.filter((c) => c !== prev);
    const colour = choices[Math.floor(rng() * choices.length)]!;
    segs.push({ colour, frames: n });
    prev = colour;
    left -= n;
  }
  return segs;
}

// ------------------------------------------------------------------------------------ labels

/** The label record (docs/contracts.md), as the processor writes it. */
export type { LabelRecord } from '../../src/core/frame.js';
import type { LabelRecord } from '../../src/core/frame.js';

export interface StreamCheck {
  /** Label records of the session, in arrival order. */
  received: number;
  /** Frame indices 0..N-1 with no label. */
  missing: number[];
  /** Frame indices outside 0..N-1. */
  unexpected: number[];
  /** Frames whose top label is wrong, away from a colour change. */
  wrong: { frame: number; got: string; want: string }[];
  /** Frames near a colour change whose top label is not the expected one (tolerated). */
  toleratedNearChange: { frame: number; got: string; want: string }[];
  /** Places where a record's frame index is not greater than the one before it. */
  orderViolations: { at: number; prev: number; frame: number }[];
  duplicates: number;
}

/**
 * Compares one session's label records (arrival order) with the video's expected colours.
 * Frames within `tolerance` frames either side of a colour change (the `tolerance` frames before
 * the change and the `tolerance` frames from it) may carry the neighbouring colour.
 */
export function checkLabels(records: LabelRecord[], video: ColourVideo, tolerance = 2): StreamCheck {
  const near = new Set<number>();
  for (const b of video.changes) for (let i = b - tolerance; i < b + tolerance; i++) near.add(i);
  const seen = new Set<number>();
  const res: StreamCheck = { received: records.length, missing: [], unexpected: [], wrong: [], toleratedNearChange: [], orderViolations: [], duplicates: 0 };
  let prev = -1;
  for (const [at, r] of records.entries()) {
    if (r.frame <= prev) res.orderViolations.push({ at, prev, frame: r.frame });
    prev = Math.max(prev, r.frame);
    if (seen.has(r.frame)) res.duplicates++;
    seen.add(r.frame);
    if (!Number.isInteger(r.frame) || r.frame < 0 || r.frame >= video.frames) {
      res.unexpected.push(r.frame);
      continue;
    }
    const got = r.labels?.[0]?.label ?? '<none>';
    const want = video.expected[r.frame]!;
    if (got === want) continue;
    (near.has(r.frame) ? res.toleratedNearChange : res.wrong).push({ frame: r.frame, got, want });
  }
  for (let i = 0; i < video.frames; i++) if (!seen.has(i)) res.missing.push(i);
  return res;
}

/** Label records of one stream (and session, when given), in arrival order. */
export function labelsOf(records: LabelRecord[], stream: string, session?: string): LabelRecord[] {
  return records.filter((r) => r.stream === stream && (session === undefined || r.session === session));
}

/** True when every frame 0..frames-1 of the stream session has at least one label record. */
export function hasAllFrames(records: LabelRecord[], stream: string, session: string, frames: number): boolean {
  const seen = new Set<number>();
  for (const r of records) if (r.stream === stream && r.session === session && r.frame >= 0 && r.frame < frames) seen.add(r.frame);
  return seen.size === frames;
}

/** A `dropped` event as published on the events topic (docs/contracts.md). */
export interface DroppedRecord {
  type: string;
  stream: string;
  session: string;
  fromFrame: number;
  toFrame: number;
  reason: string;
  count: number;
}

/**
 * Asserts that every frame 0..frames-1 of the stream session is covered exactly once: by a label
 * record or by a `dropped` event (other events and other streams are ignored).
 */
export function assertCoveredOnce(labels: LabelRecord[], events: DroppedRecord[], stream: string, session: string, frames: number): void {
  const count = new Uint8Array(frames);
  for (const r of labels) if (r.stream === stream && r.session === session) count[r.frame]!++;
  for (const e of events) if (e.type === 'dropped' && e.stream === stream && e.session === session) for (let i = e.fromFrame; i <= e.toFrame; i++) count[i]!++;
  const missing: number[] = [];
  const twice: number[] = [];
  count.forEach((c, i) => (c === 0 ? missing.push(i) : c > 1 ? twice.push(i) : undefined));
  assert.deepEqual(missing, [], `${stream}: frames neither labelled nor dropped: ${ranges(missing)}`);
  assert.deepEqual(twice, [], `${stream}: frames counted twice: ${ranges(twice)}`);
}

/** A compact description of index lists: "0-4,7,9-12". */
export function ranges(indices: number[]): string {
  const s = [...new Set(indices)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return out.join(',');
}
