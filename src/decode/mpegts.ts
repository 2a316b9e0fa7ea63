/**
 * A streaming MPEG-TS demuxer for one stream session's byte stream. Chunks cut the stream
 * anywhere (inside a TS packet, a PES packet or a frame); the demuxer carries what it needs across
 * them and hands out whole video access units (one coded frame each) with their pts, dts and
 * keyframe flag, and the chunk in which each one started. That is what lets the decoder be fed
 * whole frames (so ffmpeg never waits for the next packet), frames be numbered without asking
 * ffmpeg, and stale frames be skipped without decoding.
 *
 * A PES packet ends when its length says so (producers that write PES lengths, like
 * `framewire ingest`), or else when the next one starts. Only the first H.264 or H.265 stream of
 * the program is taken (from the PMT; before a PMT is seen, the first video PES stream id).
 */

const PACKET = 188;
const SYNC = 0x47;
const PTS_WRAP = 2 ** 33;
/**
 * Largest frame assembled: a PES without a length ends only at the next one, so hostile bytes
 * that never start another would grow the buffer without bound. 16 MiB is well above a 4K
 * keyframe at broadcast bitrates.
 */
export const MAX_FRAME_BYTES = 16 << 20;

export type VideoCodec = 'h264' | 'hevc';

/** One coded frame. `data` is its Annex B bytes, owned by the receiver. */
export interface AccessUnit {
  data: Buffer;
  /** Presentation and decode time, seconds (unwrapped 90 kHz / 90000); dts = pts when absent. */
  pts: number;
  dts: number;
  /** A random-access point: IDR/IRAP picture, or the adaptation field's random-access flag. */
  key: boolean;
  /** No other picture references it (H.264 nal_ref_idc 0, H.265 sub-layer non-reference): skipping it costs nothing. */
  disposable: boolean;
  /** fw-seq and Kafka offset of the chunk that holds the start of this frame's PES packet. */
  seq: number;
  offset: string;
}

export class TsDemuxer {
  codec: VideoCodec | undefined;
  /** Frames dropped because their PES packet was damaged (header cut, no payload). */
  damaged = 0;
  private readonly carry = Buffer.allocUnsafe(PACKET);
  private carryLen = 0;
  private pmtPid = -1;
  private videoPid = -1;
  /** The PES being assembled. */
  private pes = Buffer.allocUnsafe(64 * 1024);
  private pesLen = 0;
  /** Payload bytes the PES header announced (0: unbounded, ends at the next PES). */
  private pesExpected = 0;
  private pesOpen = false;
  private pesPts = Number.NaN;
  private pesDts = Number.NaN;
  private pesRai = false;
  private pesSeq = 0;
  private pesOffset = '';
  private lastPts = Number.NaN;
  private chunkSeq = 0;
  private chunkOffset = '';

  /**
   * Demuxes the next bytes of the session; `out` receives each access unit completed by them, in
   * decode order. Synchronous; `out` must not keep the AccessUnit object (its `data` it may).
   */
  push(buf: Buffer, seq: number, offset: string, out: (au: AccessUnit) => void): void {
    let p = 0;
    if (this.carryLen > 0) {
      // The carried packet began in an earlier chunk: a frame starting in it belongs to that chunk
      // (a resume from this chunk would never see the packet's start).
      const need = PACKET - this.carryLen;
      if (buf.length < need) {
        buf.copy(this.carry, this.carryLen);
        this.carryLen += buf.length;
        return;
      }
      buf.copy(this.carry, this.carryLen, 0, need);
      this.carryLen = 0;
      if (this.carry[0] === SYNC) {
        this.packet(this.carry, 0, out);
        p = need;
      } // else: lost sync; resynchronise within this chunk
    }
    this.chunkSeq = seq;
    this.chunkOffset = offset;
    while (p < buf.length) {
      if (buf[p] !== SYNC) {
        p = resync(buf, p);
        continue;
      }
      if (p + PACKET > buf.length) {
        buf.copy(this.carry, 0, p);
        this.carryLen = buf.length - p;
        return;
      }
      this.packet(buf, p, out);
      p += PACKET;
    }
  }

  /** End of the session's bytes: the PES being assembled is complete (without a length), or cut short (dropped as damaged). */
  flush(out: (au: AccessUnit) => void): void {
    this.carryLen = 0;
    this.finishPes(out);
  }

  private packet(b: Buffer, p: number, out: (au: AccessUnit) => void): void {
    const pid = ((b[p + 1]! & 0x1f) << 8) | b[p + 2]!;
    const pusi = (b[p + 1]! & 0x40) !== 0;
    const afc = (b[p + 3]! >> 4) & 0x03;
    let q = p + 4;
    const end = p + PACKET;
    let rai = false;
    if (afc & 0x02) {
      const len = b[q]!;
      if (len > 0) rai = (b[q + 1]! & 0x40) !== 0;
      q += 1 + len;
    }
    if ((afc & 0x01) === 0 || q >= end) return;
    if (pid === 0) {
      if (pusi) this.readPat(b, q, end);
      return;
    }
    if (pid === this.pmtPid) {
      if (pusi) this.readPmt(b, q, end);
      return;
    }
    if (pusi) {
      // Before the PMT names the video PID: the first PES with a video stream id.
      if (this.videoPid < 0 && q + 4 <= end && b[q] === 0 && b[q + 1] === 0 && b[q + 2] === 1 && (b[q + 3]! & 0xf0) === 0xe0) this.videoPid = pid;
      if (pid !== this.videoPid) return;
      this.finishPes(out);
      this.startPes(b, q, end, rai);
    } else if (pid === this.videoPid && this.pesOpen) {
      this.append(b, q, end);
    } else {
      return;
    }
    if (this.pesOpen && this.pesExpected > 0 && this.pesLen >= this.pesExpected) this.finishPes(out);
  }

  private readPat(b: Buffer, q: number, end: number): void {
    q += 1 + b[q]!; // pointer field
    if (q + 8 > end || b[q] !== 0x00) return;
    const sectionEnd = Math.min(end, q + 3 + (((b[q + 1]! & 0x0f) << 8) | b[q + 2]!) - 4);
    for (let i = q + 8; i + 4 <= sectionEnd; i += 4) {
      const program = (b[i]! << 8) | b[i + 1]!;
      if (program !== 0) {
        this.pmtPid = ((b[i + 2]! & 0x1f) << 8) | b[i + 3]!;
        return;
      }
    }
  }

  private readPmt(b: Buffer, q: number, end: number): void {
    q += 1 + b[q]!;
    if (q + 12 > end || b[q] !== 0x02) return;
    const sectionEnd = Math.min(end, q + 3 + (((b[q + 1]! & 0x0f) << 8) | b[q + 2]!) - 4);
    let i = q + 12 + (((b[q + 10]! & 0x0f) << 8) | b[q + 11]!);
    for (; i + 5 <= sectionEnd; i += 5 + (((b[i + 3]! & 0x0f) << 8) | b[i + 4]!)) {
      const type = b[i]!;
      const codec: VideoCodec | undefined = type === 0x1b ? 'h264' : type === 0x24 ? 'hevc' : undefined;
      if (!codec) continue;
      const pid = ((b[i + 1]! & 0x1f) << 8) | b[i + 2]!;
      if (pid !== this.videoPid && this.pesOpen) this.pesOpen = false; // another stream now: drop the partial one
      this.videoPid = pid;
      this.codec = codec;
      return;
    }
  }

  private startPes(b: Buffer, q: number, end: number, rai: boolean): void {
    this.pesOpen = false;
    // 00 00 01 stream_id length(2) flags(2) header_length, then pts/dts
    if (q + 9 > end || b[q] !== 0 || b[q + 1] !== 0 || b[q + 2] !== 1) return void this.damaged++;
    const length = (b[q + 4]! << 8) | b[q + 5]!;
    const flags = b[q + 7]!;
    const headerLen = b[q + 8]!;
    const payload = q + 9 + headerLen;
    if (payload > end) return void this.damaged++;
    let pts = Number.NaN;
    let dts = Number.NaN;
    if (flags & 0x80 && headerLen >= 5) pts = this.unwrap(readTimestamp(b, q + 9));
    if ((flags & 0xc0) === 0xc0 && headerLen >= 10) dts = readTimestamp(b, q + 14) / 90000;
    if (!Number.isNaN(pts) && !Number.isNaN(dts)) {
      // dts carries the same wrap as pts (it is never more than a few frames earlier).
      dts += Math.round((pts - dts) / (PTS_WRAP / 90000)) * (PTS_WRAP / 90000);
    }
    this.pesOpen = true;
    this.pesPts = pts;
    this.pesDts = Number.isNaN(dts) ? pts : dts;
    this.pesRai = rai;
    this.pesSeq = this.chunkSeq;
    this.pesOffset = this.chunkOffset;
    this.pesExpected = length > 0 ? length - 3 - headerLen : 0;
    this.pesLen = 0;
    this.append(b, payload, end);
  }

  /** Absolute pts in seconds, continuing across the 33-bit wrap (every ~26.5 h). */
  private unwrap(ticks: number): number {
    let s = ticks / 90000;
    if (!Number.isNaN(this.lastPts)) {
      const span = PTS_WRAP / 90000;
      while (s < this.lastPts - span / 2) s += span;
    }
    this.lastPts = s;
    return s;
  }

  private append(b: Buffer, from: number, to: number): void {
    const n = to - from;
    if (this.pesLen + n > MAX_FRAME_BYTES) {
      // Not a frame any decoder should see: dropped, and nothing more is gathered until the next PES.
      this.pesOpen = false;
      this.damaged++;
      return;
    }
    if (this.pesLen + n > this.pes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.pes.length * 2, this.pesLen + n));
      this.pes.copy(grown, 0, 0, this.pesLen);
      this.pes = grown;
    }
    b.copy(this.pes, this.pesLen, from, to);
    this.pesLen += n;
  }

  private finishPes(out: (au: AccessUnit) => void): void {
    if (!this.pesOpen) return;
    this.pesOpen = false;
    let n = this.pesLen;
    if (this.pesExpected > 0 && n > this.pesExpected) n = this.pesExpected;
    // A PES shorter than its header announced lost bytes (a stream cut short, lost packets): a
    // decoder would only turn it into a corrupt picture.
    if (n === 0 || Number.isNaN(this.pesPts) || n < this.pesExpected) return void this.damaged++;
    const data = Buffer.allocUnsafe(n);
    this.pes.copy(data, 0, 0, n);
    if (!this.codec) this.codec = sniffCodec(data);
    const nal = inspectNals(data, this.codec ?? 'h264');
    unit.data = data;
    unit.pts = this.pesPts;
    unit.dts = this.pesDts;
    unit.key = this.pesRai || nal.key;
    unit.disposable = nal.disposable && !unit.key;
    unit.seq = this.pesSeq;
    unit.offset = this.pesOffset;
    out(unit);
  }
}

/** Handed to `out` for every access unit (its fields are overwritten by the next). */
const unit: AccessUnit = { data: Buffer.alloc(0), pts: 0, dts: 0, key: false, disposable: false, seq: 0, offset: '' };

function resync(b: Buffer, from: number): number {
  for (let p = from + 1; p < b.length; p++) {
    if (b[p] !== SYNC) continue;
    if (p + PACKET >= b.length || b[p + PACKET] === SYNC) return p;
  }
  return b.length;
}

function readTimestamp(b: Buffer, i: number): number {
  // 33 bits: 3 + 15 + 15, each group followed by a marker bit.
  const hi = (b[i]! >> 1) & 0x07;
  const mid = (b[i + 1]! << 7) | (b[i + 2]! >> 1);
  const lo = (b[i + 3]! << 7) | (b[i + 4]! >> 1);
  return hi * 1073741824 + mid * 32768 + lo;
}

/** The codec from the access unit delimiter every TS video frame starts with (before the PMT is known). */
function sniffCodec(d: Buffer): VideoCodec | undefined {
  const i = startCode(d, 0);
  if (i < 0 || i >= d.length) return undefined;
  if ((d[i]! & 0x1f) === 9) return 'h264';
  if (((d[i]! >> 1) & 0x3f) === 35) return 'hevc';
  return undefined;
}

/** Index of the first byte after the next 00 00 01 start code at or after `from`, or -1. */
function startCode(d: Buffer, from: number): number {
  for (let i = from; i + 2 < d.length; i++) {
    if (d[i + 2]! > 1) {
      i += 2;
      continue;
    }
    if (d[i] === 0 && d[i + 1] === 0 && d[i + 2] === 1) return i + 3;
  }
  return -1;
}

const nalResult = { key: false, disposable: false };

/** Keyframe and disposability from the NAL headers, up to the first coded slice. */
function inspectNals(d: Buffer, codec: VideoCodec): { key: boolean; disposable: boolean } {
  nalResult.key = false;
  nalResult.disposable = false;
  for (let i = startCode(d, 0); i >= 0 && i < d.length; i = startCode(d, i)) {
    if (codec === 'h264') {
      const type = d[i]! & 0x1f;
      if (type === 5) {
        nalResult.key = true;
        return nalResult;
      }
      if (type === 1) {
        nalResult.disposable = (d[i]! & 0x60) === 0;
        return nalResult;
      }
    } else {
      const type = (d[i]! >> 1) & 0x3f;
      if (type < 32) {
        nalResult.key = type >= 16 && type <= 21;
        nalResult.disposable = type <= 14 && type % 2 === 0;
        return nalResult;
      }
    }
  }
  return nalResult;
}

/** The access unit delimiter that ends a frame for ffmpeg's parser (so it never waits for the next frame). */
export function accessUnitDelimiter(codec: VideoCodec): Buffer {
  // H.264: nal_unit_type 9, primary_pic_type 7 (any). H.265: nal_unit_type 35, layer 0, tid 1, pic_type 2.
  return codec === 'h264' ? Buffer.from([0, 0, 0, 1, 0x09, 0xf0]) : Buffer.from([0, 0, 0, 1, 0x46, 0x01, 0x50]);
}

/** Bytes of the access unit delimiter `data` starts with (0 if none), so it is not written twice. */
export function leadingDelimiterBytes(data: Buffer, codec: VideoCodec): number {
  const i = startCode(data, 0);
  if (i < 0 || i > 4) return 0;
  if (codec === 'h264') return (data[i]! & 0x1f) === 9 ? i + 2 : 0;
  return ((data[i]! >> 1) & 0x3f) === 35 ? i + 3 : 0;
}
