/**
 * The ingest chunker: cuts ffmpeg's MPEG-TS output into chunk records of at most `chunkBytes`
 * and hands them to the outage buffer, in order. One reusable accumulator: a full one is handed
 * off whole, a partial one copied. A partial chunk goes out when the reader is idle: at once
 * (`lingerMs` 0, once the read pipe is empty) or after `lingerMs` of nothing; before the
 * session's epoch is fixed, at the end of the epoch window.
 *
 * The epoch (Unix ms of the session's first frame) is fixed with the first chunk cut: for a paced
 * source (realtime, network) the EpochEstimator's estimate over `epochWindowMs` after the first
 * bytes, for a file read as fast as possible the time of the first bytes.
 */
import type { EpochEstimator } from './capture.js';
import { TS_NULL_PACKET } from '../decode/mpegts.js';
import type { OutageBuffer, Piece, TsWatcher } from './buffer.js';

export interface ChunkerOptions {
  chunkBytes: number;
  lingerMs: number;
  paced: boolean;
  epochWindowMs: number;
  estimator: EpochEstimator;
  watcher: TsWatcher;
  queue: OutageBuffer;
  /** Told once, when the epoch is fixed. */
  onEpoch?(epochMs: number): void;
  /** The clock (tests pass a fake one). */
  now?(): number;
}

export class Chunker {
  /** Unix ms of the session's first frame, once fixed. */
  epochMs: number | undefined;
  /** Chunks cut so far. */
  seq = 0;
  private acc: Buffer;
  private accLen = 0;
  private firstBytesMs = 0;
  private stopping = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly o: ChunkerOptions) {
    this.acc = Buffer.allocUnsafe(o.chunkBytes);
    this.now = o.now ?? Date.now;
  }

  /** Bytes not yet cut into a chunk. */
  get pendingBytes(): number {
    return this.accLen;
  }

  /**
   * Bytes of one read from ffmpeg; `unread` is what is still in the read pipe (a partial chunk is
   * cut at once with lingerMs 0 only when nothing more is waiting). False: the queue was closed
   * (the sender failed).
   */
  async write(data: Buffer, unread: number): Promise<boolean> {
    const now = this.now();
    this.clearIdle();
    if (this.firstBytesMs === 0) this.firstBytesMs = now;
    if (this.epochMs === undefined) {
      this.o.estimator.observe(data, now);
      if (!this.o.paced || now - this.firstBytesMs >= this.o.epochWindowMs) this.fixEpoch();
    }
    const size = this.o.chunkBytes;
    let offset = 0;
    while (offset < data.length) {
      const n = Math.min(size - this.accLen, data.length - offset);
      data.copy(this.acc, this.accLen, offset, offset + n);
      this.accLen += n;
      offset += n;
      if (this.accLen === size && !(await this.o.queue.push(this.cut()))) return false;
    }
    if (this.accLen === 0 || this.stopping) return true;
    if (this.epochMs === undefined) this.idleTimer = setTimeout(this.onIdle, Math.max(this.o.lingerMs, this.firstBytesMs + this.o.epochWindowMs - now));
    else if (this.o.lingerMs > 0) this.idleTimer = setTimeout(this.onIdle, this.o.lingerMs);
    else if (unread === 0 && !(await this.o.queue.push(this.cut()))) return false;
    return true;
  }

  /** The end is near (asked to stop): no more idle cuts, so the last bytes go out with fw-eos. */
  stop(): void {
    this.stopping = true;
    this.clearIdle();
  }

  /** ffmpeg's output ended: the session's last record says so (fw-eos). False: the queue was closed. */
  async end(): Promise<boolean> {
    this.clearIdle();
    if (this.seq === 0 && this.accLen === 0) return true;
    return this.o.queue.push(this.cut(true));
  }

  /** Stops the idle timer (the read loop ended). */
  dispose(): void {
    this.clearIdle();
  }

  private clearIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private fixEpoch(): void {
    if (this.epochMs !== undefined) return;
    this.epochMs = (this.o.paced ? this.o.estimator.epochMs : undefined) ?? this.firstBytesMs;
    this.o.onEpoch?.(this.epochMs);
  }

  private cut(eos = false): Piece {
    this.fixEpoch();
    let value: Buffer;
    if (this.accLen === this.o.chunkBytes) {
      value = this.acc;
      this.acc = Buffer.allocUnsafe(this.o.chunkBytes);
    } else if (this.accLen === 0) {
      // The last bytes already left before the end was known: a null packet carries fw-eos.
      value = TS_NULL_PACKET;
    } else {
      value = Buffer.from(this.acc.subarray(0, this.accLen));
    }
    this.accLen = 0;
    this.seq++;
    // Headers (session, fw-seq) are the sender's: after a gap the same bytes go out in a new session.
    const { keyStarts, frameStarts } = this.o.watcher.observe(value);
    return { value, at: this.now(), keyStarts, frameStarts, eos };
  }

  /** Bound once: no closure per read. */
  private readonly onIdle = (): void => {
    this.idleTimer = undefined;
    const q = this.o.queue;
    if (this.accLen === 0 || q.isClosed || this.stopping) return;
    this.fixEpoch();
    // Only a synchronous push keeps seq order with the read loop; if full, try again later.
    if (q.hasRoom(this.accLen)) void q.push(this.cut());
    else this.idleTimer = setTimeout(this.onIdle, Math.max(this.o.lingerMs, 1));
  };
}
