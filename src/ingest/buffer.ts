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
import { TsDemuxer } from '../decode/mpegts.js';

const PACKET = 188;
const SYNC = 0x47;

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
  private readonly carry = Buffer.allocUnsafe(PACKET);
  private carryLen = 0;
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
    let p = 0;
    if (this.carryLen > 0) {
      const need = PACKET - this.carryLen;
      if (b.length < need) {
        b.copy(this.carry, this.carryLen);
        this.carryLen += b.length;
        return { keyStarts: [], frameStarts: [] };
      }
      b.copy(this.carry, this.carryLen, 0, need);
      this.carryLen = 0;
      // A packet split between pieces: it counts at offset 0 of this one, but a keyframe starting
      // in it cannot start a session here (its first bytes went with the piece before).
      if (this.carry[0] === SYNC) this.packet(this.carry, 0, -1);
      p = need;
    }
    while (p < b.length) {
      if (b[p] !== SYNC) {
        p++;
        continue;
      }
      if (p + PACKET > b.length) {
        b.copy(this.carry, 0, p);
        this.carryLen = b.length - p;
        break;
      }
      this.packet(b, p, p);
      p += PACKET;
    }
    return { keyStarts: this.pending, frameStarts: this.starts };
  }

  private packet(b: Buffer, p: number, offset: number): void {
    const pid = ((b[p + 1]! & 0x1f) << 8) | b[p + 2]!;
    const pusi = (b[p + 1]! & 0x40) !== 0;
    const afc = (b[p + 3]! >> 4) & 0x03;
    let q = p + 4;
    let rai = false;
    if (afc & 0x02) {
      const len = b[q]!;
      if (len > 0) rai = (b[q + 1]! & 0x40) !== 0;
      q += 1 + len;
    }
    if (!pusi || (afc & 0x01) === 0 || q >= p + PACKET) return;
    if (pid === 0) {
      this.pat = Buffer.from(b.subarray(p, p + PACKET));
      const s = q + 1 + b[q]!;
      if (s + 12 <= p + PACKET) this.pmtPid = ((b[s + 10]! & 0x1f) << 8) | b[s + 11]!;
      return;
    }
    if (pid === this.pmtPid) {
      this.pmt = Buffer.from(b.subarray(p, p + PACKET));
      return;
    }
    // A video PES start: 00 00 01 E0..EF.
    if (q + 14 > p + PACKET || b[q] !== 0 || b[q + 1] !== 0 || b[q + 2] !== 1 || (b[q + 3]! & 0xf0) !== 0xe0) return;
    if (this.videoPid < 0) this.videoPid = pid;
    if (pid !== this.videoPid) return;
    this.starts.push(Math.max(0, offset));
    this.frames++;
    const pts = (b[q + 7]! & 0x80) !== 0 ? readTimestamp(b, q + 9) / 90000 : Number.NaN;
    if (Number.isNaN(this.firstPts)) this.firstPts = pts;
    if (rai && offset >= 0 && !Number.isNaN(pts)) this.pending.push({ offset, pts });
  }
}

function readTimestamp(b: Buffer, i: number): number {
  const hi = (b[i]! >> 1) & 0x07;
  const mid = (b[i + 1]! << 7) | (b[i + 2]! >> 1);
  const lo = (b[i + 3]! << 7) | (b[i + 4]! >> 1);
  return hi * 1073741824 + mid * 32768 + lo;
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
