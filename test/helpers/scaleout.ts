/**
 * Several `framewire run` processes in one consumer group, for the scale-out test and benchmark:
 * topologies that differ only in `http.listen`, members started as their own process groups (so
 * a SIGKILL takes their ffmpeg decoders along, as a crashed container would), paced cameras on
 * chosen partitions, and the analysis of what came out: every frame accounted for, duplicates,
 * and how long the streams of each event took to be labelled again.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Producer } from 'kafkajs';
import { ensureTopics } from '../../src/kafka/topics.js';
import { ROOT, BROKERS, TRITON_URL, randomId } from './stack.js';
import { kafka } from './topics.js';
import { sleep } from './wait.js';
import { colourVideo, randomSegments, seededRng, type ColourVideo } from './colours.js';
import { checkLabels, type DroppedRecord, type LabelRecord } from './accounting.js';
import { encodeVideo, sendVideo, type EncodedVideo } from './cameras.js';

export interface GroupSetup {
  name: string;
  group: string;
  chunks: string;
  dlq: string;
  labels: string;
  events: string;
  topics: string[];
  partitions: number;
  dir: string;
  /** The topology file of the member listening on `port`. */
  file(port: number): string;
}

export interface GroupOptions {
  partitions: number;
  budgetMs?: number;
  /** Extra fields of the kafka source entry, YAML flow style. */
  sourceFields?: string;
  drainTimeoutMs?: number;
}

/** Topologies for members of one group (same topics and group, one HTTP port each). */
export function groupTopology(o: GroupOptions): GroupSetup {
  const id = randomId();
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-scale-'));
  const base = `scale.${id}`;
  const g = {
    name: `scale-${id}`,
    group: `fw-scale-${id}`,
    chunks: `${base}.chunks`,
    dlq: `${base}.dlq`,
    labels: `${base}.labels`,
    events: `${base}.events`,
    partitions: o.partitions,
    dir,
  };
  const file = (port: number): string => {
    const f = path.join(dir, `member-${port}.yaml`);
    writeFileSync(
      f,
      `name: ${g.name}
kafka: { brokers: ["${BROKERS.join('", "')}"], clientId: ${g.name}-${port} }
http: { listen: "127.0.0.1:${port}" }
latency: { budgetMs: ${o.budgetMs ?? 400} }
sources:
  - { type: kafka, topic: ${g.chunks}, group: ${g.group}, partitions: ${o.partitions}, dlqTopic: ${g.dlq}, commitIntervalMs: 200${o.sourceFields ? `, ${o.sourceFields}` : ''} }
decode: { idleTimeoutMs: 3000 }
batch: { maxWaitMs: 15, queueFrames: 256, maxInflight: 2, mode: live }
triton: { url: "${TRITON_URL}", timeoutMs: 5000 }
models: [ { name: colour_probe, topK: 3 } ]
sinks:
  - { type: kafka, topic: ${g.labels}, eventsTopic: ${g.events}, partitions: ${o.partitions} }
shutdown: { drainTimeoutMs: ${o.drainTimeoutMs ?? 5000} }
`,
    );
    return f;
  };
  return { ...g, topics: [g.chunks, g.dlq, g.labels, g.events], file };
}

/**
 * Creates the group's topics and waits until every partition has a leader (a loaded broker
 * answers UNKNOWN_TOPIC_OR_PARTITION for a moment after creating one); retried.
 */
export async function createGroupTopics(g: GroupSetup): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await ensureTopics(admin, g.topics.map((topic) => ({ topic, numPartitions: g.partitions })));
        const md = await admin.fetchTopicMetadata({ topics: g.topics });
        if (md.topics.every((t) => t.partitions.length === g.partitions && t.partitions.every((p) => p.leader >= 0))) return;
      } catch (err) {
        if (attempt >= 20) throw err;
      }
      await sleep(250);
    }
  } finally {
    await admin.disconnect();
  }
}

export interface Assignment {
  time: number;
  partitions: number[];
  added: number[];
  revoked: number[];
  rebalanceMs: number;
}

const members = new Set<Member>();
process.once('exit', () => {
  for (const m of members) m.signalGroup('SIGKILL');
});

/** One `framewire run` as the leader of its own process group. */
export class Member {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderrText = '';
  running = true;

  constructor(readonly label: string, readonly port: number, topologyFile: string) {
    this.child = spawn(process.execPath, [path.join(ROOT, 'bin/framewire.js'), 'run', '--topology', topologyFile], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    this.pid = this.child.pid!;
    members.add(this);
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderrText += d;
      if (this.stderrText.length > 8 << 20) this.stderrText = this.stderrText.slice(-(4 << 20));
    });
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        this.running = false;
        // Whatever the leader left (its ffmpeg children) goes with it; then the id is forgotten.
        this.signalGroup('SIGKILL');
        members.delete(this);
        resolve({ code, signal });
      }),
    );
  }

  signalGroup(sig: NodeJS.Signals): void {
    if (!members.has(this)) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      /* gone */
    }
  }

  async waitReady(timeoutMs = 60_000): Promise<number> {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
      if (!this.running) throw new Error(`${this.label} exited before it was ready\n${this.tail()}`);
      try {
        const res = await fetch(`http://127.0.0.1:${this.port}/readyz`, { signal: AbortSignal.timeout(1000) });
        if (res.status === 200) return Date.now() - t0;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${this.label} not ready after ${timeoutMs} ms\n${this.tail()}`);
  }

  /** A crash: SIGKILL to the whole process group (node and its decoders). */
  async kill(): Promise<void> {
    this.signalGroup('SIGKILL');
    await this.exited;
  }

  /** What Kubernetes does: SIGTERM to the processor; SIGKILL to the group after the grace period. */
  async term(graceMs = 20_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.running) return this.exited;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.signalGroup('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.port}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
  }

  logs(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.stderrText.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* partial */
      }
    }
    return out;
  }

  /** The member's assignments, in order, from its log. */
  assignments(): Assignment[] {
    return this.logs()
      .filter((l) => l.msg === 'consumer group partitions assigned')
      .map((l) => ({ time: l.time as number, partitions: l.partitions as number[], added: l.added as number[], revoked: l.revoked as number[], rebalanceMs: l.rebalanceMs as number }));
  }

  tail(lines = 30): string {
    const all = this.stderrText.trimEnd().split('\n');
    return `--- ${this.label} (pid ${this.pid}) stderr, last ${Math.min(lines, all.length)} lines ---\n${all.slice(-lines).join('\n')}`;
  }
}

/** Stops every member still running (after hooks). */
export async function stopMembers(): Promise<void> {
  await Promise.all([...members].map((m) => m.term(10_000)));
}

export interface Camera {
  stream: string;
  session: string;
  partition: number;
  video: ColourVideo;
  encoded: EncodedVideo;
}

/** `count` cameras of random solid-colour segments, camera i on partition i % partitions. */
export function makeCameras(prefix: string, count: number, partitions: number, o: { seconds: number; fps: number; width: number; height: number; seed: number }): Camera[] {
  const rng = seededRng(o.seed);
  const out: Camera[] = [];
  for (let i = 0; i < count; i++) {
    const video = colourVideo(o.width, o.height, o.fps, randomSegments(rng, o.seconds * o.fps, o.fps * 2, o.fps * 4));
    // A keyframe every second: a stream taken over continues at the next one.
    out.push({ stream: `${prefix}-cam${i}`, session: randomId(), partition: i % partitions, video, encoded: encodeVideo(video.graph, o.fps) });
  }
  return out;
}

/** Publishes every camera paced from `epochMs`; resolves when all have sent their last chunk. */
export function runCameras(producer: Producer, topic: string, cams: Camera[], epochMs: number): Promise<number[]> {
  return Promise.all(cams.map((c) => sendVideo(producer, c.encoded, { topic, stream: c.stream, session: c.session, epochMs, paced: true, eos: true, partition: c.partition })));
}

export interface GroupEvent {
  kind: 'kill' | 'term' | 'join';
  member: Member;
  at: number;
}

export interface StreamOutcome {
  stream: string;
  frames: number;
  labelled: number;
  dropped: Record<string, number>;
  missing: number[];
  /** Frames covered more than once (labelled twice, or labelled and reported dropped). */
  duplicates: number;
  wrong: { frame: number; got: string; want: string }[];
}

export interface EventOutcome {
  kind: GroupEvent['kind'];
  atS: number;
  moved: string[];
  /** Per moved stream: from the event to its first label of a frame captured after the move, ms. */
  gapMs: Record<string, number>;
  /** When the moved streams changed hands, ms after the event (a joiner's boot: its streams flow on their old owner meanwhile). */
  movedAfterMs: number;
  /** Per moved stream: from its last label before the move to that first one after, ms. */
  pauseMs: Record<string, number>;
  /** Streams whose partition kept its owner through the 8 s after the event: their longest pause in labels, ms (the rebalance stall). */
  unmovedStallMs: number;
  unmoved: string[];
  duplicates: number;
}

/** The partitions `m` held just before `at`, from its log. */
export function heldAt(m: Member, at: number): number[] {
  let held: number[] = [];
  for (const a of m.assignments()) if (a.time <= at) held = a.partitions;
  return held;
}

/** Accounts for every frame of every camera and measures each event (`members`: every member of the run). */
export function analyse(cams: Camera[], labels: LabelRecord[], drops: DroppedRecord[], events: GroupEvent[], t0: number, members: Member[]): { streams: StreamOutcome[]; events: EventOutcome[] } {
  const byStream = new Map<string, LabelRecord[]>();
  for (const c of cams) byStream.set(c.stream, []);
  for (const r of labels) byStream.get(r.stream)?.push(r);
  const dupAt = new Map<string, number[]>(); // capture times of duplicated frames, per stream
  const streams: StreamOutcome[] = cams.map((c) => {
    const recs = byStream.get(c.stream)!.filter((r) => r.session === c.session);
    const count = new Uint16Array(c.video.frames);
    for (const r of recs) if (r.frame >= 0 && r.frame < count.length) count[r.frame]!++;
    const dropped: Record<string, number> = {};
    for (const e of drops) {
      if (e.type !== 'dropped' || e.stream !== c.stream || e.session !== c.session) continue;
      dropped[e.reason] = (dropped[e.reason] ?? 0) + e.count;
      for (let i = e.fromFrame; i <= e.toFrame && i < count.length; i++) count[i]!++;
    }
    const missing: number[] = [];
    const dups: number[] = [];
    let duplicates = 0;
    count.forEach((n, i) => {
      if (n === 0) missing.push(i);
      else if (n > 1) {
        duplicates += n - 1;
        dups.push(t0 + (i * 1000) / c.video.fps);
      }
    });
    dupAt.set(c.stream, dups);
    const check = checkLabels(recs, c.video, 2);
    return { stream: c.stream, frames: c.video.frames, labelled: new Set(recs.map((r) => r.frame)).size, dropped, missing, duplicates, wrong: check.wrong };
  });
  /** Whether partition p changed hands (or lost its owner) in [from, to]. */
  const movedIn = (p: number, from: number, to: number): boolean =>
    events.some((e) => e.kind !== 'join' && e.at >= from && e.at <= to && heldAt(e.member, e.at).includes(p)) ||
    members.some((m) => m.assignments().some((a) => a.time >= from && a.time <= to && (a.added.includes(p) || a.revoked.includes(p))));
  const published = (c: Camera): number[] =>
    byStream
      .get(c.stream)!
      .filter((r) => r.session === c.session)
      .map((r) => r.publishedTs)
      .sort((a, b) => a - b);
  /** The longest pause between labels that began in [from, to): [start, end]. */
  const longestPause = (ts: number[], from: number, to: number): [number, number] => {
    let best: [number, number] = [from, from];
    let prev = from;
    for (const t of ts) {
      if (t < from) continue;
      if (prev < to && t - prev > best[1] - best[0]) best = [prev, t];
      prev = t;
    }
    if (prev < to && ts.length && ts[ts.length - 1]! < to) best = [prev, Infinity];
    return best;
  };
  const out: EventOutcome[] = events.map((ev, k) => {
    const first = ev.member.assignments()[0];
    const parts = ev.kind === 'join' ? (first?.added ?? []) : heldAt(ev.member, ev.at);
    const moved = cams.filter((c) => parts.includes(c.partition)).map((c) => c.stream);
    // When the moved streams changed hands: at the kill or SIGTERM, or when the joiner got them.
    const movedAt = ev.kind === 'join' ? (first?.time ?? Infinity) : ev.at;
    const gapMs: Record<string, number> = {};
    const pauseMs: Record<string, number> = {};
    const until = ev.at + 8000;
    let stall = 0;
    const unmoved: string[] = [];
    for (const c of cams) {
      const recs = byStream.get(c.stream)!.filter((r) => r.session === c.session);
      if (moved.includes(c.stream)) {
        // Labelled again: the first label of a frame captured after the move (the old owner's
        // last in-flight frames do not count).
        let again = Infinity;
        let last = t0; // no label before the move: the pause runs from the cameras' start
        for (const r of recs) {
          if (r.captureTs > movedAt && r.publishedTs < again) again = r.publishedTs;
          if (r.publishedTs <= movedAt && r.publishedTs > last) last = r.publishedTs;
        }
        gapMs[c.stream] = again - ev.at;
        pauseMs[c.stream] = again - last;
      } else if (!movedIn(c.partition, ev.at, until)) {
        unmoved.push(c.stream);
        const ts = published(c);
        const [a, b] = longestPause(ts, ts.filter((t) => t < ev.at).at(-1) ?? ev.at, until);
        stall = Math.max(stall, b - a);
      }
    }
    // Duplicates are charged to the event they follow (by the duplicated frame's capture time).
    const next = events[k + 1]?.at ?? Infinity;
    let duplicates = 0;
    for (const s of moved) for (const at of dupAt.get(s) ?? []) if (at >= ev.at - 2000 && at < next) duplicates++;
    return { kind: ev.kind, atS: (ev.at - t0) / 1000, moved, gapMs, movedAfterMs: movedAt - ev.at, pauseMs, unmovedStallMs: stall, unmoved, duplicates };
  });
  return { streams, events: out };
}
