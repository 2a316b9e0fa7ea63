/**
 * Sliding windows for clip models. A model whose input has a time axis ([T, H, W, 3]) classifies
 * a window of N = T consecutive frames of one stream at once; a new window starts every S frames
 * (the stride). Each window becomes one item for the batcher; its labels are published for every
 * frame of the window that no earlier window labelled, so each frame still gets exactly one label
 * record. With S > N the frames between windows are never classified: they are reported `sampled`
 * at once. At the end of a session the frames still waiting are classified in a last window
 * (padded at the front with its first frame when the session had fewer than N).
 *
 * Frames are copied into a per-session ring of N frames as they arrive (their buffers go back to
 * the decoder's pool at once), and a complete window is copied out in time order into a pooled
 * clip buffer. The arithmetic is pure and tested without Triton.
 */
import type { ClipCover, CoveredFrame, Frame } from '../core/frame.js';
import { poolFor, type BufferPool } from '../core/pool.js';

export interface ClipParams {
  /** Frames per window (N). */
  frames: number;
  /** Frames between the starts of consecutive windows (S). */
  stride: number;
}

/** What happened to a frame added to a window. */
export type ClipStep = 'wait' | 'clip' | 'skip';

/** One stream session's window: the last N frames' pixels and metadata. */
export class ClipWindow {
  private readonly ring: Buffer;
  private readonly meta: (Frame | undefined)[];
  /** Frames offered so far (skipped ones included): the position of the next frame. */
  private seen = 0;
  /** Frames stored in the ring so far. */
  private stored = 0;
  /** Stored frames no window has covered yet (the newest ones). */
  pending = 0;

  constructor(private readonly p: ClipParams, private readonly frameBytes: number, ringPool: BufferPool) {
    this.ring = ringPool.take();
    this.meta = new Array(p.frames);
  }

  /**
   * Offers the next frame of the session. 'skip': it falls between windows (stride > frames) and
   * is not kept; 'clip': it completes a window (call `emit`); 'wait': kept for a later window.
   */
  add(frame: Frame): ClipStep {
    const { frames: n, stride: s } = this.p;
    const pos = this.seen++;
    if (pos % s >= n) return 'skip';
    const slot = this.stored % n;
    frame.data.copy(this.ring, slot * this.frameBytes, 0, this.frameBytes);
    this.meta[slot] = frame;
    this.stored++;
    this.pending++;
    return pos >= n - 1 && (pos - (n - 1)) % s === 0 ? 'clip' : 'wait';
  }

  /**
   * Writes the last N stored frames into `out` in time order (padding at the front with the
   * oldest stored one when fewer than N were stored) and returns the pending frames it covers.
   * Undefined when nothing is pending.
   */
  emit(out: Buffer): ClipCover | undefined {
    if (this.pending === 0) return undefined;
    const n = this.p.frames;
    const fb = this.frameBytes;
    // With gaps between windows (stride > frames) a window holds only its own frames, the pending
    // ones; otherwise the last N frames are consecutive and a short last window reaches back.
    const have = this.p.stride > n ? this.pending : Math.min(n, this.stored);
    const pad = n - have;
    const firstSlot = (this.stored - have) % n;
    for (let j = 0; j < n; j++) {
      const slot = (firstSlot + Math.max(0, j - pad)) % n;
      this.ring.copy(out, j * fb, slot * fb, (slot + 1) * fb);
    }
    const covered: CoveredFrame[] = new Array(this.pending);
    for (let j = 0; j < this.pending; j++) {
      const f = this.meta[(this.stored - this.pending + j) % n]!;
      covered[j] = { index: f.index, ptsMs: f.ptsMs, captureTs: f.captureTs, traceparent: f.traceparent, offset: f.offset, keyFrame: f.keyFrame, keyOffset: f.keyOffset };
    }
    this.pending = 0;
    return { fromFrame: this.meta[firstSlot]!.index, covered };
  }

  /** The newest stored frame (the last one of the window `emit` writes). */
  get last(): Frame | undefined {
    return this.stored ? this.meta[(this.stored - 1) % this.p.frames] : undefined;
  }

  release(ringPool: BufferPool): void {
    ringPool.give(this.ring);
    this.meta.fill(undefined);
  }
}

export interface ClipAssemblerOptions extends ClipParams {
  /** Bytes of one frame (H × W × 3). */
  frameBytes: number;
  /** A frame that falls between windows: report it `sampled` (its buffer is recycled here). */
  skipped(frame: Frame): void;
}

/** The windows of one clip model's lane, one per stream session. */
export class ClipAssembler {
  private readonly windows = new Map<string, ClipWindow>();
  private readonly ringPool: BufferPool;
  private readonly framePool: BufferPool;

  constructor(private readonly o: ClipAssemblerOptions) {
    // A window's ring and a clip are both N frames: one pool serves both.
    this.ringPool = poolFor(o.frames * o.frameBytes);
    this.framePool = poolFor(o.frameBytes);
  }

  get sessions(): number {
    return this.windows.size;
  }

  /** Takes a decoded frame (its buffer is recycled); returns a clip item when a window completes. */
  add(frame: Frame): Frame | undefined {
    const key = frame.stream + '\u0000' + frame.session;
    let w = this.windows.get(key);
    if (!w) this.windows.set(key, (w = new ClipWindow(this.o, this.o.frameBytes, this.ringPool)));
    const step = w.add(frame);
    this.framePool.give(frame.data);
    if (step === 'skip') {
      this.o.skipped(frame);
      return undefined;
    }
    return step === 'clip' ? this.clipOf(w) : undefined;
  }

  /** The session ended (its decoder flushed): a last clip for its waiting frames, if any. */
  end(stream: string, session: string): Frame | undefined {
    const key = stream + '\u0000' + session;
    const w = this.windows.get(key);
    if (!w) return undefined;
    this.windows.delete(key);
    const item = w.pending > 0 ? this.clipOf(w) : undefined;
    w.release(this.ringPool);
    return item;
  }

  private clipOf(w: ClipWindow): Frame {
    const last = w.last!;
    const data = this.ringPool.take();
    const clip = w.emit(data)!;
    return {
      stream: last.stream,
      session: last.session,
      index: last.index,
      ptsMs: last.ptsMs,
      captureTs: last.captureTs,
      deadlineTs: last.deadlineTs,
      keyframe: false,
      rank: last.rank,
      data,
      traceparent: last.traceparent,
      decodedAt: last.decodedAt,
      owner: last.owner,
      partition: last.partition,
      offset: last.offset,
      clip,
    };
  }
}
