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

import { TS_PACKET, TsPacketReader, isPesStart, packetHeader, pesPts, readPacketHeader, unwrapPts } from '../decode/mpegts.js';

/** PID of the one video stream: ffmpeg's mpegts muxer numbers streams from -mpegts_start_pid (pinned to this). */
export const VIDEO_PID = 0x100;

/** Finds the PTS of every PES that starts on VIDEO_PID in a TS byte stream fed in arbitrary pieces. */
export class PtsScanner {
  private readonly reader = new TsPacketReader((b, p) => this.packet(b, p));
  private readonly header = packetHeader();
  private found: number[] = [];

  /** PTS values (90 kHz, not unwrapped) of the PES packets that start in `data`. */
  feed(data: Buffer): number[] {
    this.found = [];
    this.reader.push(data);
    return this.found;
  }

  private packet(b: Buffer, p: number): void {
    const { pid, pusi, payload: q } = readPacketHeader(b, p, this.header);
    // Only PES starts on the video PID, with the PES header's first 14 bytes in this packet.
    if (pid !== VIDEO_PID || !pusi || q < 0 || q + 14 > p + TS_PACKET || !isPesStart(b, q, p + TS_PACKET)) return;
    const pts = pesPts(b, q);
    if (!Number.isNaN(pts)) this.found.push(pts);
  }
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
  /** The last pts, unwrapped (90 kHz ticks). */
  private lastPts = Number.NaN;
  private maxRelMs = -Infinity;
  private pendingArrivalMs: number | undefined;
  private best = Infinity;
  /** Frames seen so far. */
  frames = 0;

  constructor(private readonly releasedByNext = false) {}

  /** Feeds the bytes of one stdout read that arrived at `arrivalMs`. */
  observe(data: Buffer, arrivalMs: number): void {
    for (const raw of this.scanner.feed(data)) {
      // Across a wrap of the 33-bit clock: the value nearest the previous frame's.
      const pts = unwrapPts(raw, this.lastPts);
      this.firstPts ??= pts;
      this.lastPts = pts;
      this.maxRelMs = Math.max(this.maxRelMs, (pts - this.firstPts) / 90);
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
