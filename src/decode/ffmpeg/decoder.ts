/**
 * One ffmpeg child per active stream session (fluent-ffmpeg). Chunk bytes go in on stdin;
 * raw RGB frames at the model's input size come out on stdout (ffmpeg scales). ffmpeg's showinfo
 * filter reports each frame's pts, input byte position and keyframe flag on stderr; those lines
 * are paired with the frames in order, which is what lets the source checkpoint by keyframe.
 *
 * The child is supervised: its exit is noticed and reported, `close()` ends stdin and waits,
 * `kill()` never leaves it running.
 */
import { PassThrough } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import { performance } from 'node:perf_hooks';
import type { Frame, FrameOwner } from '../../core/frame.js';
import { poolFor } from '../../core/pool.js';

export interface ContinueFrom {
  /** Checkpoint resume: the first frame with pts ≥ keyPts has index keyIndex; frames below skipBelow are already done. */
  keyPts?: number;
  keyIndex?: number;
  skipBelow?: number;
  /** Decoder restart within a session: frames with pts ≤ lastPts were already emitted. */
  lastPts?: number;
  lastIndex?: number;
  frameDur?: number;
}

export interface DecoderHooks {
  /** A decoded frame for the pipeline. May wait (bounded queue); the decoder stops reading meanwhile. */
  emit(frame: Frame): Promise<void>;
  /** Registered before emit, in output order: index, absolute pts (s), input byte pos, keyframe. */
  decoded(index: number, pts: number, pos: number, isKey: boolean): void;
  /** Frame indices lost to a decoder restart (never decoded twice, never emitted). */
  gap(fromIndex: number, toIndex: number): void;
  /** Frames below the resume point that were finished before the restart; nothing to do but count. */
  skipped(count: number): void;
  /** An error-level line from ffmpeg: the bytes most recently written were probably rejected. */
  decodeError(line: string): void;
  /** The child exited; `code` 0 after a clean close. */
  exited(code: number | null, signal: string | null, lastLines: string): void;
}

export interface DecoderOptions {
  stream: string;
  session: string;
  width: number;
  height: number;
  epochMs: number;
  budgetMs: number;
  /** Absolute pts (s) of the session's first frame, when already known (resume / restart). */
  basePts?: number;
  traceparent?: string;
  owner: FrameOwner;
  hooks: DecoderHooks;
  continueFrom?: ContinueFrom;
  ffmpegPath?: string;
}

interface FrameInfo {
  pts: number;
  pos: number;
  isKey: boolean;
}

const INFO_RE = /pts_time:\s*(-?[\d.]+)\s+pos:\s*(-?\d+).*?iskey:(\d)/;
const PTS_EPS = 1e-4;

export class FfmpegDecoder {
  readonly input = new PassThrough({ highWaterMark: 1 << 20 });
  private readonly cmd: ffmpeg.FfmpegCommand;
  private readonly infos: FrameInfo[] = [];
  private infoWaiter: (() => void) | undefined;
  private exitedFlag = false;
  private readonly exitPromise: Promise<void>;
  private readonly lastLines: string[] = [];
  private nextIndex = 0;
  private lastPts = Number.NaN;
  private frameDur = Number.NaN;
  basePts: number;
  /** Frames emitted by this decoder instance. */
  emitted = 0;
  /** Resolves once every frame ffmpeg wrote has been emitted (or the output broke off). */
  readonly framesDone: Promise<void>;

  constructor(private readonly opts: DecoderOptions) {
    this.basePts = opts.basePts ?? Number.NaN;
    const cf = opts.continueFrom;
    if (cf?.lastIndex !== undefined) {
      this.nextIndex = cf.lastIndex + 1;
      this.lastPts = cf.lastPts ?? Number.NaN;
      this.frameDur = cf.frameDur ?? Number.NaN;
    }
    if (opts.ffmpegPath) ffmpeg.setFfmpegPath(opts.ffmpegPath);
    // fluent-ffmpeg keeps this many stderr lines for its error messages; 0 would mean all of them,
    // one showinfo line per frame for the decoder's whole life (a leak measured at ~50 MB of heap
    // in 300 s at 16 streams). The lines themselves reach onStderr as they come.
    this.cmd = ffmpeg({ stdoutLines: 8 })
      .input(this.input)
      .inputFormat('mpegts')
      .inputOptions([
        // Live input: probe little (measured: analyzeduration 0 made capture→decoded slower, 180 vs
        // 154 ms mean, on realtime 25 fps input), one decode thread per stream.
        '-probesize', '65536',
        '-analyzeduration', '250000',
        '-fflags', '+discardcorrupt',
        '-threads', '1',
      ])
      .noAudio()
      .videoFilters(`scale=${opts.width}:${opts.height}:flags=bilinear,format=rgb24,showinfo=checksum=0`)
      .outputOptions([
        // Absolute pts (not shifted to 0) so a resumed decoder numbers frames like the first one.
        '-copyts',
        '-fps_mode', 'passthrough',
        '-pix_fmt', 'rgb24',
        // Write each frame out whole at once: otherwise its tail waits in the 32 KiB output buffer for the next frame.
        '-flush_packets', '1',
        '-loglevel', 'level+info',
        '-nostats',
        '-filter_threads', '1',
      ])
      .format('rawvideo');

    this.cmd.on('stderr', (line: string) => this.onStderr(line));
    this.exitPromise = new Promise<void>((resolve) => {
      this.cmd.on('end', () => this.onExit(0, null, resolve));
      this.cmd.on('error', (err: Error) => {
        const m = /exited with code (\d+)/.exec(err.message);
        const sig = /killed with signal (\w+)/.exec(err.message);
        this.onExit(m ? Number(m[1]) : null, sig ? sig[1]! : null, resolve);
      });
    });
    // Input errors (EPIPE after the child died) are reported through the exit, not thrown.
    this.input.on('error', () => {});
    const out = this.cmd.pipe() as PassThrough;
    this.framesDone = this.readFrames(out);
  }

  get isExited(): boolean {
    return this.exitedFlag;
  }

  /** Next frame index this decoder will assign, and what a successor needs to continue. */
  continuation(): ContinueFrom {
    return { lastIndex: this.nextIndex - 1, lastPts: this.lastPts, frameDur: this.frameDur };
  }

  /** Writes chunk bytes; resolves when the input has room again (backpressure). */
  async write(bytes: Buffer): Promise<void> {
    if (this.exitedFlag) return;
    if (!this.input.write(bytes)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.input.off('drain', done);
          resolve();
        };
        this.input.on('drain', done);
        void this.exitPromise.then(done);
      });
    }
  }

  /** Ends the input; ffmpeg flushes its last frames and exits. Idempotent. */
  async close(): Promise<void> {
    if (!this.input.writableEnded) this.input.end();
    await this.exitPromise;
  }

  /** Stops the child at once. Idempotent. */
  kill(): Promise<void> {
    if (!this.exitedFlag) {
      try {
        this.cmd.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    return this.exitPromise;
  }

  private onStderr(line: string): void {
    if (line.includes('pts_time:')) {
      const m = INFO_RE.exec(line);
      if (m) {
        this.infos.push({ pts: Number(m[1]), pos: Number(m[2]), isKey: m[3] === '1' });
        const w = this.infoWaiter;
        this.infoWaiter = undefined;
        if (w) w();
        return;
      }
    }
    if (this.lastLines.length >= 8) this.lastLines.shift();
    this.lastLines.push(line);
    if (!line.includes('[error]') && !line.includes('[fatal]')) return;
    // A decoder started mid-stream (resume, restart) complains until its first keyframe: expected.
    if (this.emitted === 0 && this.opts.continueFrom) return;
    this.opts.hooks.decodeError(line);
  }

  private onExit(code: number | null, signal: string | null, resolve: () => void): void {
    if (this.exitedFlag) return;
    this.exitedFlag = true;
    const w = this.infoWaiter;
    this.infoWaiter = undefined;
    if (w) w();
    this.opts.hooks.exited(code, signal, this.lastLines.join('\n'));
    resolve();
  }

  private async nextInfo(): Promise<FrameInfo | undefined> {
    while (this.infos.length === 0) {
      if (this.exitedFlag) return undefined;
      await new Promise<void>((resolve) => (this.infoWaiter = resolve));
    }
    return this.infos.shift();
  }

  private async readFrames(out: PassThrough): Promise<void> {
    const { width, height } = this.opts;
    const frameBytes = width * height * 3;
    const pool = poolFor(frameBytes);
    let buf = pool.take();
    let fill = 0;
    try {
      for await (const chunk of out as AsyncIterable<Buffer>) {
        let off = 0;
        while (off < chunk.length) {
          const n = Math.min(frameBytes - fill, chunk.length - off);
          chunk.copy(buf, fill, off, off + n);
          fill += n;
          off += n;
          if (fill === frameBytes) {
            const info = await this.nextInfo();
            if (!info) return;
            if (await this.onFrame(buf, info)) buf = pool.take();
            fill = 0;
          }
        }
      }
    } catch {
      // The child died mid-read; the exit hook reports it.
    }
  }

  /** Numbers and emits one frame. Returns true when the buffer was handed on. */
  private async onFrame(data: Buffer, info: FrameInfo): Promise<boolean> {
    const hooks = this.opts.hooks;
    const cf = this.opts.continueFrom;
    let index: number;
    if (!Number.isNaN(this.lastPts) && info.pts <= this.lastPts + PTS_EPS) {
      return false; // already emitted by a previous decoder of this session
    }
    if (cf?.keyPts !== undefined && this.emitted === 0 && Number.isNaN(this.lastPts)) {
      if (info.pts < cf.keyPts - PTS_EPS) return false; // before the checkpoint's keyframe
      index = cf.keyIndex!;
    } else if (!Number.isNaN(this.lastPts) && this.emitted === 0 && this.frameDur > 0) {
      // First frame after a decoder restart: number it by elapsed time, report the frames lost between.
      index = this.nextIndex - 1 + Math.max(1, Math.round((info.pts - this.lastPts) / this.frameDur));
      if (index > this.nextIndex) hooks.gap(this.nextIndex, index - 1);
    } else {
      index = this.nextIndex;
    }
    if (!Number.isNaN(this.lastPts) && info.pts > this.lastPts) {
      const d = info.pts - this.lastPts;
      this.frameDur = Number.isNaN(this.frameDur) ? d : Math.min(this.frameDur, d);
    }
    this.nextIndex = index + 1;
    this.lastPts = info.pts;
    this.emitted++;
    if (Number.isNaN(this.basePts)) this.basePts = info.pts;
    hooks.decoded(index, info.pts, info.pos, info.isKey);
    if (cf?.skipBelow !== undefined && index < cf.skipBelow) {
      hooks.skipped(1);
      return false;
    }
    const ptsMs = Math.round((info.pts - this.basePts) * 1000);
    const captureTs = this.opts.epochMs + ptsMs;
    const frame: Frame = {
      stream: this.opts.stream,
      session: this.opts.session,
      index,
      ptsMs,
      captureTs,
      deadlineTs: captureTs + this.opts.budgetMs,
      keyframe: info.isKey,
      data,
      traceparent: this.opts.traceparent,
      decodedAt: performance.now(),
      owner: this.opts.owner,
    };
    await hooks.emit(frame);
    return true;
  }
}
