/**
 * One ffmpeg child per stream session, fed whole access units (Annex B) on stdin and writing raw
 * RGB frames at the model's input size on stdout. The frames' numbers, times and keyframe flags
 * come from our own demuxer (src/decode/mpegts.ts), not from ffmpeg: each frame out is matched to
 * the access unit it was decoded from (the earliest pts still inside the decoder, which is decode
 * order without B-frames and presentation order with them).
 *
 * The argument set is the measured low-delay one: fed this way a frame leaves ffmpeg ~2–5 ms after
 * its last byte went in (ffmpeg's own MPEG-TS path holds 2–3 frames, 80–120 ms at 25 fps).
 *
 * The child is supervised: its exit is noticed and reported with the frames it still held,
 * `close()` ends stdin and waits for the last frames, `kill()` never leaves it running.
 */
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { performance } from 'node:perf_hooks';
import ffmpeg from 'fluent-ffmpeg';
import { poolFor, type BufferPool } from '../../core/pool.js';
import { FfmpegProcess, type FfmpegExit } from '../../core/ffmpeg-process.js';
import { accessUnitDelimiter, leadingDelimiterBytes, type AccessUnit, type VideoCodec } from '../mpegts.js';
import { log } from '../../core/log.js';

export interface DecoderHooks {
  /**
   * A decoded frame (pixels from the pool; the receiver owns them) with what it was fed with. May
   * return a promise (a full queue in replay mode): stdout is not read until it settles.
   */
  frame(data: Buffer, index: number, pts: number, key: boolean, tag: number, fedAt: number): void | Promise<void>;
  /** An error-level line from ffmpeg: the bytes most recently written were probably rejected. */
  error(line: string): void;
  /** The child exited (reason `ended` after a clean close); `held` frames were fed but never came out. */
  exited(exit: FfmpegExit, held: { index: number; tag: number }[]): void;
}

export interface DecoderOptions {
  codec: VideoCodec;
  width: number;
  height: number;
  /** Given now, or later with `attach` (a spare started ahead of need). */
  hooks?: DecoderHooks;
  ffmpegPath?: string;
  /** Bytes of stdin buffered before `feed` reports backpressure. */
  inputBufferBytes?: number;
  /** Hostile input: largest picture (width × height) ffmpeg accepts, and its address-space limit. */
  limits?: DecoderLimits;
}

export interface DecoderLimits {
  maxPixels: number;
  /** RLIMIT_AS of the child (prlimit), bytes; 0 = none. */
  memoryBytes: number;
}

/** Input side, each flag measured (2 cores, ffmpeg 5.1, 25 fps paced feed). */
const INPUT_ARGS = (codec: VideoCodec) => [
  // No frame reordering delay when the stream has no B-frames (ffmpeg raises it itself when it sees them).
  '-flags', 'low_delay',
  // The first frame would wait for ~5 s of probing otherwise; the demuxer is forced below.
  '-probesize', '32',
  '-analyzeduration', '0',
  // Raw Annex B: every access unit arrives whole and is ended by the next delimiter we write.
  '-f', codec,
  // Frame threading holds threads−1 frames; one thread per stream, many streams share the cores.
  '-threads', '1',
];

const OUTPUT_ARGS = [
  // Keep every decoded frame with its own timestamp (no duplication or dropping to a frame rate).
  '-fps_mode', 'passthrough',
  '-pix_fmt', 'rgb24',
  // The rawvideo encoder frame-threads in ffmpeg 5.1 (one frame, ~40 ms, held): one thread.
  '-threads', '1',
  '-filter_threads', '1',
  // Each frame is written out whole at once, not left in the 32 KiB output buffer.
  '-flush_packets', '1',
  '-loglevel', 'level+error',
  '-nostats',
  '-f', 'rawvideo',
];

/** stderr lines kept for the exit report. */
const STDERR_LINES = 8;

const IDLE_HOOKS: DecoderHooks = { frame: () => {}, error: () => {}, exited: () => {} };

export function decoderKey(codec: VideoCodec, width: number, height: number): string {
  return `${codec}:${width}x${height}`;
}

/** Frames fed and not yet out: a small ring (the low-delay decoder holds at most a few). */
class Held {
  private idx = new Float64Array(16);
  private pts = new Float64Array(16);
  private tags = new Uint8Array(16);
  private keys = new Uint8Array(16);
  private fedAt = new Float64Array(16);
  private head = 0;
  length = 0;

  push(index: number, pts: number, key: boolean, tag: number, fedAt: number): void {
    if (this.length === this.idx.length) this.grow();
    const i = (this.head + this.length) % this.idx.length;
    this.fedAt[i] = fedAt;
    this.idx[i] = index;
    this.pts[i] = pts;
    this.keys[i] = key ? 1 : 0;
    this.tags[i] = tag;
    this.length++;
  }

  /** Position (0-based from the oldest) of the earliest pts. */
  earliest(): number {
    let best = 0;
    const n = this.idx.length;
    for (let k = 1; k < this.length; k++) if (this.pts[(this.head + k) % n]! < this.pts[(this.head + best) % n]!) best = k;
    return best;
  }

  /** Removes entry k into `out`. */
  take(k: number, out: { index: number; pts: number; key: boolean; tag: number; fedAt: number }): void {
    const n = this.idx.length;
    const at = (this.head + k) % n;
    out.fedAt = this.fedAt[at]!;
    out.index = this.idx[at]!;
    out.pts = this.pts[at]!;
    out.key = this.keys[at] === 1;
    out.tag = this.tags[at]!;
    // Close the hole by shifting the older entries up one (k is almost always 0).
    for (let j = k; j > 0; j--) {
      const to = (this.head + j) % n;
      const from = (this.head + j - 1) % n;
      this.idx[to] = this.idx[from]!;
      this.fedAt[to] = this.fedAt[from]!;
      this.pts[to] = this.pts[from]!;
      this.keys[to] = this.keys[from]!;
      this.tags[to] = this.tags[from]!;
    }
    this.head = (this.head + 1) % n;
    this.length--;
  }

  oldestPts(): number {
    return this.length ? this.pts[this.head]! : Number.NaN;
  }

  oldestFedAt(): number {
    return this.length ? this.fedAt[this.head]! : Number.NaN;
  }

  drain(): { index: number; tag: number }[] {
    const out: { index: number; tag: number }[] = [];
    for (let k = 0; k < this.length; k++) {
      const at = (this.head + k) % this.idx.length;
      out.push({ index: this.idx[at]!, tag: this.tags[at]! });
    }
    this.length = 0;
    return out;
  }

  private grow(): void {
    const n = this.idx.length;
    const idx = new Float64Array(n * 2);
    const pts = new Float64Array(n * 2);
    const keys = new Uint8Array(n * 2);
    const tags = new Uint8Array(n * 2);
    const fedAt = new Float64Array(n * 2);
    for (let k = 0; k < this.length; k++) {
      const at = (this.head + k) % n;
      fedAt[k] = this.fedAt[at]!;
      idx[k] = this.idx[at]!;
      pts[k] = this.pts[at]!;
      keys[k] = this.keys[at]!;
      tags[k] = this.tags[at]!;
    }
    this.idx = idx;
    this.pts = pts;
    this.keys = keys;
    this.tags = tags;
    this.fedAt = fedAt;
    this.head = 0;
  }
}

export class FfmpegDecoder {
  private readonly input: PassThrough;
  private readonly cmd: ffmpeg.FfmpegCommand;
  private readonly out: PassThrough;
  private readonly held = new Held();
  private readonly delimiter: Buffer;
  private readonly pool: BufferPool;
  private readonly frameBytes: number;
  private readonly proc: FfmpegProcess;
  private readonly exitPromise: Promise<void>;
  private exitedFlag = false;
  private closingFlag = false;
  private fedAny = false;
  private buf: Buffer;
  private fill = 0;
  private framesDoneResolve!: () => void;
  /** Resolves once every frame ffmpeg wrote has been handed on (or the output broke off). */
  readonly framesDone: Promise<void>;
  /** Frames this decoder has put out. */
  emitted = 0;
  /** performance.now() of the last frame out (or of the start). */
  lastOutputAt = performance.now();
  /** Why the watchdog killed it, if it did (reported with the exit). */
  killedFor: 'stalled' | 'cpu' | undefined;
  private readonly taken = { index: 0, pts: 0, key: false, tag: 0, fedAt: 0 };
  private hooks: DecoderHooks;

  constructor(private readonly opts: DecoderOptions) {
    this.hooks = opts.hooks ?? IDLE_HOOKS;
    this.frameBytes = opts.width * opts.height * 3;
    this.pool = poolFor(this.frameBytes);
    this.buf = this.pool.take();
    this.delimiter = accessUnitDelimiter(opts.codec);
    this.input = new PassThrough({ highWaterMark: opts.inputBufferBytes ?? 1 << 20 });
    if (opts.ffmpegPath) ffmpeg.setFfmpegPath(opts.ffmpegPath);
    // fluent-ffmpeg keeps this many stderr lines for its error message (0 would mean all of them).
    // Untrusted bytes: no protocol but the pipe (a crafted stream cannot make ffmpeg open files or
    // URLs), the demuxer forced (INPUT_ARGS), and no picture larger than the cap.
    const hardening = ['-protocol_whitelist', 'pipe'];
    if (opts.limits) hardening.push('-max_pixels', String(opts.limits.maxPixels));
    this.cmd = ffmpeg({ stdoutLines: STDERR_LINES })
      .input(this.input)
      .inputOptions([...INPUT_ARGS(opts.codec), ...hardening])
      .noAudio()
      .outputOptions(['-vf', `scale=${opts.width}:${opts.height}:flags=bilinear`, ...OUTPUT_ARGS]);
    this.proc = new FfmpegProcess(this.cmd, { stderrLines: STDERR_LINES, onStderr: (line) => this.onStderr(line) });
    // After the supervisor's own 'start' listener, so the pid is known.
    const memoryBytes = opts.limits?.memoryBytes ?? 0;
    if (memoryBytes > 0) this.cmd.on('start', () => this.limitMemory(memoryBytes));
    this.framesDone = new Promise<void>((r) => (this.framesDoneResolve = r));
    this.exitPromise = this.proc.exited.then((exit) => this.onExit(exit));
    // Input errors (EPIPE after the child died) are reported through the exit, not thrown.
    this.input.on('error', () => {});
    this.out = this.cmd.pipe() as PassThrough;
    this.out.on('data', (chunk: Buffer) => this.onData(chunk));
    this.out.on('end', () => this.onOutEnd());
    this.out.on('close', () => this.onOutEnd());
    this.out.on('error', () => this.onOutEnd());
  }

  /** A spare's owner arrives. */
  attach(hooks: DecoderHooks): this {
    this.hooks = hooks;
    return this;
  }

  get isExited(): boolean {
    return this.exitedFlag;
  }

  /** Frames fed and not yet out. */
  get holding(): number {
    return this.held.length;
  }

  /** performance.now() when the oldest frame not yet out was fed; NaN when none. */
  get oldestHeldFedAt(): number {
    return this.held.oldestFedAt();
  }

  /** Waiting for the pipeline to take a frame (replay backpressure): silence then is not a stall. */
  get isBlocked(): boolean {
    return this.waiting;
  }

  /** The child's pid (undefined before it started or once it exited). */
  get pid(): number | undefined {
    if (this.exitedFlag) return undefined;
    return this.proc.pid;
  }

  /** pts (s) of the oldest frame fed and not yet out; NaN when none. */
  get oldestHeldPts(): number {
    return this.held.oldestPts();
  }

  /**
   * Writes one access unit (`tag` comes back with its frame). Returns false when stdin is full:
   * wait for `drained()` before the next (replay backpressure).
   */
  feed(au: AccessUnit, index: number, tag: number): boolean {
    if (this.exitedFlag || this.closingFlag) return true;
    this.held.push(index, au.pts, au.key, tag, performance.now());
    // Each frame is followed at once by the next access unit delimiter, so ffmpeg's parser sees
    // the frame end now rather than when the next frame arrives. The frame's own leading
    // delimiter (already written after the previous one) is left out.
    const skip = this.fedAny ? leadingDelimiterBytes(au.data, this.opts.codec) : 0;
    this.fedAny = true;
    this.input.write(skip ? au.data.subarray(skip) : au.data);
    return this.input.write(this.delimiter);
  }

  /** Resolves when stdin has room again, or the child is gone. */
  drained(): Promise<void> {
    if (this.exitedFlag || !this.input.writableNeedDrain) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.input.off('drain', done);
        resolve();
      };
      this.input.on('drain', done);
      void this.exitPromise.then(done);
    });
  }

  /** Ends the input; ffmpeg puts out its last frames and exits. Resolves when they are handed on. Idempotent. */
  async close(): Promise<void> {
    this.closingFlag = true;
    if (!this.input.writableEnded) this.input.end();
    // No deadline here: in replay mode the child's last frames wait for the pipeline to take
    // them, however long that is. Shutdown past its drain deadline calls kill().
    await this.exitPromise;
    await this.framesDone;
  }

  /** Stops the child at once (what it holds is reported held). Idempotent. */
  kill(): Promise<void> {
    this.closingFlag = true;
    void this.proc.kill();
    return this.exitPromise;
  }

  /**
   * The watchdog's kill: unlike `kill()`, the session is not closing, so the exit is a crash
   * (restart at the next keyframe, held frames `decoder-reset`); `killedFor` says why.
   */
  killAsCrash(reason: 'stalled' | 'cpu'): Promise<void> {
    this.killedFor = reason;
    void this.proc.kill();
    return this.exitPromise;
  }

  /** RLIMIT_AS on the running child (Node cannot setrlimit before exec; prlimit(1) can after). */
  private limitMemory(bytes: number): void {
    const pid = this.pid;
    if (pid === undefined) return;
    execFile('prlimit', ['--pid', String(pid), `--as=${bytes}:${bytes}`], (err) => {
      if (err && !this.exitedFlag) log.once('warn', 'decoder-prlimit', 'cannot set the decoders\' memory limit (prlimit)', { err: err.message });
    });
  }

  private onData(chunk: Buffer): void {
    this.consume(chunk, 0);
  }

  /** Cuts stdout into frames; a frame the pipeline cannot take yet pauses reading until it can. */
  private consume(chunk: Buffer, from: number): void {
    let off = from;
    while (off < chunk.length) {
      const n = Math.min(this.frameBytes - this.fill, chunk.length - off);
      chunk.copy(this.buf, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill < this.frameBytes) break;
      this.fill = 0;
      if (this.held.length === 0) continue; // more frames than were fed: nothing to name it by
      this.held.take(this.held.earliest(), this.taken);
      const data = this.buf;
      this.buf = this.pool.take();
      this.emitted++;
      this.lastOutputAt = performance.now();
      const t = this.taken;
      const wait = this.hooks.frame(data, t.index, t.pts, t.key, t.tag, t.fedAt);
      if (wait) {
        this.waiting = true;
        this.out.pause();
        const at = off;
        void wait.then(() => {
          this.waiting = false;
          this.consume(chunk, at);
        });
        return;
      }
    }
    if (this.out.isPaused()) this.out.resume();
    if (this.outEnded) this.framesDoneResolve();
  }

  private waiting = false;
  private outEnded = false;

  private onOutEnd(): void {
    this.outEnded = true;
    if (!this.waiting) this.framesDoneResolve();
  }

  private onStderr(line: string): void {
    // After the input ends, the delimiter written after the last frame is an empty access unit.
    if (this.closingFlag) return;
    if (line.includes('[error]') || line.includes('[fatal]')) this.hooks.error(line);
  }

  private async onExit(exit: FfmpegExit): Promise<void> {
    this.exitedFlag = true;
    // Frames still in stdout's pipe are handed on first; then what never came out is reported.
    await this.framesDone;
    this.pool.give(this.buf);
    this.hooks.exited(exit, this.held.drain());
  }
}

/**
 * A started decoder waiting for each (codec, size) in use, so a new session's first frame does
 * not wait for ffmpeg to start: ~120 ms here (its shared libraries), ~600 ms for the first one of
 * a process (fluent-ffmpeg's capability probes). An idle spare only blocks on its stdin.
 */
export class DecoderSpares {
  private readonly spares = new Map<string, FfmpegDecoder[]>();
  private closed = false;

  constructor(private readonly base: { ffmpegPath?: string; inputBufferBytes?: number; limits?: DecoderLimits }, private readonly perKey = 2) {}

  /** A running decoder for these parameters with `hooks` attached; a new spare starts behind it. */
  take(codec: VideoCodec, width: number, height: number, hooks: DecoderHooks): FfmpegDecoder {
    const list = this.list(codec, width, height);
    let dec: FfmpegDecoder | undefined;
    while (!dec && list.length) {
      const spare = list.shift()!;
      if (!spare.isExited) dec = spare.attach(hooks);
    }
    this.warm(codec, width, height);
    return dec ?? new FfmpegDecoder({ ...this.base, codec, width, height, hooks });
  }

  /** Starts spares for these parameters up to the number kept. */
  warm(codec: VideoCodec, width: number, height: number): void {
    if (this.closed) return;
    const list = this.list(codec, width, height);
    for (let i = list.length - 1; i >= 0; i--) if (list[i]!.isExited) list.splice(i, 1);
    while (list.length < this.perKey) list.push(new FfmpegDecoder({ ...this.base, codec, width, height }));
  }

  get count(): number {
    let n = 0;
    for (const l of this.spares.values()) n += l.length;
    return n;
  }

  private list(codec: VideoCodec, width: number, height: number): FfmpegDecoder[] {
    const key = decoderKey(codec, width, height);
    let l = this.spares.get(key);
    if (!l) this.spares.set(key, (l = []));
    return l;
  }

  /** Stops every spare. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.spares.values()].flat();
    this.spares.clear();
    await Promise.all(all.map((d) => d.kill()));
  }
}
