/**
 * Just enough MPEG-TS to shed load without decoding: where a chunk's video random-access points
 * (keyframes) start, and the presentation times of the video frames it starts. Chunks cut the
 * byte stream anywhere; TS packets are 188 bytes, aligned from the session's first byte (checked:
 * a chunk whose packets are not where expected is scanned for the sync pattern instead).
 */

const PACKET = 188;
const SYNC = 0x47;

export interface TsScan {
  /** Seconds (90 kHz pts / 90000) of the first video frame in the chunk that is a random-access point; NaN if none. */
  keyPts: number;
  /** Seconds of the first and last video frames that start in the chunk; NaN if none. */
  firstPts: number;
  lastPts: number;
  /** Smallest positive step between consecutive video pts in the chunk (s); NaN if under two frames. */
  minStep: number;
}

function readPts(b: Buffer, i: number): number {
  // 33 bits: 3 + 15 + 15, each group followed by a marker bit.
  const hi = (b[i]! >> 1) & 0x07;
  const mid = (b[i + 1]! << 7) | (b[i + 2]! >> 1);
  const lo = (b[i + 3]! << 7) | (b[i + 4]! >> 1);
  return hi * 1073741824 + mid * 32768 + lo;
}

function firstPacket(buf: Buffer, sessionOffset: number): number {
  const aligned = (PACKET - (sessionOffset % PACKET)) % PACKET;
  if (aligned < buf.length && buf[aligned] === SYNC) return aligned;
  for (let p = 0; p + PACKET < buf.length; p++) if (buf[p] === SYNC && buf[p + PACKET] === SYNC) return p;
  return buf.length;
}

/**
 * Scans `buf`, the chunk that starts `sessionOffset` bytes into its session's byte stream, into
 * `out` (reused: no allocation). Only packets whose PES header lies wholly inside the chunk count.
 */
export function scanTs(buf: Buffer, sessionOffset: number, out: TsScan): TsScan {
  out.keyPts = Number.NaN;
  out.firstPts = Number.NaN;
  out.lastPts = Number.NaN;
  out.minStep = Number.NaN;
  for (let p = firstPacket(buf, sessionOffset); p + 4 <= buf.length; p += PACKET) {
    if (buf[p] !== SYNC) break;
    if ((buf[p + 1]! & 0x40) === 0) continue; // not the start of a PES packet
    const afc = (buf[p + 3]! >> 4) & 0x03;
    let q = p + 4;
    let rai = false;
    if (afc & 0x02) {
      const len = buf[q] ?? 0;
      if (len > 0 && q + 1 < buf.length) rai = (buf[q + 1]! & 0x40) !== 0;
      q += 1 + len;
    }
    if ((afc & 0x01) === 0) continue;
    const end = Math.min(buf.length, p + PACKET);
    // 00 00 01 stream_id len(2) flags(2) header_len pts(5)
    if (q + 14 > end || buf[q] !== 0 || buf[q + 1] !== 0 || buf[q + 2] !== 1) continue;
    const sid = buf[q + 3]!;
    if (sid < 0xe0 || sid > 0xef) continue; // video streams only
    if ((buf[q + 7]! & 0x80) === 0) continue; // no pts
    const pts = readPts(buf, q + 9) / 90000;
    if (Number.isNaN(out.firstPts)) out.firstPts = pts;
    else if (pts > out.lastPts && !(pts - out.lastPts >= out.minStep)) out.minStep = pts - out.lastPts;
    out.lastPts = pts;
    if (rai && Number.isNaN(out.keyPts)) out.keyPts = pts;
  }
  return out;
}
