/**
 * What lets `framewire ingest` ride out a broker outage (docs/contracts.md, ingest):
 *
 *  - TsWatcher follows the MPEG-TS byte stream as ffmpeg writes it: where each keyframe's first
 *    packet starts, its pts, and the latest PAT and PMT packets. That is all it takes to start a
 *    valid new byte stream at a keyframe.
 *  - OutageBuffer holds the pieces of the stream not yet acknowledged, bounded by stream time
 *    (`--buffer-ms`) and bytes. A live source cannot wait, so when full it drops whole pieces from
 *    the oldest end; a file read as fast as possible simply waits (nothing is lost).
 *  - SessionCutter decides what goes out: while nothing was dropped, the same session goes on in
 *    order; after a drop it skips to the next keyframe and starts a new session there (PAT + PMT +
 *    the keyframe's packets), so the processor never sees a byte stream with a hole in it. The
 *    frames in between are one gap, logged and counted.
 */
import { PTS_HZ, TS_PACKET, TsDemuxer, TsPacketReader, isVideoPesStart, packetHeader, patPmtPid, pesPts, readPacketHeader } from '../decode/mpegts.js';

/** A piece of the byte stream as cut by the chunker: at most one Kafka record. */
export interface Piece {
  value: Buffer;
  /** Date.now() when it was cut (its age in the buffer is stream time for a live source). */
  at: number;
  /** Offsets in `value` of TS packets that start a keyframe, with the keyframe's pts (s). */
  keyStarts: { offset: number; pts: number }[];
  /** Offsets in `value` of TS packets that start a frame (video PES). */
  frameStarts: number[];
  /** The stream's last piece (fw-eos). */
  eos?: boolean;
}

/** Follows the TS packets of a byte stream cut anywhere. */
export class TsWatcher {
  private readonly reader = new TsPacketReader((b, p, carried) => this.packet(b, p, carried ? -1 : p));
  private readonly header = packetHeader();
  private pmtPid = -1;
  private videoPid = -1;
  /** The latest PAT and PMT packets seen (a new session starts with them). */
  pat: Buffer | undefined;
  pmt: Buffer | undefined;
  /** pts (s) of the stream's first frame. */
  firstPts = Number.NaN;
  private pending: { offset: number; pts: number }[] = [];
  private starts: number[] = [];
  /** Frames that started in the stream so far. */
  frames = 0;

  /** Looks at the next bytes; returns where keyframes and frames start in them. */
  observe(b: Buffer): { keyStarts: { offset: number; pts: number }[]; frameStarts: number[] } {
    this.pending = [];
    this.starts = [];
    this.reader.push(b);
    return { keyStarts: this.pending, frameStarts: this.starts };
  }

  /**
   * `offset`: where the packet starts in the piece being observed; -1 for a packet split between
   * pieces: it counts at offset 0 of this one, but a keyframe starting in it cannot start a
   * session here (its first bytes went with the piece before).
   */
  private packet(b: Buffer, p: number, offset: number): void {
    const { pid, pusi, rai, payload: q } = readPacketHeader(b, p, this.header);
    const end = p + TS_PACKET;
    if (!pusi || q < 0) return;
    if (pid === 0) {
      this.pat = Buffer.from(b.subarray(p, end));
      const pmtPid = patPmtPid(b, q, end);
      if (pmtPid >= 0) this.pmtPid = pmtPid;
      return;
    }
    if (pid === this.pmtPid) {
      this.pmt = Buffer.from(b.subarray(p, end));
      return;
    }
    if (q + 14 > end || !isVideoPesStart(b, q, end)) return;
    if (this.videoPid < 0) this.videoPid = pid;
    if (pid !== this.videoPid) return;
    this.starts.push(Math.max(0, offset));
    this.frames++;
    const pts = pesPts(b, q) / PTS_HZ;
    if (Number.isNaN(this.firstPts)) this.firstPts = pts;
    if (rai && offset >= 0 && !Number.isNaN(pts)) this.pending.push({ offset, pts });
  }
}

export interface OutageBufferOptions {
  /** Stream time held, ms (age of the oldest piece relative to the newest). */
  maxMs: number;
  maxBytes: number;
  /** Drop from the oldest end when full (a live source); otherwise `push` waits for room. */
  dropWhenFull: boolean;
}

/** Pieces not yet handed to the sender, oldest first. */
export class OutageBuffer {
  private readonly pieces: Piece[] = [];
  private head = 0;
  private bytes = 0;
  private closed = false;
  private itemWaiter: (() => void) | undefined;
  private roomWaiter: (() => void) | undefined;
  /** Frames in pieces dropped since the sender last looked (it turns them into a gap). */
  droppedFrames = 0;
  /** Pieces dropped since the sender last looked. */
  droppedPieces = 0;

  constructor(private readonly o: OutageBufferOptions) {}

  get length(): number {
    return this.pieces.length - this.head;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Adds a piece; when full, drops the oldest (live) or waits for room (false once closed). */
  async push(p: Piece): Promise<boolean> {
    if (this.closed) return false;
    if (!this.o.dropWhenFull) {
      while (!this.closed && this.length > 0 && this.bytes + p.value.length > this.o.maxBytes) {
        await new Promise<void>((r) => (this.roomWaiter = r));
      }
      if (this.closed) return false;
    }
    this.pieces.push(p);
    this.bytes += p.value.length;
    if (this.o.dropWhenFull) {
      while (this.length > 1 && (p.at - this.pieces[this.head]!.at > this.o.maxMs || this.bytes > this.o.maxBytes)) {
        const old = this.take()!;
        this.droppedFrames += old.frameStarts.length;
        this.droppedPieces++;
      }
    }
    this.wakeItem();
    return true;
  }

  /** Whether a piece of `bytes` can be added now without waiting (dropping mode: always). */
  hasRoom(bytes: number): boolean {
    return this.o.dropWhenFull || this.length === 0 || this.bytes + bytes <= this.o.maxBytes;
  }

  peek(i = 0): Piece | undefined {
    return this.pieces[this.head + i];
  }

  /** Removes the oldest piece. */
  take(): Piece | undefined {
    if (this.head >= this.pieces.length) return undefined;
    const p = this.pieces[this.head]!;
    this.pieces[this.head++] = undefined as unknown as Piece;
    this.bytes -= p.value.length;
    if (this.head > 1024 && this.head * 2 > this.pieces.length) {
      this.pieces.splice(0, this.head);
      this.head = 0;
    }
    const r = this.roomWaiter;
    this.roomWaiter = undefined;
    r?.();
    return p;
  }

  /** Resolves when a piece is there or the buffer is closed. */
  async waitForItem(): Promise<void> {
    while (this.length === 0 && !this.closed) await new Promise<void>((r) => (this.itemWaiter = r));
  }

  close(): void {
    this.closed = true;
    this.wakeItem();
    const r = this.roomWaiter;
    this.roomWaiter = undefined;
    r?.();
  }

  private wakeItem(): void {
    const w = this.itemWaiter;
    this.itemWaiter = undefined;
    w?.();
  }
}

/** Frames that reached the broker in one session, counted as the processor's demuxer will count them. */
export class SentFrames {
  private readonly demux = new TsDemuxer();
  frames = 0;
  private readonly count = (): void => {
    this.frames++;
  };

  add(value: Buffer): void {
    this.demux.push(value, 0, '', this.count);
  }

  /** The session's last bytes are out: a frame still open ends here (or is dropped as cut short). */
  end(): number {
    this.demux.flush(this.count);
    return this.frames;
  }
}
