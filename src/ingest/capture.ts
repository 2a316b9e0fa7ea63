/**
 * Capture time of an ingest session (fw-epoch-ms), from ingest's own MPEG-TS output.
 *
 * ffmpeg 5.1's command line exposes no absolute capture time of a live source: the RTSP
 * demuxer turns the RTCP sender reports into AVFormatContext.start_time_realtime, but the ffmpeg
 * tool neither prints it nor carries it to its output, and with a single stream rtpdec does not even
 * use the reports for pts. `-use_wallclock_as_timestamps 1` replaces every pts by the time the
 * packet was read, which throws away the camera's own frame spacing (jitter from the network and
 * from ffmpeg's probing burst goes into the pts) and breaks B-frame order (pts = dts).
 *
 * What is left and true: the wall clock at which each frame came out of ffmpeg, together with the
 * frame's own pts. With `-flush_packets 1` (and in copy mode no encoder in between) a frame's TS
 * packets are written as soon as ffmpeg has read it, so arrival − (pts − first pts) is the time the
 * first frame was captured plus that frame's delay (sender encode, network, ffmpeg, pipe). Delays
 * are never negative, so the smallest value seen is the best estimate, and it never makes a frame
 * claim a capture time after it reached us. This also removes the probing burst: ffmpeg buffers
 * ~0.75 s of a live input while it probes and then writes it all at once, so the first frame out
 * is that much late; the last frame of the burst is not.
 */

/** MPEG-TS packet size. */
export const TS_PACKET = 188;
/** PID of the one video stream: ffmpeg's mpegts muxer numbers streams from -mpegts_start_pid (pinned to this). */
export const VIDEO_PID = 0x100;
/** A TS null packet (PID 0x1fff): valid MPEG-TS that every demuxer skips. */
export const TS_NULL_PACKET: Buffer = (() => {
  const p = Buffer.alloc(TS_PACKET, 0xff);
  p[0] = 0x47;
  p[1] = 0x1f;
  p[2] = 0xff;
  p[3] = 0x10; // payload only, continuity counter 0
  return p;
})();

const PTS_WRAP = 2 ** 33;

/** Finds the PTS of every PES that starts on VIDEO_PID in a TS byte stream fed in arbitrary pieces. */
export class PtsScanner {
  private carry = Buffer.alloc(0);

  /** PTS values (90 kHz, not unwrapped) of the PES packets that start in `data`. */
  feed(data: Buffer): number[] {
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, data]) : data;
    const out: number[] = [];
    let i = 0;
    while (i + TS_PACKET <= buf.length) {
      if (buf[i] !== 0x47) {
        i++; // lost sync (never with ffmpeg's output, which writes whole packets): find the next one
        continue;
      }
      const pts = pesPts(buf, i);
      if (pts !== undefined) out.push(pts);
      i += TS_PACKET;
    }
    this.carry = Buffer.from(buf.subarray(i));
    return out;
  }
}

function pesPts(buf: Buffer, at: number): number | undefined {
  const b1 = buf[at + 1]!;
  const pid = ((b1 & 0x1f) << 8) | buf[at + 2]!;
  if (pid !== VIDEO_PID || (b1 & 0x40) === 0) return undefined; // not the video PID or no PES start
  const afc = (buf[at + 3]! >> 4) & 0x3;
  if ((afc & 0x1) === 0) return undefined; // no payload
  let p = at + 4;
  if (afc & 0x2) p += 1 + buf[p]!;
  const end = at + TS_PACKET;
  if (p + 14 > end) return undefined;
  if (buf[p] !== 0 || buf[p + 1] !== 0 || buf[p + 2] !== 1) return undefined;
  if ((buf[p + 7]! & 0x80) === 0) return undefined; // no PTS
  const q = p + 9;
  return (
    ((buf[q]! >> 1) & 0x07) * 2 ** 30 +
    ((buf[q + 1]! << 7) | (buf[q + 2]! >> 1)) * 2 ** 15 +
    ((buf[q + 3]! << 7) | (buf[q + 4]! >> 1))
  );
}

/**
 * Keeps min over frames of (arrival ms − pts relative to the first frame, ms). The first frame is
 * the first PES with a PTS, as for the processor (ptsMs is relative to the first decoded frame).
 * A packet cannot arrive before the latest frame sent so far was captured, so the largest pts seen
 * so far is subtracted (B-frames come after the later frame they are predicted from).
 *
 * `releasedByNext`: the demuxer emits a frame only when the next one starts. ffmpeg's RTP H.264
 * and H.265 depacketizers do (measured against a GStreamer server: claims were one frame interval
 * late, 40 ms at 25 fps and 102 ms at 10 fps); so frame k's arrival bounds frame k+1's capture.
 */
export class EpochEstimator {
  private readonly scanner = new PtsScanner();
  private firstPts: number | undefined;
  private lastPts = 0;
  private unwrap = 0;
  private maxRelMs = -Infinity;
  private pendingArrivalMs: number | undefined;
  private best = Infinity;
  /** Frames seen so far. */
  frames = 0;

  constructor(private readonly releasedByNext = false) {}

  /** Feeds the bytes of one stdout read that arrived at `arrivalMs`. */
  observe(data: Buffer, arrivalMs: number): void {
    for (const raw of this.scanner.feed(data)) {
      if (this.firstPts === undefined) {
        this.firstPts = raw;
        this.lastPts = raw;
      }
      // A jump back of more than half the range is a wrap of the 33-bit clock.
      if (raw - this.lastPts < -PTS_WRAP / 2) this.unwrap += PTS_WRAP;
      else if (raw - this.lastPts > PTS_WRAP / 2) this.unwrap -= PTS_WRAP;
      this.lastPts = raw;
      this.maxRelMs = Math.max(this.maxRelMs, (raw + this.unwrap - this.firstPts) / 90);
      this.frames++;
      if (!this.releasedByNext) {
        this.best = Math.min(this.best, arrivalMs - this.maxRelMs);
      } else {
        if (this.pendingArrivalMs !== undefined) this.best = Math.min(this.best, this.pendingArrivalMs - this.maxRelMs);
        this.pendingArrivalMs = arrivalMs;
      }
    }
  }

  /**
   * The estimate in whole Unix ms (rounded down: never later than the truth), or undefined before
   * the first sample (a lone frame of a releasedByNext source gives its own arrival).
   */
  get epochMs(): number | undefined {
    if (Number.isFinite(this.best)) return Math.floor(this.best);
    if (this.pendingArrivalMs !== undefined) return Math.floor(this.pendingArrivalMs - Math.max(0, this.maxRelMs));
    return undefined;
  }
}
