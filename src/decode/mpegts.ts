/**
 * The one MPEG-TS parser (ISO/IEC 13818-1), in two layers.
 *
 * The packet layer: the TS constants, whole packets out of a byte stream cut anywhere
 * (TsPacketReader), a packet's header, the PAT and PMT, PES headers and their 33-bit pts/dts.
 * `framewire ingest` uses it to follow its own output (ingest/buffer.ts TsWatcher,
 * ingest/capture.ts), the demuxer below to assemble frames.
 *
 * TsDemuxer: a streaming demuxer for one stream session's byte stream. Chunks cut the stream
 * anywhere (inside a TS packet, a PES packet or a frame); the demuxer carries what it needs across
 * them and hands out whole video access units (one coded frame each) with their pts, dts and
 * keyframe flag, and the chunk in which each one started. That is what lets the decoder be fed
 * whole frames (so ffmpeg never waits for the next packet), frames be numbered without asking
 * ffmpeg, and stale frames be skipped without decoding.
 *
 * A PES packet ends when its length says so (producers that write PES lengths, like
 * `framewire ingest`), or else when the next one starts. Only the first H.264 or H.265 stream of
 * the program is taken (from the PMT; before a PMT is seen, the first video PES stream id).
 * Continuity counters are not read: a lost packet shows as a PES shorter than its length
 * (dropped as damaged), or as a frame the decoder rejects.
 */

/** TS packet size and the sync byte every packet starts with. */
export const TS_PACKET = 188;
export const TS_SYNC = 0x47;
/** pts and dts count a 90 kHz clock in 33 bits: it wraps every ~26.5 h. */
export const PTS_HZ = 90_000;
export const PTS_WRAP = 2 ** 33;

/** A TS null packet (PID 0x1fff): valid MPEG-TS that every demuxer skips. */
export const TS_NULL_PACKET: Buffer = (() => {
  const p = Buffer.alloc(TS_PACKET, 0xff);
  p[0] = TS_SYNC;
  p[1] = 0x1f;
  p[2] = 0xff;
  p[3] = 0x10; // payload only, continuity counter 0
  return p;
})();

/**
 * Whole TS packets out of a byte stream cut anywhere. A packet split across chunks is carried
 * and handed over (`carried`, in a buffer of the reader's that the handler must not keep) when
 * the next chunk completes it; after lost sync the reader resynchronises at a sync byte that
 * starts a run of packets.
 */
export class TsPacketReader {
  private readonly carry = Buffer.allocUnsafe(TS_PACKET);
  private carryLen = 0;

  constructor(private readonly onPacket: (b: Buffer, p: number, carried: boolean) => void) {}

  push(buf: Buffer): void {
    const p = this.finishCarried(buf);
    if (p >= 0) this.readFrom(buf, p);
  }

  /**
   * Completes the packet carried from earlier chunks with the first bytes of `buf` and hands it
   * over; returns where `buf`'s own packets start, or -1 when all of `buf` went into the carry.
   */
  finishCarried(buf: Buffer): number {
    if (this.carryLen === 0) return 0;
    const need = TS_PACKET - this.carryLen;
    if (buf.length < need) {
      buf.copy(this.carry, this.carryLen);
      this.carryLen += buf.length;
      return -1;
    }
    buf.copy(this.carry, this.carryLen, 0, need);
    this.carryLen = 0;
    if (this.carry[0] !== TS_SYNC) return 0; // lost sync: resynchronise within this chunk
    this.onPacket(this.carry, 0, true);
    return need;
  }

  /** Hands over the whole packets of `buf` from `p` on, and carries a partial last one. */
  readFrom(buf: Buffer, p: number): void {
    while (p < buf.length) {
      if (buf[p] !== TS_SYNC) {
        p = resync(buf, p);
        continue;
      }
      if (p + TS_PACKET > buf.length) {
        buf.copy(this.carry, 0, p);
        this.carryLen = buf.length - p;
        return;
      }
      this.onPacket(buf, p, false);
      p += TS_PACKET;
    }
  }

  /** Forgets a partial packet (the end of the byte stream). */
  reset(): void {
    this.carryLen = 0;
  }
}

function resync(b: Buffer, from: number): number {
  for (let p = from + 1; p < b.length; p++) {
    if (b[p] !== TS_SYNC) continue;
    if (p + TS_PACKET >= b.length || b[p + TS_PACKET] === TS_SYNC) return p;
  }
  return b.length;
}

/** The fields of a TS packet header the parsers use. Filled in place (one object per reader, none per packet). */
export interface PacketHeader {
  pid: number;
  /** payload_unit_start_indicator: a PES packet or a section starts in this packet. */
  pusi: boolean;
  /** The adaptation field's random_access_indicator. */
  rai: boolean;
  /** Index of the first payload byte, or -1 when the packet has no payload. */
  payload: number;
}

export function packetHeader(): PacketHeader {
  return { pid: -1, pusi: false, rai: false, payload: -1 };
}

/** Reads the header of the packet at `p` (b[p] is the sync byte) into `h`. */
export function readPacketHeader(b: Buffer, p: number, h: PacketHeader): PacketHeader {
  h.pid = ((b[p + 1]! & 0x1f) << 8) | b[p + 2]!;
  h.pusi = (b[p + 1]! & 0x40) !== 0;
  const afc = (b[p + 3]! >> 4) & 0x03;
  let q = p + 4;
  h.rai = false;
  if (afc & 0x02) {
    const len = b[q]!;
    if (len > 0) h.rai = (b[q + 1]! & 0x40) !== 0;
    q += 1 + len;
  }
  h.payload = (afc & 0x01) === 0 || q >= p + TS_PACKET ? -1 : q;
  return h;
}

/** The PMT's PID from the PAT section that starts at payload byte `q` (first program other than 0), or -1. */
export function patPmtPid(b: Buffer, q: number, end: number): number {
  q += 1 + b[q]!; // pointer field
  if (q + 8 > end || b[q] !== 0x00) return -1;
  const sectionEnd = Math.min(end, q + 3 + (((b[q + 1]! & 0x0f) << 8) | b[q + 2]!) - 4);
  for (let i = q + 8; i + 4 <= sectionEnd; i += 4) {
    const program = (b[i]! << 8) | b[i + 1]!;
    if (program !== 0) return ((b[i + 2]! & 0x1f) << 8) | b[i + 3]!;
  }
  return -1;
}

/** The first H.264 or H.265 stream of the PMT section that starts at payload byte `q`, or undefined. */
export function pmtVideoStream(b: Buffer, q: number, end: number): { pid: number; codec: VideoCodec } | undefined {
  q += 1 + b[q]!; // pointer field
  if (q + 12 > end || b[q] !== 0x02) return undefined;
  const sectionEnd = Math.min(end, q + 3 + (((b[q + 1]! & 0x0f) << 8) | b[q + 2]!) - 4);
  let i = q + 12 + (((b[q + 10]! & 0x0f) << 8) | b[q + 11]!);
  for (; i + 5 <= sectionEnd; i += 5 + (((b[i + 3]! & 0x0f) << 8) | b[i + 4]!)) {
    const type = b[i]!;
    const codec: VideoCodec | undefined = type === 0x1b ? 'h264' : type === 0x24 ? 'hevc' : undefined;
    if (codec) return { pid: ((b[i + 1]! & 0x1f) << 8) | b[i + 2]!, codec };
  }
  return undefined;
}

/** A PES packet starts at `q` (00 00 01, then its stream id, within `end`). */
export function isPesStart(b: Buffer, q: number, end: number): boolean {
  return q + 4 <= end && b[q] === 0 && b[q + 1] === 0 && b[q + 2] === 1;
}

/** A PES packet of a video stream (stream id E0..EF) starts at `q`. */
export function isVideoPesStart(b: Buffer, q: number, end: number): boolean {
  return isPesStart(b, q, end) && (b[q + 3]! & 0xf0) === 0xe0;
}

/** The pts (90 kHz ticks as written, not unwrapped) of the PES header at `q`, or NaN; its 14 header bytes are in the buffer. */
export function pesPts(b: Buffer, q: number): number {
  return b[q + 7]! & 0x80 && b[q + 8]! >= 5 ? readTimestamp(b, q + 9) : Number.NaN;
}

/** The dts (ticks as written) of the PES header at `q`, or NaN when it has none; its 19 header bytes are in the buffer. */
export function pesDts(b: Buffer, q: number): number {
  return (b[q + 7]! & 0xc0) === 0xc0 && b[q + 8]! >= 10 ? readTimestamp(b, q + 14) : Number.NaN;
}

function readTimestamp(b: Buffer, i: number): number {
  // 33 bits: 3 + 15 + 15, each group followed by a marker bit.
  const hi = (b[i]! >> 1) & 0x07;
  const mid = (b[i + 1]! << 7) | (b[i + 2]! >> 1);
  const lo = (b[i + 3]! << 7) | (b[i + 4]! >> 1);
  return hi * 1073741824 + mid * 32768 + lo;
}

/**
 * `ticks` (33 bits as written) moved by whole wraps to the value nearest `near` (unwrapped
 * ticks, e.g. the previous frame's); `ticks` itself when `near` is NaN (the first one).
 */
export function unwrapPts(ticks: number, near: number): number {
  if (Number.isNaN(near)) return ticks;
  return ticks + Math.round((near - ticks) / PTS_WRAP) * PTS_WRAP;
}

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
  private readonly reader = new TsPacketReader((b, p) => this.packet(b, p));
  private readonly header = packetHeader();
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
  /** The last pts, unwrapped ticks. */
  private lastPts = Number.NaN;
  /** The chunk the packets being read began in. */
  private chunkSeq = 0;
  private chunkOffset = '';
  /** The receiver of the push in progress. */
  private out: (au: AccessUnit) => void = () => {};

  /**
   * Demuxes the next bytes of the session; `out` receives each access unit completed by them, in
   * decode order. Synchronous; `out` must not keep the AccessUnit object (its `data` it may).
   */
  push(buf: Buffer, seq: number, offset: string, out: (au: AccessUnit) => void): void {
    this.out = out;
    // The carried packet began in an earlier chunk: a frame starting in it belongs to that chunk
    // (a resume from this chunk would never see the packet's start).
    const p = this.reader.finishCarried(buf);
    if (p < 0) return;
    this.chunkSeq = seq;
    this.chunkOffset = offset;
    this.reader.readFrom(buf, p);
  }

  /** End of the session's bytes: the PES being assembled is complete (without a length), or cut short (dropped as damaged). */
  flush(out: (au: AccessUnit) => void): void {
    this.reader.reset();
    this.finishPes(out);
  }

  private packet(b: Buffer, p: number): void {
    const out = this.out;
    const { pid, pusi, rai, payload: q } = readPacketHeader(b, p, this.header);
    const end = p + TS_PACKET;
    if (q < 0) return;
    if (pid === 0) {
      if (pusi) {
        const pmtPid = patPmtPid(b, q, end);
        if (pmtPid >= 0) this.pmtPid = pmtPid;
      }
      return;
    }
    if (pid === this.pmtPid) {
      if (pusi) this.readPmt(b, q, end);
      return;
    }
    if (pusi) {
      // Before the PMT names the video PID: the first PES with a video stream id.
      if (this.videoPid < 0 && isVideoPesStart(b, q, end)) this.videoPid = pid;
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

  private readPmt(b: Buffer, q: number, end: number): void {
    const video = pmtVideoStream(b, q, end);
    if (!video) return;
    if (video.pid !== this.videoPid && this.pesOpen) this.pesOpen = false; // another stream now: drop the partial one
    this.videoPid = video.pid;
    this.codec = video.codec;
  }

  private startPes(b: Buffer, q: number, end: number, rai: boolean): void {
    this.pesOpen = false;
    // 00 00 01 stream_id length(2) flags(2) header_length, then pts/dts
    if (q + 9 > end || !isPesStart(b, q, end)) return void this.damaged++;
    const length = (b[q + 4]! << 8) | b[q + 5]!;
    const headerLen = b[q + 8]!;
    const payload = q + 9 + headerLen;
    if (payload > end) return void this.damaged++;
    let pts = pesPts(b, q);
    let dts = pesDts(b, q); // only with a pts
    if (!Number.isNaN(pts)) {
      pts = unwrapPts(pts, this.lastPts);
      this.lastPts = pts;
    }
    // dts carries the same wrap as pts (it is never more than a few frames earlier).
    if (!Number.isNaN(dts)) dts = unwrapPts(dts, pts);
    this.pesOpen = true;
    this.pesPts = pts / PTS_HZ;
    this.pesDts = Number.isNaN(dts) ? this.pesPts : dts / PTS_HZ;
    this.pesRai = rai;
    this.pesSeq = this.chunkSeq;
    this.pesOffset = this.chunkOffset;
    this.pesExpected = length > 0 ? length - 3 - headerLen : 0;
    this.pesLen = 0;
    this.append(b, payload, end);
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
