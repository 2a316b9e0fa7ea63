/**
 * One ffmpeg child per stream session, fed whole access units (Annex B) on stdin and writing raw
 * RGB frames at the model's input size on stdout. The frames' numbers, times and keyframe flags
 * come from our own demuxer (src/decode/mpegts.ts), not from ffmpeg.
 *
 * Which input each output frame came from is not guessed: ffmpeg says. Its raw H.264/H.265
 * parser records where in the input byte stream each access unit began, the decoder carries that
 * position on the picture through reordering, and the `showinfo` filter (the last step before
 * the output) prints it on stderr, one line per frame written. The k-th line is the k-th frame on
 * stdout; we know the byte position at which we wrote each access unit, so the match is exact,
 * with B-frames, and when the decoder drops or conceals frames. A frame the decoder never puts
 * out is noticed as soon as a later picture is (presentation order) and reported `skipped`.
 *
 * The argument set is the measured low-delay one: fed this way a frame leaves ffmpeg ~2–5 ms after
 * its last byte went in, plus the stream's reorder depth with B-frames (the decoder must see the
 * later reference frames first).
 *
 * The child is spawned directly (no wrapper library: no capability probes before it starts) and
 * supervised: its exit is noticed and reported with the frames it still held, `close()` ends
 * stdin and waits for the last frames, `kill()` never leaves it running.
 */
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { Readable, Writable } from 'node:stream';
import { poolFor, type BufferPool } from '../../core/pool.js';
import { FfmpegProcess, type FfmpegExit } from '../../core/ffmpeg-process.js';
import { accessUnitDelimiter, leadingDelimiterBytes, type AccessUnit, type VideoCodec } from '../mpegts.js';
import { log } from '../../core/log.js';
import type { Decoder, DecoderBackend, DecoderExit, DecoderHooks, HeldFrame } from '../backend.js';

export type { DecoderHooks, HeldFrame } from '../backend.js';

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
  '-hide_banner',
  // stdin is the video, not a console.
  '-nostdin',
  // No frame reordering delay when the stream has no B-frames. With them the decoder takes its
  // reorder depth from the SPS (num_reorder_frames, which x264 and other encoders write) all the
  // same: measured identical output and latency with and without the flag on x264's defaults.
  '-flags', 'low_delay',
  // The first frame would wait for ~5 s of probing otherwise; the demuxer is forced below.
  '-probesize', '32',
  '-analyzeduration', '0',
  // Raw Annex B: every access unit arrives whole and is ended by the next delimiter we write.
  '-f', codec,
  // Frame threading holds threads−1 frames; one thread per stream, many streams share the cores.
  '-threads', '1',
  // Untrusted bytes: no protocol but the pipe (a crafted stream cannot make ffmpeg open files or URLs).
  '-protocol_whitelist', 'pipe',
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
  // showinfo's lines are info level; `level` marks errors as [error].
  '-loglevel', 'level+info',
  '-nostats',
  '-an', '-sn', '-dn',
  '-f', 'rawvideo',
  'pipe:1',
];

/** stderr lines kept for the exit report. */
const STDERR_LINES = 8;
const SHOWINFO = '] [info] n:';
const POS = ' pos:';
const EMPTY = Buffer.alloc(0);

const IDLE_HOOKS: DecoderHooks = { frame: () => {}, skipped: () => {}, error: () => {}, exited: () => {} };

export function decoderKey(codec: VideoCodec, width: number, height: number): string {
  return `${codec}:${width}x${height}`;
}

/** Frames fed and not yet out, oldest first: a small ring (a decoder holds a few, more only while its stdin is backed up). */
class Held {
  private pos = new Float64Array(16);
  private idx = new Float64Array(16);
  private handles = new Float64Array(16);
  private pts = new Float64Array(16);
  private tags = new Uint8Array(16);
  private keys = new Uint8Array(16);
  private fedAt = new Float64Array(16);
  private head = 0;
  length = 0;

  push(pos: number, index: number, handle: number, pts: number, key: boolean, tag: number, fedAt: number): void {
    if (this.length === this.idx.length) this.grow();
    const i = (this.head + this.length) % this.idx.length;
    this.pos[i] = pos;
    this.fedAt[i] = fedAt;
    this.idx[i] = index;
    this.handles[i] = handle;
    this.pts[i] = pts;
    this.keys[i] = key ? 1 : 0;
    this.tags[i] = tag;
    this.length++;
  }

  /**
   * Position (0-based from the oldest) of the frame whose delimiter was written at byte `pos`,
   * give or take `slack` bytes into it (ffmpeg's H.265 parser counts a 4-byte start code's first
   * zero to the frame before); -1 when none.
   */
  find(pos: number, slack: number): number {
    const n = this.idx.length;
    for (let k = 0; k < this.length; k++) {
      const d = pos - this.pos[(this.head + k) % n]!;
      if (d >= 0 && d <= slack) return k;
    }
    return -1;
  }

  /** The number of a frame fed before it was known (searched from the newest: it is one of the last few). */
  number(handle: number, index: number): boolean {
    const n = this.idx.length;
    for (let k = this.length - 1; k >= 0; k--) {
      const at = (this.head + k) % n;
      if (this.handles[at] === handle) {
        this.idx[at] = index;
        return true;
      }
    }
    return false;
  }

  ptsAt(k: number): number {
    return this.pts[(this.head + k) % this.idx.length]!;
  }

  /** Removes entry k into `out`. */
  take(k: number, out: HeldFrame & { pts: number; key: boolean; fedAt: number }): void {
    const n = this.idx.length;
    const at = (this.head + k) % n;
    out.fedAt = this.fedAt[at]!;
    out.index = this.idx[at]!;
    out.handle = this.handles[at]!;
    out.pts = this.pts[at]!;
    out.key = this.keys[at] === 1;
    out.tag = this.tags[at]!;
    // Close the hole by shifting the older entries up one (k is small: at most the reorder depth).
    for (let j = k; j > 0; j--) {
      const to = (this.head + j) % n;
      const from = (this.head + j - 1) % n;
      this.pos[to] = this.pos[from]!;
      this.idx[to] = this.idx[from]!;
      this.handles[to] = this.handles[from]!;
      this.fedAt[to] = this.fedAt[from]!;
      this.pts[to] = this.pts[from]!;
      this.keys[to] = this.keys[from]!;
      this.tags[to] = this.tags[from]!;
    }
    this.head = (this.head + 1) % n;
    this.length--;
  }

  oldestPts(): number {
    if (!this.length) return Number.NaN;
    let min = Infinity;
    for (let k = 0; k < this.length; k++) min = Math.min(min, this.ptsAt(k));
    return min;
  }

  oldestFedAt(): number {
    return this.length ? this.fedAt[this.head]! : Number.NaN;
  }

  drain(): HeldFrame[] {
    const out: HeldFrame[] = [];
    for (let k = 0; k < this.length; k++) {
      const at = (this.head + k) % this.idx.length;
      out.push({ index: this.idx[at]!, handle: this.handles[at]!, tag: this.tags[at]! });
    }
    this.length = 0;
    return out;
  }

  private grow(): void {
    const n = this.idx.length;
    const copy = <T extends Float64Array | Uint8Array>(a: T, make: (len: number) => T): T => {
      const b = make(n * 2);
      for (let k = 0; k < this.length; k++) b[k] = a[(this.head + k) % n]!;
      return b;
    };
    const f64 = (len: number) => new Float64Array(len);
    const u8 = (len: number) => new Uint8Array(len);
    this.pos = copy(this.pos, f64);
    this.idx = copy(this.idx, f64);
    this.handles = copy(this.handles, f64);
    this.pts = copy(this.pts, f64);
    this.fedAt = copy(this.fedAt, f64);
    this.keys = copy(this.keys, u8);
    this.tags = copy(this.tags, u8);
    this.head = 0;
  }
}

/** Byte positions from showinfo lines, in output order, waiting for their frame on stdout. */
class PositionQueue {
  private buf = new Float64Array(16);
  private head = 0;
  length = 0;

  push(pos: number): void {
    if (this.length === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      for (let k = 0; k < this.length; k++) next[k] = this.buf[(this.head + k) % this.buf.length]!;
      this.buf = next;
      this.head = 0;
    }
    this.buf[(this.head + this.length) % this.buf.length] = pos;
    this.length++;
  }

  shift(): number {
    const v = this.buf[this.head]!;
    this.head = (this.head + 1) % this.buf.length;
    this.length--;
    return v;
  }
}

export class FfmpegDecoder implements Decoder {
  private readonly input: Writable;
  private readonly out: Readable;
  private readonly held = new Held();
  private readonly positions = new PositionQueue();
  private readonly delimiter: Buffer;
  private readonly pool: BufferPool;
  private readonly frameBytes: number;
  private readonly proc: FfmpegProcess;
  private readonly exitPromise: Promise<void>;
  private exitedFlag = false;
  private closingFlag = false;
  private fedAny = false;
  /** Bytes written to stdin so far: the position of the next access unit. */
  private written = 0;
  private buf: Buffer;
  private fill = 0;
  private framesDoneResolve!: () => void;
  /** Resolves once every frame ffmpeg wrote has been handed on (or the output broke off). */
  readonly framesDone: Promise<void>;
  /** Frames this decoder has put out. */
  emitted = 0;
  /** Frames it put out that match nothing fed (never expected; counted, pixels discarded). */
  unmatched = 0;
  /** performance.now() of the last frame out (or of the start). */
  lastOutputAt = performance.now();
  /** performance.now() of the last frame fed. */
  lastFedAt = 0;
  /**
   * Frames the stream's reordering keeps inside the decoder when nothing more is fed (B-frames:
   * the reorder depth). Told by the session; the watchdog does not count them as a stall.
   */
  reorderDepth = 0;
  /** CPU time per frame put out, ms (NaN until measured): set by the watchdog, read by load shedding. */
  cpuMsPerFrame = Number.NaN;
  /** Why the watchdog killed it, if it did (reported with the exit). */
  killedFor: 'stalled' | 'cpu' | undefined;
  private readonly taken = { index: 0, handle: 0, pts: 0, key: false, tag: 0, fedAt: 0 };
  private hooks: DecoderHooks;
  private waiting = false;
  /** A whole frame is in `buf` but its showinfo line has not been read yet. */
  private awaitingPosition = false;
  private resumeChunk: Buffer | undefined;
  private resumeAt = 0;
  private outEnded = false;

  constructor(private readonly opts: DecoderOptions) {
    this.hooks = opts.hooks ?? IDLE_HOOKS;
    this.frameBytes = opts.width * opts.height * 3;
    this.pool = poolFor(this.frameBytes);
    this.buf = this.pool.take();
    this.delimiter = accessUnitDelimiter(opts.codec);
    const args = [...INPUT_ARGS(opts.codec)];
    if (opts.limits) args.push('-max_pixels', String(opts.limits.maxPixels));
    // showinfo last, so each line stands for exactly one frame written to stdout.
    args.push('-i', 'pipe:0', '-vf', `scale=${opts.width}:${opts.height}:flags=bilinear,format=rgb24,showinfo`, ...OUTPUT_ARGS);
    this.proc = FfmpegProcess.spawn(opts.ffmpegPath ?? 'ffmpeg', args, { stderrLines: STDERR_LINES, onStderr: (line) => this.onStderr(line), onStderrEnd: () => this.onStderrEnd() });
    const memoryBytes = opts.limits?.memoryBytes ?? 0;
    if (memoryBytes > 0) this.limitMemory(memoryBytes);
    this.framesDone = new Promise<void>((r) => (this.framesDoneResolve = r));
    this.exitPromise = this.proc.exited.then((exit) => this.onExit(exit));
    this.input = this.proc.stdin;
    this.out = this.proc.stdout;
    this.out.on('data', (chunk: Buffer) => this.consume(chunk, 0));
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

  /** pts (s) of the earliest frame fed and not yet out; NaN when none. */
  get oldestHeldPts(): number {
    return this.held.oldestPts();
  }

  /**
   * Writes one access unit; `handle` and `tag` come back with its frame, and `index` (-1 when
   * the frame's number is not known yet: `number` gives it later). Returns false when stdin is
   * full: wait for `drained()` before the next (replay backpressure).
   */
  feed(au: AccessUnit, handle: number, index: number, tag: number): boolean {
    if (this.exitedFlag || this.closingFlag) return true;
    // Each frame is followed at once by the next access unit delimiter, so ffmpeg's parser sees
    // the frame end now rather than when the next frame arrives. The frame's own leading
    // delimiter (already written after the previous one) is left out, and ffmpeg's parser puts
    // the frame's start at that delimiter.
    const skip = this.fedAny ? leadingDelimiterBytes(au.data, this.opts.codec) : 0;
    const pos = this.fedAny ? this.written - this.delimiter.length : 0;
    this.fedAny = true;
    this.lastFedAt = performance.now();
    this.held.push(pos, index, handle, au.pts, au.key, tag, this.lastFedAt);
    this.written += au.data.length - skip + this.delimiter.length;
    this.input.write(skip ? au.data.subarray(skip) : au.data);
    return this.input.write(this.delimiter);
  }

  /** A frame fed with index -1 has its number now. */
  number(handle: number, index: number): boolean {
    return this.held.number(handle, index);
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

  /** Cuts stdout into frames; a frame the pipeline cannot take yet pauses reading until it can. */
  private consume(chunk: Buffer, from: number): void {
    let off = from;
    while (off < chunk.length || this.awaitingPosition) {
      if (!this.awaitingPosition) {
        const n = Math.min(this.frameBytes - this.fill, chunk.length - off);
        chunk.copy(this.buf, this.fill, off, off + n);
        this.fill += n;
        off += n;
        if (this.fill < this.frameBytes) break;
        this.fill = 0;
      }
      if (this.positions.length === 0) {
        // The frame's showinfo line is still on its way (another pipe): wait for it.
        this.awaitingPosition = true;
        this.resumeChunk = chunk;
        this.resumeAt = off;
        this.out.pause();
        return;
      }
      this.awaitingPosition = false;
      const wait = this.emit(this.positions.shift());
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
    this.resumeChunk = undefined;
    if (this.out.isPaused()) this.out.resume();
    if (this.outEnded) this.framesDoneResolve();
  }

  /** The frame in `buf` came from the access unit written at byte `pos`. */
  private emit(pos: number): void | Promise<void> {
    let k = this.held.find(pos, this.delimiter.length - 1);
    if (k < 0) {
      this.unmatched++;
      this.pool.give(this.buf);
      this.buf = this.pool.take();
      log.once('warn', 'decoder-unmatched', 'a decoder put out a frame that matches no access unit fed; its pixels are discarded', { pos });
      return;
    }
    // Output is in presentation order: a frame fed before it with an earlier pts will never come.
    const pts = this.held.ptsAt(k);
    for (let j = 0; j < this.held.length; ) {
      if (j === k || !(this.held.ptsAt(j) < pts)) {
        j++;
        continue;
      }
      this.held.take(j, this.taken);
      if (j < k) k--;
      this.hooks.skipped(this.taken.index, this.taken.handle, this.taken.tag);
    }
    this.held.take(k, this.taken);
    const data = this.buf;
    this.buf = this.pool.take();
    this.emitted++;
    this.lastOutputAt = performance.now();
    const t = this.taken;
    return this.hooks.frame(data, t.index, t.handle, t.pts, t.key, t.tag, t.fedAt);
  }

  private onOutEnd(): void {
    this.outEnded = true;
    if (!this.waiting && !this.awaitingPosition) this.framesDoneResolve();
  }

  private onStderr(line: string): boolean {
    const at = line.indexOf(SHOWINFO);
    if (at >= 0) {
      const p = line.indexOf(POS, at);
      this.positions.push(p >= 0 ? Number.parseInt(line.slice(p + POS.length, p + POS.length + 24), 10) : -1);
      if (this.awaitingPosition && !this.waiting) this.consume(this.resumeChunk ?? EMPTY, this.resumeAt);
      return false;
    }
    if (line.includes('Parsed_showinfo')) return false;
    // After the input ends, the delimiter written after the last frame is an empty access unit.
    if (this.closingFlag) return true;
    if (line.includes('[error]') || line.includes('[fatal]')) this.hooks.error(line);
    return true;
  }

  /** No more showinfo lines: a frame still waiting for its line never gets one (a child killed mid-frame). */
  private onStderrEnd(): void {
    if (!this.awaitingPosition) return;
    this.awaitingPosition = false;
    this.unmatched++;
    if (!this.waiting) this.consume(this.resumeChunk ?? EMPTY, this.resumeAt);
  }

  private async onExit(exit: FfmpegExit): Promise<void> {
    this.exitedFlag = true;
    // Frames still in stdout's pipe are handed on first; then what never came out is reported.
    await this.framesDone;
    this.pool.give(this.buf);
    // A clean end that still holds frames fed: ffmpeg did not put them out, or put them out without
    // their showinfo line (rare; seen at a session's end in replay). Said once, with what the
    // matching saw, so a recurrence says which.
    if (exit.reason === 'ended' && this.held.length > 0) {
      log.once('warn', 'decoder-ended-holding', 'a decoder ended cleanly without putting out every frame fed; those frames are reported decoder-reset', {
        held: this.held.length,
        emitted: this.emitted,
        unmatched: this.unmatched,
        positionsWaiting: this.positions.length,
        partialFrameBytes: this.fill,
        stderr: exit.stderr.slice(-3).join(' | '),
      });
    }
    this.hooks.exited(this.describe(exit), this.held.drain());
  }

  /** The exit in the backend's terms: a code and one line (the watchdog's reason, exit status, last stderr). */
  private describe(exit: FfmpegExit): DecoderExit {
    const k = this.killedFor;
    const code = k === 'stalled' ? 'DECODER_STALLED' : k === 'cpu' ? 'DECODER_LIMIT_EXCEEDED' : exit.reason === 'spawn-failed' ? 'DECODER_SPAWN_FAILED' : 'DECODER_FAILED';
    const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
    const detail = `ffmpeg ${k ? `killed by the watchdog (${k})` : exit.reason} (${how}): ${exit.stderr.slice(-3).join(' | ')}`;
    return { reason: exit.reason, code, detail, cause: exit.error ?? undefined };
  }
}

/** Spares are topped up once no session has taken a decoder for this long, ms (DecoderSpares.refillLater). */
export const SPARE_REFILL_MS = 500;

/**
 * The ffmpeg backend: a started decoder waiting for each (codec, size) in use, so a new session's first frame does
 * not wait for ffmpeg to start: ~120 ms here (its shared libraries), ~600 ms for the first one of
 * a process (loading its libraries cold). An idle spare only blocks on its stdin.
 */
export class DecoderSpares implements DecoderBackend {
  private readonly spares = new Map<string, FfmpegDecoder[]>();
  /** Per (codec, size): the refill due once takes have paused (SPARE_REFILL_MS). */
  private readonly refills = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly base: { ffmpegPath?: string; inputBufferBytes?: number; limits?: DecoderLimits }, private readonly perKey = 2) {}

  /**
   * A running decoder for these parameters with `hooks` attached: a spare, or one started now.
   * The spares are topped up once takes pause, not behind each take.
   */
  take(codec: VideoCodec, width: number, height: number, hooks: DecoderHooks): FfmpegDecoder {
    const list = this.list(codec, width, height);
    let dec: FfmpegDecoder | undefined;
    while (!dec && list.length) {
      const spare = list.shift()!;
      if (!spare.isExited) dec = spare.attach(hooks);
    }
    dec ??= new FfmpegDecoder({ ...this.base, codec, width, height, hooks });
    this.refillLater(codec, width, height);
    return dec;
  }

  /** Starts spares for these parameters up to the number kept. */
  warm(codec: VideoCodec, width: number, height: number): void {
    if (this.closed) return;
    const list = this.list(codec, width, height);
    for (let i = list.length - 1; i >= 0; i--) if (list[i]!.isExited) list.splice(i, 1);
    while (list.length < this.perKey) list.push(new FfmpegDecoder({ ...this.base, codec, width, height }));
  }

  /**
   * Sessions come in bursts (cameras joining together, every stream after a restart, a rebalance).
   * Spares started behind each take compete with the new sessions' first frames for the cores
   * (a spawn blocks the event loop, and each ffmpeg spends ~60 ms of CPU loading), so the refill
   * waits until no take has come for SPARE_REFILL_MS.
   */
  private refillLater(codec: VideoCodec, width: number, height: number): void {
    if (this.closed) return;
    const key = decoderKey(codec, width, height);
    clearTimeout(this.refills.get(key));
    const timer = setTimeout(() => {
      this.refills.delete(key);
      this.warm(codec, width, height);
    }, SPARE_REFILL_MS);
    timer.unref();
    this.refills.set(key, timer);
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
    for (const t of this.refills.values()) clearTimeout(t);
    this.refills.clear();
    const all = [...this.spares.values()].flat();
    this.spares.clear();
    await Promise.all(all.map((d) => d.kill()));
  }
}
