/**
 * Frame numbers in presentation order (docs/contracts.md: `frame` increases with `ptsMs`).
 *
 * The demuxer finds frames in decode order; with B-frames that is not the order a person sees.
 * A frame's number is its rank by pts among the session's frames, and it is known for sure once
 * no frame still to come can have an earlier pts. MPEG-TS guarantees that with its timestamps:
 * dts never decreases and no frame is presented before it is decoded (dts ≤ pts), so once a
 * frame with dts ≥ P has arrived, every later frame has pts > P. A frame with pts P is therefore
 * numbered when the first frame with dts ≥ P arrives: at once without B-frames (pts = dts), after
 * the stream's reorder depth with them — the same wait the decoder has before it can put the
 * frame out. Frames are handed to the decoder at once, under a handle (their decode-order
 * position); the number follows through `numbered`.
 *
 * After a restart the session is demuxed again from a resume point: the frame with the point's
 * pts (the first frame found, when it has none) gets the point's index, frames before it in that
 * chunk are not numbered again, and frames below `next` were finished.
 */
import type { ResumePoint } from '../core/ack.js';

/** pts equality (s): 90 kHz ticks are 11 µs apart. */
const PTS_EPS = 1e-6;
/** Resume matching tolerates rounding through JSON. */
const RESUME_EPS = 1e-4;
/**
 * Frames waiting for their number beyond which the oldest is numbered anyway: a stream whose dts
 * do not follow the rule (a broken muxer, missing dts) must not hold frames without bound.
 * H.264 and H.265 allow at most 16 frames of reordering.
 */
const MAX_WAITING = 32;

/** A frame found and not yet numbered. Reused (no allocation per frame). */
export interface Unnumbered {
  handle: number;
  pts: number;
  key: boolean;
  seq: number;
  offset: string;
  /** What the session decided for it before its number was known (session-defined, 0 = nothing). */
  fate: number;
}

export class FrameNumbering {
  private nextIndex: number;
  private matchPts: number | null;
  /** The handle the next frame found will get. */
  nextHandle = 0;
  /** Waiting frames, sorted by pts. */
  private readonly waiting: Unnumbered[] = [];
  private readonly free: Unnumbered[] = [];
  /** Frames numbered although a frame with an earlier pts might still come (MAX_WAITING, or dts broke the rule). */
  forced = 0;
  /** Most frames seen waiting for their number after a frame was found: the stream's reorder depth. */
  reorderDepth = 0;
  /** Frames below this index were finished before the restart: decoded (for references) but not emitted. */
  readonly doneBelow: number;

  constructor(
    resume: Pick<ResumePoint, 'index' | 'pts' | 'next'> | undefined,
    /** A frame's number is known (in increasing index order). `u` is reused after the call. */
    private readonly numbered: (u: Unnumbered, index: number) => void,
  ) {
    this.nextIndex = resume?.index ?? 0;
    this.matchPts = resume?.pts ?? null;
    this.doneBelow = resume?.next ?? 0;
  }

  /**
   * A frame found, in decode order. Returns its handle, or -1 for a frame that precedes the
   * resume point (not numbered again). Frames whose number becomes known with it are passed to
   * `numbered` before this returns — the frame itself too, when it has no B-frames before it.
   */
  arrive(pts: number, dts: number, key: boolean, seq: number, offset: string): number {
    if (this.matchPts !== null) {
      if (pts < this.matchPts - RESUME_EPS) return -1;
      this.matchPts = null;
    }
    const u = this.free.pop() ?? { handle: 0, pts: 0, key: false, seq: 0, offset: '', fate: 0 };
    u.handle = this.nextHandle++;
    u.pts = pts;
    u.key = key;
    u.seq = seq;
    u.offset = offset;
    u.fate = 0;
    // Insert by pts (the list is a few frames long: the reorder depth).
    const w = this.waiting;
    let i = w.length;
    while (i > 0 && w[i - 1]!.pts > pts) i--;
    w.splice(i, 0, u);
    // dts > pts cannot be right (a muxer that writes dts as pts + offset, or garbage): trust pts.
    const horizon = Math.min(dts, pts) + PTS_EPS;
    while (w.length && (w[0]!.pts <= horizon || w.length > MAX_WAITING)) {
      if (w[0]!.pts > horizon) this.forced++;
      this.release();
    }
    if (w.length > this.reorderDepth) this.reorderDepth = w.length;
    return u.handle;
  }

  /** The waiting frame with this handle (to record its fate), or undefined once it is numbered. */
  waitingFor(handle: number): Unnumbered | undefined {
    for (const u of this.waiting) if (u.handle === handle) return u;
    return undefined;
  }

  /** End of the session's frames (or of a restart's): every waiting frame gets its number. */
  flush(): void {
    while (this.waiting.length) this.release();
  }

  /** Frames found and not yet numbered. */
  get pending(): number {
    return this.waiting.length;
  }

  /** The index the next frame numbered will get. */
  get next(): number {
    return this.nextIndex;
  }

  private release(): void {
    const u = this.waiting.shift()!;
    this.numbered(u, this.nextIndex++);
    this.free.push(u);
  }
}
