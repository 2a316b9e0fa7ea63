/**
 * Commit-after-publish, made structural.
 *
 * A chunk's offset may be committed only when every frame decoded from it, and everything before
 * it in its partition, is published or dropped with a reason. Decoders lag their input and one
 * chunk may hold many frames (or none), so instead of mapping frames to chunks one by one, each
 * stream session keeps a *restart point*: the chunk holding the keyframe that starts the GOP of
 * its oldest unfinished frame. Re-decoding from there reproduces every unfinished frame with
 * known indices. A partition's commit offset is the lowest restart point of its sessions (or of
 * records not yet handed on); the restart points travel in the commit's metadata so a restarted
 * processor resumes each stream with the right frame numbers.
 */
import type { DropReason, FrameOwner } from '../../core/frame.js';

/**
 * Where a session resumes after a restart; serialised into the offset commit's metadata.
 * - `keyframe`: the session was live; re-decode from the chunk holding the keyframe of its oldest
 *   unfinished frame (this pins the partition's commit offset there).
 * - `continue`: the session's decoder had ended (idle) with every frame finished; if the session
 *   comes back, decoding starts at its next chunk and numbering continues from the last frame's pts.
 */
export type ResumePoint = KeyframeResume | ContinueResume;

interface ResumeBase {
  stream: string;
  session: string;
  /** fw-seq of the chunk to start decoding from; earlier chunks of the session are skipped. */
  seq: number;
  /** Absolute pts (seconds) of the session's first frame, for ptsMs. */
  basePts: number;
}

export interface KeyframeResume extends ResumeBase {
  kind: 'keyframe';
  /** Kafka offset of that chunk. */
  offset: string;
  /** Index and absolute pts (seconds) of the keyframe the decoder meets first from that chunk. */
  keyIndex: number;
  keyPts: number;
  /** Frames below this index were all finished before the checkpoint: skip them on resume. */
  nextIndex: number;
}

export interface ContinueResume extends ResumeBase {
  kind: 'continue';
  lastIndex: number;
  lastPts: number;
  frameDur: number;
}

/** Where frame numbering stands: the last frame's index and pts (s), and the frame step (s). */
export interface Numbering {
  lastIndex: number;
  lastPts: number;
  frameDur: number;
}

/** How long an ended session's continue point is kept in the commit metadata. */
const ENDED_RETENTION_MS = 60 * 60 * 1000;
const ENDED_MAX_PER_PARTITION = 256;

interface ChunkPos {
  seq: number;
  offset: string;
  startByte: number;
}

interface KeyPos {
  index: number;
  pts: number;
  seq: number;
  offset: string;
}

/** Load shedding: a chunk skipped undecoded, whose frames fromIndex..toIndex await their drop report. */
interface SkipPos {
  seq: number;
  offset: string;
  fromIndex: number;
  toIndex: number;
  /** pts (s) of frame fromIndex - 1, and the frame step: numbering continues from there. */
  prevPts: number;
  frameDur: number;
}

export interface FrameStats {
  published: number;
  dropped: number;
}

/** Tracks one stream session's chunks, keyframes and unfinished frames. */
export class SessionTracker implements FrameOwner {
  /** Chunks written to the current decoder, with their byte start in its input. */
  private chunks: ChunkPos[] = [];
  private bytesFed = 0;
  private keys: KeyPos[] = [];
  private skips: SkipPos[] = [];
  /** Ring of done flags for frames [low, high). */
  private doneFlags = new Uint8Array(1024);
  private low = 0;
  private high = 0;
  basePts = Number.NaN;
  /** The session's decoder ended (idle or replaced): once its frames finish, nothing pins the offset. */
  closed = false;
  /** A newer session of the same stream took over: this one will not come back. */
  replaced = false;
  /** fw-seq the session's next chunk will carry. */
  nextSeq = 0;
  /** Numbering state at the decoder's end, for a `continue` resume. */
  ending: Numbering | undefined;
  readonly stats: FrameStats = { published: 0, dropped: 0 };

  constructor(
    readonly stream: string,
    readonly session: string,
    readonly partition: PartitionTracker,
    resume?: ResumePoint,
  ) {
    if (resume) {
      this.basePts = resume.basePts;
      this.nextSeq = resume.seq;
      if (resume.kind === 'keyframe') {
        this.low = this.high = resume.nextIndex;
        this.keys.push({ index: resume.keyIndex, pts: resume.keyPts, seq: resume.seq, offset: resume.offset });
      } else {
        this.low = this.high = resume.lastIndex + 1;
      }
    }
  }

  /** A new decoder instance starts: byte positions restart at 0. */
  decoderStarted(): void {
    this.chunks = [];
    this.bytesFed = 0;
  }

  chunkFed(seq: number, offset: string, size: number): void {
    this.nextSeq = seq + 1;
    this.chunks.push({ seq, offset, startByte: this.bytesFed });
    this.bytesFed += size;
    // Keep the chunk list short: nothing before the oldest keyframe we may restart from is needed.
    if (this.chunks.length > 64) this.trimChunks();
  }

  /** Called for each decoded frame, in decode-output order, before it enters the pipeline. */
  frameDecoded(index: number, pts: number, pos: number, isKey: boolean): void {
    if (Number.isNaN(this.basePts)) this.basePts = pts;
    if (isKey) {
      const c = this.chunkAt(pos);
      const last = this.keys[this.keys.length - 1];
      if (c && (!last || index > last.index)) this.keys.push({ index, pts, seq: c.seq, offset: c.offset });
    }
    if (index < this.low) return; // finished before a restart: only its keyframe matters
    while (index >= this.low + this.doneFlags.length) this.growRing();
    this.doneFlags[index % this.doneFlags.length] = 0;
    this.high = index + 1;
  }

  /**
   * Load shedding skipped a chunk without decoding it: its frames (numbered from their times) await
   * their drop report. Until they are finished, the session resumes from this chunk, numbering on
   * from the frame before them (a `continue` point), so a crash in between loses no report.
   */
  chunkSkipped(seq: number, offset: string, fromIndex: number, toIndex: number, prevPts: number, frameDur: number): void {
    this.nextSeq = seq + 1;
    if (toIndex < fromIndex) return;
    this.framesLost(fromIndex, toIndex);
    this.skips.push({ seq, offset, fromIndex, toIndex, prevPts, frameDur });
  }

  /** The oldest skipped chunk with frames unfinished, when nothing older is unfinished. */
  private pendingSkip(): SkipPos | undefined {
    while (this.skips.length && this.skips[0]!.toIndex < this.low) this.skips.shift();
    const s = this.skips[0];
    return s && this.low >= s.fromIndex ? s : undefined;
  }

  /** Registers indices that will never be decoded (lost to a decoder restart); they await their drop report. */
  framesLost(fromIndex: number, toIndex: number): void {
    while (toIndex >= this.low + this.doneFlags.length) this.growRing();
    for (let i = Math.max(fromIndex, this.low); i <= toIndex; i++) this.doneFlags[i % this.doneFlags.length] = 0;
    if (toIndex + 1 > this.high) this.high = toIndex + 1;
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
    // Drop keyframes older than the one governing the oldest unfinished frame.
    while (this.keys.length > 1 && this.keys[1]!.index <= this.low) this.keys.shift();
  }

  get unfinished(): number {
    return this.high - this.low;
  }

  /** Where to resume this session; undefined when there is nothing to resume from. */
  resumePoint(): ResumePoint | undefined {
    if (this.closed && this.unfinished === 0) {
      if (this.replaced || !this.ending || Number.isNaN(this.ending.lastPts)) return undefined;
      return { kind: 'continue', stream: this.stream, session: this.session, seq: this.nextSeq, basePts: this.basePts, ...this.ending };
    }
    const skip = this.pendingSkip();
    if (skip) return { kind: 'continue', stream: this.stream, session: this.session, seq: skip.seq, basePts: this.basePts, lastIndex: skip.fromIndex - 1, lastPts: skip.prevPts, frameDur: skip.frameDur };
    const key = this.keys[0];
    if (!key) return undefined;
    return { kind: 'keyframe', stream: this.stream, session: this.session, seq: key.seq, offset: key.offset, keyIndex: key.index, keyPts: key.pts, nextIndex: this.low, basePts: this.basePts };
  }

  /** Lowest Kafka offset this session still needs (as a bigint), or undefined if none. */
  neededOffset(): bigint | undefined {
    if (this.closed && this.unfinished === 0) return undefined;
    const skip = this.pendingSkip();
    if (skip) return BigInt(skip.offset);
    const key = this.keys[0];
    if (key) return BigInt(key.offset);
    // No keyframe decoded yet: the session's first chunk fed to this decoder is still needed.
    const first = this.chunks[0] ?? this.skips[0];
    return first ? BigInt(first.offset) : undefined;
  }

  private chunkAt(pos: number): ChunkPos | undefined {
    if (pos < 0) return this.chunks[this.chunks.length - 1];
    let found: ChunkPos | undefined;
    for (const c of this.chunks) {
      if (c.startByte <= pos) found = c;
      else break;
    }
    return found;
  }

  private trimChunks(): void {
    const oldest = this.keys[0];
    if (!oldest) return;
    const i = this.chunks.findIndex((c) => c.seq === oldest.seq);
    if (i > 0) this.chunks.splice(0, i);
  }

  private growRing(): void {
    const next = new Uint8Array(this.doneFlags.length * 2);
    for (let i = this.low; i < this.high; i++) next[i % next.length] = this.doneFlags[i % this.doneFlags.length]!;
    this.doneFlags = next;
  }
}

/** One Kafka partition: records not yet handed on, and the sessions fed from it. */
export class PartitionTracker {
  /** Offsets of records received but not yet fed to a decoder or dead-lettered. */
  private readonly pending = new Set<string>();
  readonly sessions = new Set<SessionTracker>();
  /** Continue points of ended sessions, by stream + session (insertion order = age). */
  private readonly ended = new Map<string, { rp: ResumePoint; at: number }>();
  /** Highest offset seen + 1. */
  private next: bigint | undefined;
  lastCommitted: string | undefined;

  constructor(readonly topic: string, readonly partition: number) {}

  received(offset: string): void {
    this.pending.add(offset);
    const n = BigInt(offset) + 1n;
    if (this.next === undefined || n > this.next) this.next = n;
  }

  handled(offset: string): void {
    this.pending.delete(offset);
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
      if (need === undefined) continue;
      if (need < min) min = need;
      const rp = s.resumePoint();
      if (rp) resume.push(rp);
    }
    return { offset: min.toString(), metadata: JSON.stringify({ v: 2, resume }) };
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

  /** A session came back or was superseded: its continue point is no longer needed. */
  forgetEnded(stream: string, session?: string): void {
    if (session !== undefined) {
      this.ended.delete(stream + '\u0000' + session);
      return;
    }
    for (const [k, e] of this.ended) if (e.rp.stream === stream) this.ended.delete(k);
  }
}

export function parseCommitMetadata(metadata: string | null | undefined): ResumePoint[] {
  if (!metadata) return [];
  try {
    const parsed = JSON.parse(metadata) as { v?: number; resume?: ResumePoint[] };
    if (parsed.v !== 2 || !Array.isArray(parsed.resume)) return [];
    return parsed.resume.filter((r) => r && (r.kind === 'keyframe' || r.kind === 'continue'));
  } catch {
    return [];
  }
}
