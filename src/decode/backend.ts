/**
 * The decoder backend: what a stream session needs from whatever turns access units into RGB
 * frames at the model's input size. ffmpeg children (decode/ffmpeg/) are the first backend; an
 * NVDEC one or an in-process one (node-av) implements the same two interfaces and registers a
 * factory in decode/backends.ts, with its own config fields (see docs/architecture.md, "Adding
 * a decoder backend").
 *
 * The session owns frame identity (numbering, shedding, sampling, accounting); a backend only
 * has to decode what it is fed, say exactly which fed frame each output is (the `handle` fed
 * with it), say which fed frames it will never put out, and report its end.
 */
import type { ErrorCode } from '../core/errors.js';
import type { AccessUnit, VideoCodec } from './mpegts.js';

/** The codes a decoder's unasked-for end is reported with. */
export type DecoderErrorCode = Extract<ErrorCode, 'DECODER_FAILED' | 'DECODER_SPAWN_FAILED' | 'DECODER_STALLED' | 'DECODER_LIMIT_EXCEEDED'>;

export interface DecoderHooks {
  /**
   * A decoded frame (pixels from the pool; the receiver owns them) with what it was fed with
   * (`index` as last given by `feed` or `number`: -1 while not yet numbered). May return a
   * promise (a full queue in replay mode): the backend puts out nothing more until it settles.
   */
  frame(data: Buffer, index: number, handle: number, pts: number, key: boolean, tag: number, fedAt: number): void | Promise<void>;
  /** A frame fed that the decoder will never put out (it dropped it: a later picture came out first). */
  skipped(index: number, handle: number, tag: number): void;
  /** An error reported by the decoder: the bytes most recently fed were probably rejected. */
  error(detail: string): void;
  /** The decoder ended (reason `ended` after a clean close); `held` frames were fed but never came out. */
  exited(exit: DecoderExit, held: HeldFrame[]): void;
}

export interface HeldFrame {
  index: number;
  handle: number;
  tag: number;
}

/** How a decoder ended: its input closed, it failed, we stopped it, or it never started. */
export interface DecoderExit {
  reason: 'ended' | 'failed' | 'signalled' | 'stopped' | 'spawn-failed';
  /** For an end that was not asked for: the catalogued code (src/core/errors.ts). */
  code: DecoderErrorCode;
  /** One line for the log: what the backend saw (exit status, last messages). */
  detail: string;
  cause?: Error;
}

/** One running decoder, owned by one stream session at a time. */
export interface Decoder {
  /**
   * Decodes one access unit; `handle` and `tag` come back with its frame, and `index` (-1 when
   * its number is not known yet: `number` gives it later). False: wait for `drained()` before
   * the next (replay backpressure).
   */
  feed(au: AccessUnit, handle: number, index: number, tag: number): boolean;
  /** A frame fed with index -1 has its number now; false if this decoder does not hold it. */
  number(handle: number, index: number): boolean;
  drained(): Promise<void>;
  /** Ends the input; the last frames come out, then `exited` with reason `ended`. */
  close(): Promise<void>;
  /** Stops at once; what it holds is reported held. */
  kill(): Promise<void>;
  /** The watchdog's kill: reported as a crash (`exited` with code DECODER_STALLED or DECODER_LIMIT_EXCEEDED). */
  killAsCrash(reason: 'stalled' | 'cpu'): Promise<void>;
  readonly isExited: boolean;
  /** Frames fed and not yet out. */
  readonly holding: number;
  /** pts (s) of the earliest frame held; NaN when none. */
  readonly oldestHeldPts: number;
  /** performance.now() when the oldest frame held was fed; NaN when none. */
  readonly oldestHeldFedAt: number;
  /** performance.now() of the last frame out (or of the start). */
  readonly lastOutputAt: number;
  /** Frames put out so far. */
  readonly emitted: number;
  /** Waiting for the pipeline to take a frame (replay backpressure): silence then is not a stall. */
  readonly isBlocked: boolean;
  /** An OS process to watch for CPU time, if the backend runs one per decoder. */
  readonly pid: number | undefined;
  /** Frames the stream's reordering keeps inside when nothing more is fed (B-frames); told by the session. */
  reorderDepth: number;
  /** CPU time per frame put out, ms (NaN until measured); set by the watchdog, read by load shedding. */
  cpuMsPerFrame: number;
}

/** Where sessions get decoders: started on demand, or ahead of need (spares). */
export interface DecoderBackend {
  /** A running decoder for this codec and output size with `hooks` attached. */
  take(codec: VideoCodec, width: number, height: number, hooks: DecoderHooks): Decoder;
  /** Prepares decoders for this codec and output size ahead of the first stream (may do nothing). */
  warm(codec: VideoCodec, width: number, height: number): void;
  /** Stops every decoder it holds in reserve. Idempotent. */
  close(): Promise<void>;
}
