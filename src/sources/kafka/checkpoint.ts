/**
 * Commit-after-publish, made structural.
 *
 * A chunk's offset may be committed only when every frame found in it, and everything before it
 * in its partition, is published or dropped with a reason. The decode stage numbers frames as its
 * demuxer finds them and tells us the chunk each one started in (src/core/ack.ts); decoders can
 * only start at a keyframe, so each session keeps *anchors*: its keyframes with their chunks (and
 * where it started). A session resumes from the anchor governing its oldest unfinished frame:
 * re-demuxing from that chunk reproduces every unfinished frame with the same index. A
 * partition's commit offset is the lowest such chunk of its sessions (or of records not yet
 * handed on), and the resume points travel in the commit's metadata.
 */
import type { DropReason } from '../../core/frame.js';
import type { DeadLetterCode, EncodedChunk, InputAck, ResumePoint, SessionAck, SessionEnd } from '../../core/ack.js';

/** How long an ended session's continue point is kept in the commit metadata. */
const ENDED_RETENTION_MS = 60 * 60 * 1000;
const ENDED_MAX_PER_PARTITION = 256;

interface Anchor {
  index: number;
  /** pts (s) of the frame at `index`; null: the first frame starting in the chunk. */
  pts: number | null;
  seq: number;
  offset: string;
}

export interface FrameStats {
  published: number;
  dropped: number;
}

/** One stream session's anchors and unfinished frames. */
export class SessionTracker implements SessionAck {
  private anchors: Anchor[] = [];
  /** Where the session (re)started: its first anchor, placed at the first chunk fed. */
  private start: { index: number; pts: number | null } | undefined;
  /** Ring of done flags for frames [low, high). */
  private doneFlags = new Uint8Array(1024);
  /** Beside each flag: the offset of the chunk the frame began in (lineage on its records). */
  private chunkOffsets = new Float64Array(1024);
  /** Beside each flag: the keyframe its decoding starts from, and that keyframe's chunk offset (-1: none seen yet). */
  private keyFrames = new Float64Array(1024);
  private keyOffsets = new Float64Array(1024);
  /** The latest keyframe found and the one before it (frames found after a keyframe may precede it in presentation order). */
  private key = { index: -1, offset: -1 };
  private prevKey = { index: -1, offset: -1 };
  private low = 0;
  private high = 0;
  basePts = Number.NaN;
  /** How the session ended (no more chunks expected); undefined while live. */
  endedHow: SessionEnd | undefined;
  /** fw-seq the session's next chunk will carry. */
  nextSeq = 0;
  readonly stats: FrameStats = { published: 0, dropped: 0 };

  constructor(
    readonly stream: string,
    readonly session: string,
    readonly partition: PartitionTracker,
    resume?: ResumePoint,
  ) {
    this.start = { index: resume?.index ?? 0, pts: resume?.pts ?? null };
    if (resume) {
      this.basePts = resume.basePts;
      this.nextSeq = resume.seq;
      this.low = this.high = resume.next;
    }
  }

  get closed(): boolean {
    return this.endedHow !== undefined;
  }

  chunkFed(seq: number, offset: string): void {
    this.nextSeq = seq + 1;
    if (this.start) {
      this.anchors.push({ index: this.start.index, pts: this.start.pts, seq, offset });
      this.start = undefined;
    }
  }

  frameFound(index: number, pts: number, key: boolean, seq: number, offset: string): void {
    if (Number.isNaN(this.basePts)) this.basePts = pts;
    if (key) {
      const last = this.anchors[this.anchors.length - 1];
      if (!last || index > last.index) this.anchors.push({ index, pts, seq, offset });
      if (index > this.key.index) {
        const spare = this.prevKey;
        this.prevKey = this.key;
        spare.index = index;
        spare.offset = Number(offset);
        this.key = spare;
      }
    }
    if (index < this.low) return; // finished before a restart: only its keyframe matters
    while (index >= this.low + this.doneFlags.length) this.growRing();
    for (let i = Math.max(this.high, this.low); i <= index; i++) this.doneFlags[i % this.doneFlags.length] = 0;
    const slot = index % this.chunkOffsets.length;
    this.chunkOffsets[slot] = Number(offset);
    const k = index >= this.key.index ? this.key : this.prevKey;
    this.keyFrames[slot] = k.index;
    this.keyOffsets[slot] = k.offset;
    if (index + 1 > this.high) this.high = index + 1;
  }

  ended(how: SessionEnd): void {
    this.endedHow = how;
  }

  /** The session received chunks again after it had ended idle. */
  reopen(): void {
    this.endedHow = undefined;
    this.partition.forgetEnded(this.stream, this.session);
  }

  framePublished(index: number): void {
    this.stats.published++;
    this.markDone(index);
  }

  framesDropped(fromIndex: number, toIndex: number, _reason: DropReason): void {
    for (let i = fromIndex; i <= toIndex; i++) {
      this.stats.dropped++;
      this.markDone(i);
    }
  }

  private markDone(index: number): void {
    if (index < this.low || index >= this.high) return;
    this.doneFlags[index % this.doneFlags.length] = 1;
    while (this.low < this.high && this.doneFlags[this.low % this.doneFlags.length] === 1) this.low++;
    // Anchors older than the one governing the oldest unfinished frame are no longer needed.
    while (this.anchors.length > 1 && this.anchors[1]!.index <= this.low) this.anchors.shift();
  }

  get chunkPartition(): number {
    return this.partition.partition;
  }

  chunkOffset(index: number): number | undefined {
    return index >= this.low && index < this.high ? this.chunkOffsets[index % this.chunkOffsets.length] : undefined;
  }

  keyFrame(index: number): number | undefined {
    if (index < this.low || index >= this.high) return undefined;
    const k = this.keyFrames[index % this.keyFrames.length]!;
    return k < 0 ? undefined : k;
  }

  keyOffset(index: number): number | undefined {
    if (index < this.low || index >= this.high) return undefined;
    const k = this.keyOffsets[index % this.keyOffsets.length]!;
    return k < 0 ? undefined : k;
  }

  get unfinished(): number {
    return this.high - this.low;
  }

  /** The anchor a restart would decode from: the last one at or before the oldest unfinished frame. */
  private governing(): Anchor | undefined {
    return this.anchors[0];
  }

  /** Where to resume this session; undefined when there is nothing to resume. */
  resumePoint(): ResumePoint | undefined {
    if (this.closed && this.unfinished === 0) return this.endedHow === 'idle' ? this.continuePoint() : undefined;
    const a = this.governing();
    if (!a) return undefined;
    return { stream: this.stream, session: this.session, seq: a.seq, index: a.index, pts: a.pts, next: this.low, basePts: this.basePts };
  }

  /** Where the session goes on if its chunks continue: the next chunk, numbered after the last frame found. */
  continuePoint(): ResumePoint | undefined {
    if (Number.isNaN(this.basePts)) return undefined;
    return { stream: this.stream, session: this.session, seq: this.nextSeq, index: this.high, pts: null, next: this.high, basePts: this.basePts, ended: true };
  }

  /** Lowest Kafka offset this session still needs (as a bigint), or undefined if none. */
  neededOffset(): bigint | undefined {
    if (this.closed && this.unfinished === 0) return undefined;
    const a = this.governing();
    return a ? BigInt(a.offset) : undefined;
  }

  private growRing(): void {
    const next = new Uint8Array(this.doneFlags.length * 2);
    const offsets = new Float64Array(next.length);
    const keyFrames = new Float64Array(next.length);
    const keyOffsets = new Float64Array(next.length);
    for (let i = this.low; i < this.high; i++) {
      const from = i % this.doneFlags.length;
      const to = i % next.length;
      next[to] = this.doneFlags[from]!;
      offsets[to] = this.chunkOffsets[from]!;
      keyFrames[to] = this.keyFrames[from]!;
      keyOffsets[to] = this.keyOffsets[from]!;
    }
    this.doneFlags = next;
    this.chunkOffsets = offsets;
    this.keyFrames = keyFrames;
    this.keyOffsets = keyOffsets;
  }
}

export type DeadLetterFn = (chunk: EncodedChunk, code: DeadLetterCode, detail: string) => Promise<void>;

/** One Kafka partition: records not yet handed on, and the sessions fed from it. */
export class PartitionTracker implements InputAck {
  /** Offsets of records received but not yet fed to a decoder or dead-lettered. */
  private readonly pending = new Set<string>();
  readonly sessions = new Set<SessionTracker>();
  /** Continue points of ended sessions, by stream + session (insertion order = age). */
  private readonly ended = new Map<string, { rp: ResumePoint; at: number }>();
  /** Highest offset seen + 1. */
  private next: bigint | undefined;
  lastCommitted: string | undefined;

  constructor(
    readonly topic: string,
    readonly partition: number,
    private readonly deadLetter: DeadLetterFn = () => Promise.resolve(),
    /** Resume points read from the last commit (shared by every partition of the source). */
    private readonly committed: Map<string, ResumePoint> = new Map(),
  ) {}

  /** The record was received before (kafkajs fetches again from the committed offset after a rebalance). */
  seen(offset: string): boolean {
    return this.next !== undefined && BigInt(offset) < this.next;
  }

  /** Where fetching goes on: the offset after the last record received. */
  get nextOffset(): string | undefined {
    return this.next?.toString();
  }

  received(offset: string): void {
    this.pending.add(offset);
    const n = BigInt(offset) + 1n;
    if (this.next === undefined || n > this.next) this.next = n;
  }

  handled(offset: string): void {
    this.pending.delete(offset);
  }

  /** Where a session seen before resumes: a live or ended session of this run, else the last commit. */
  resumeOf(stream: string, session: string): ResumePoint | undefined {
    const key = stream + '\u0000' + session;
    for (const s of this.sessions) if (s.stream === stream && s.session === session && s.closed) return s.continuePoint();
    return this.ended.get(key)?.rp ?? this.committed.get(key);
  }

  openSession(stream: string, session: string, resume: ResumePoint | undefined): SessionTracker {
    // Any other session of this stream is over for good: its continue point goes.
    for (const [k, e] of this.ended) if (e.rp.stream === stream && e.rp.session !== session) this.ended.delete(k);
    for (const s of this.sessions) {
      if (s.stream !== stream) continue;
      if (s.session === session && s.closed) {
        s.reopen();
        return s;
      }
      if (s.session !== session && !s.closed) s.ended('replaced');
    }
    const key = stream + '\u0000' + session;
    this.ended.delete(key);
    this.committed.delete(key);
    const t = new SessionTracker(stream, session, this, resume);
    this.sessions.add(t);
    return t;
  }

  reject(chunk: EncodedChunk, code: DeadLetterCode, detail: string): Promise<void> {
    return this.deadLetter(chunk, code, detail);
  }

  /** The offset that is safe to commit now and the resume points to store with it. */
  commitPoint(): { offset: string; metadata: string } | undefined {
    if (this.next === undefined) return undefined;
    let min = this.next;
    for (const o of this.pending) {
      const b = BigInt(o);
      if (b < min) min = b;
    }
    const resume: ResumePoint[] = [];
    for (const e of this.ended.values()) resume.push(e.rp);
    for (const s of this.sessions) {
      const need = s.neededOffset();
      if (need !== undefined && need < min) min = need;
      const rp = s.resumePoint();
      if (rp) resume.push(rp);
    }
    return { offset: min.toString(), metadata: JSON.stringify({ v: 3, resume }) };
  }

  /** Moves ended sessions with every frame finished out of the way, keeping their continue points a while. */
  prune(now = Date.now()): void {
    for (const s of this.sessions) {
      if (!(s.closed && s.unfinished === 0)) continue;
      this.sessions.delete(s);
      const rp = s.resumePoint();
      if (rp) this.ended.set(s.stream + '\u0000' + s.session, { rp, at: now });
    }
    for (const [k, e] of this.ended) {
      if (this.ended.size <= ENDED_MAX_PER_PARTITION && now - e.at < ENDED_RETENTION_MS) break;
      this.ended.delete(k);
    }
  }

  /** A session came back: its continue point is no longer needed. */
  forgetEnded(stream: string, session: string): void {
    this.ended.delete(stream + '\u0000' + session);
  }
}

/** Commit metadata → resume points. Version 2 (pts-numbered, before the demuxer) is read too. */
export function parseCommitMetadata(metadata: string | null | undefined): ResumePoint[] {
  if (!metadata) return [];
  try {
    const parsed = JSON.parse(metadata) as { v?: number; resume?: unknown[] };
    if (!Array.isArray(parsed.resume)) return [];
    if (parsed.v === 3) return (parsed.resume as ResumePoint[]).filter((r) => r && typeof r.seq === 'number' && typeof r.index === 'number');
    if (parsed.v !== 2) return [];
    const out: ResumePoint[] = [];
    for (const r of parsed.resume as Record<string, unknown>[]) {
      const base = { stream: String(r.stream), session: String(r.session), seq: Number(r.seq), basePts: Number(r.basePts) };
      if (r.kind === 'keyframe') out.push({ ...base, index: Number(r.keyIndex), pts: Number(r.keyPts), next: Number(r.nextIndex) });
      else if (r.kind === 'continue') out.push({ ...base, index: Number(r.lastIndex) + 1, pts: null, next: Number(r.lastIndex) + 1 });
    }
    return out;
  } catch {
    return [];
  }
}
