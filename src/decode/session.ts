/**
 * One stream session on its way from chunks to frames: our demuxer cuts the byte stream into
 * numbered frames, each frame is decoded, skipped before decoding (sampling, load shedding) or,
 * when it cannot be decoded (no keyframe yet after a start or a decoder crash), reported. So every
 * frame found is accounted for at the moment it is found or when its decoder gives it back.
 *
 *   chunk → TsDemuxer → FrameNumbering → ShedPolicy (live) → Sampler.before → FfmpegDecoder → Route.push
 *                                        └───────────── dropped with a reason ─────────────┘
 */
import { performance } from 'node:perf_hooks';
import type { DropReason, Frame } from '../core/frame.js';
import type { EncodedChunk, InputAck, ResumePoint, SessionAck, SessionEnd } from '../core/ack.js';
import { log } from '../core/log.js';
import { FramewireError } from '../core/errors.js';
import { poolFor, type BufferPool } from '../core/pool.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { DropReporter } from '../topology/drops.js';
import { TsDemuxer, type AccessUnit } from './mpegts.js';
import { FrameNumbering } from './numbering.js';
import { LATE, SHED, ShedPolicy } from './shedding.js';
import { DECODE_ONLY, LOOK, SKIP, Sampler, type SamplingRule } from './sampling.js';
import type { DecoderSpares, FfmpegDecoder } from './ffmpeg/decoder.js';
import type { FfmpegDecodeConfig } from './ffmpeg/config.js';

/** Where frames of a stream go: the model lane's size and queue, and the stream's policies. */
export interface Route {
  model: string;
  width: number;
  height: number;
  budgetMs: number;
  sampling: SamplingRule;
  /** Hands a frame on; a promise only when it must wait (replay mode, full queue). */
  push(frame: Frame): void | Promise<void>;
  /** The session's last frame has been pushed: its open windows (clip models) may close. */
  sessionEnded(stream: string, session: string): Promise<void>;
}

/** What every session shares: the decode stage's settings and outlets. */
export interface SessionContext {
  config: FfmpegDecodeConfig;
  metrics: Metrics;
  drops: DropReporter;
  /** Live mode with `decode.shedLoad`. */
  shed: boolean;
  spares: DecoderSpares;
  /** Shutdown in progress: frames a decoder holds are left to the resume point, not reported. */
  shuttingDown(): boolean;
  decoderStarted(): void;
  decoderExited(crashed: boolean, stream: string, session: string): void;
  /** Until when the stream is quarantined (Unix ms), if it is. */
  quarantinedUntil(stream: string): number | undefined;
}

/** Tags that travel with a frame through its decoder. */
const EMIT = 0;
/** Sampled out, decoded only because later frames reference it. */
const SAMPLED = 1;
/** Finished before a restart: decoded for its references only. */
const DONE = 2;
/** Scene sampling: decided on its pixels. */
const SCENE = 3;
/** Too late to classify, decoded because later frames reference it: dropped as `deadline`. */
const TOO_LATE = 4;

/** Decoder errors reported per session before the rest are only counted. */
const REJECTED_MEMORY = 64;

export class StreamSession {
  readonly stream: string;
  readonly session: string;
  nextSeq: number;
  /** When its last chunk came, on the decode stage's input clock (idleness is measured on it). */
  lastChunkAt = 0;
  private demux = new TsDemuxer();
  /** Chunks were set aside (quarantine): the byte stream goes on from an arbitrary point. */
  private skipped = false;
  private readonly numbering: FrameNumbering;
  private readonly policy: ShedPolicy | undefined;
  private readonly sampler: Sampler;
  private readonly framePool: BufferPool;
  private readonly epochMs: number;
  private readonly traceparent: string | undefined;
  private basePts: number;
  private decoder: FfmpegDecoder | undefined;
  /** The next frame fed must be a keyframe (decoder new, or frames were skipped). */
  private needKey = true;
  private mustDrain = false;
  private current: EncodedChunk | undefined;
  private lastFed: EncodedChunk | undefined;
  private readonly rejected = new Set<string>();
  private ending: Promise<void> | undefined;
  /** Given up to another member: frames it held or finds are no longer this process's to report. */
  private released = false;
  private readonly decodedCount;
  private readonly decodeStage;
  private readonly captureToDecoded;

  constructor(
    first: EncodedChunk,
    readonly ack: SessionAck,
    readonly input: InputAck,
    readonly route: Route,
    resume: ResumePoint | undefined,
    private readonly ctx: SessionContext,
  ) {
    this.stream = first.stream;
    this.session = first.session;
    this.nextSeq = first.seq;
    this.epochMs = first.epochMs;
    this.traceparent = first.traceparent;
    this.basePts = resume?.basePts ?? Number.NaN;
    this.numbering = new FrameNumbering(resume);
    this.sampler = new Sampler(route.sampling, route.width, route.height);
    this.framePool = poolFor(route.width * route.height * 3);
    const c = ctx.config;
    this.policy = ctx.shed ? new ShedPolicy({ budgetMs: route.budgetMs, shedAfterBudgets: c.shedAfterBudgets, freshFraction: c.shedFreshFraction, relaxAfterMs: c.shedRelaxAfterMs, giveUpAfterMs: c.shedGiveUpAfterMs }) : undefined;
    this.decodedCount = ctx.metrics.framesDecoded.labels({ model: route.model });
    this.decodeStage = ctx.metrics.stageSeconds.labels({ stage: 'decode' });
    this.captureToDecoded = ctx.metrics.stageSeconds.labels({ stage: 'capture_to_decoded' });
  }

  /** The running decoder, for the watchdog. */
  get activeDecoder(): FfmpegDecoder | undefined {
    return this.decoder && !this.decoder.isExited ? this.decoder : undefined;
  }

  get decoding(): boolean {
    return !!this.decoder && !this.decoder.isExited;
  }

  /**
   * The next chunk of the session (in sequence). Returns a promise only when the caller must wait
   * before the next one (replay mode: the decoder's input is full), or when the chunk ends the session.
   */
  push(chunk: EncodedChunk): void | Promise<void> {
    this.nextSeq = chunk.seq + 1;
    const until = this.ctx.quarantinedUntil(this.stream);
    if (until !== undefined) {
      // Not decoded, so its frames are never found: the record is accounted for by the dead letter.
      this.skipped = true;
      const rejected = this.input.reject(chunk, 'STREAM_QUARANTINED', `stream ${this.stream} crashed its decoder too often; quarantined until ${new Date(until).toISOString()}`);
      return chunk.eos ? rejected.then(() => this.end('eos')) : rejected;
    }
    if (this.skipped) {
      // Back from quarantine: a fresh demuxer (it resynchronises on the packets), decoding from a keyframe.
      this.skipped = false;
      this.demux = new TsDemuxer();
      this.needKey = true;
    }
    this.ack.chunkFed(chunk.seq, chunk.offset);
    this.current = chunk;
    this.demux.push(chunk.value, chunk.seq, chunk.offset, this.onUnit);
    if (chunk.eos) return this.end('eos');
    if (!this.mustDrain) return;
    this.mustDrain = false;
    return this.decoder?.drained();
  }

  /**
   * No more chunks: the last frame (a PES without a length ends only here) is found, the decoder
   * puts out what it holds, and the session's windows close. Idempotent.
   */
  end(how: SessionEnd): Promise<void> {
    if (!this.ending) {
      this.demux.flush(this.onUnit);
      this.ack.ended(how);
      const decoder = this.decoder;
      this.ending = (decoder ? decoder.close() : Promise.resolve()).then(() => this.route.sessionEnded(this.stream, this.session));
    }
    return this.ending;
  }

  /** The partition moved away: the decoder stops at once and what it holds is left to the new owner. */
  release(): Promise<void> {
    this.released = true;
    return this.kill();
  }

  /** Shutdown: the decoder stops at once; what it holds is re-decoded from the resume point next run. */
  kill(): Promise<void> {
    return this.decoder?.kill() ?? Promise.resolve();
  }

  private captureOf(pts: number): number {
    return this.epochMs + Math.round((pts - this.basePts) * 1000);
  }

  private drop(index: number, reason: DropReason): void {
    if (index < this.numbering.doneBelow) return; // finished before the restart
    this.ctx.drops.drop(this.ack, this.stream, this.session, index, index, reason);
  }

  /** One frame found by the demuxer (bound once: no closure per frame). */
  private readonly onUnit = (au: AccessUnit): void => {
    const index = this.numbering.assign(au.pts);
    if (index < 0) return;
    if (Number.isNaN(this.basePts)) this.basePts = au.pts;
    this.ack.frameFound(index, au.pts, au.key, au.seq, au.offset);
    const done = index < this.numbering.doneBelow;
    let late = false;
    if (this.policy) {
      const now = Date.now();
      // A decoder that has not put out its first frame yet is starting, not behind.
      const d = this.decoder;
      const held = d && d.holding && d.emitted > 0 ? now - this.captureOf(d.oldestHeldPts) : 0;
      const episodes = this.policy.episodes;
      const decision = this.policy.decide(now, this.captureOf(au.pts), au.key, held);
      late = decision === LATE;
      if (decision === SHED) {
        if (this.policy.episodes !== episodes) {
          this.ctx.metrics.loadSheds.inc();
          log.once('info', `shed:${this.stream}`, 'stream fell behind its latency budget; skipping ahead to a fresh keyframe', { stream: this.stream, session: this.session, budgetMs: this.route.budgetMs });
        }
        this.ctx.metrics.framesShed.inc();
        this.needKey = true;
        this.drop(index, 'overload');
        return;
      }
    }
    let tag = DONE;
    if (!done) {
      const pre = this.sampler.before(Math.round((au.pts - this.basePts) * 1000), au.key, au.disposable);
      if (pre === SKIP) {
        if (!au.disposable) this.needKey = true;
        this.drop(index, 'sampled');
        return;
      }
      tag = late ? TOO_LATE : pre === DECODE_ONLY ? SAMPLED : pre === LOOK ? SCENE : EMIT;
      if (tag === TOO_LATE && au.disposable) {
        this.drop(index, 'deadline');
        return;
      }
    } else if (au.disposable) {
      return; // finished, and nothing needs it as a reference
    }
    if (this.needKey && !au.key) {
      // No keyframe since the decoder started (a session joined mid-GOP) or crashed: undecodable.
      this.drop(index, 'decoder-reset');
      return;
    }
    if (!this.decoder || this.decoder.isExited) this.startDecoder();
    this.needKey = false;
    this.lastFed = this.current;
    if (!this.decoder!.feed(au, index, tag)) this.mustDrain = true;
  };

  private startDecoder(): void {
    const decoder: FfmpegDecoder = this.ctx.spares.take(this.demux.codec ?? 'h264', this.route.width, this.route.height, {
      frame: this.onFrame,
      error: (line) => this.onDecoderError(line),
      exited: (exit, held) => {
        if (this.decoder === decoder) this.decoder = undefined;
        const crashed = exit.reason !== 'ended' && !this.ending && !this.released;
        this.ctx.decoderExited(crashed, this.stream, this.session);
        if (this.ctx.shuttingDown() || this.released) return;
        // What never came out: lost with the decoder (or, after a clean end, frames ffmpeg could not decode).
        for (const h of held) if (h.tag !== DONE) this.drop(h.index, 'decoder-reset');
        if (!crashed) return;
        this.needKey = true;
        const code = decoder.killedFor === 'stalled' ? 'DECODER_STALLED' : decoder.killedFor === 'cpu' ? 'DECODER_LIMIT_EXCEEDED' : exit.reason === 'spawn-failed' ? 'DECODER_SPAWN_FAILED' : 'DECODER_FAILED';
        const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
        const err = new FramewireError(code, 'decode', `ffmpeg ${decoder.killedFor ? `killed by the watchdog (${decoder.killedFor})` : exit.reason} (${how}): ${exit.stderr.slice(-3).join(' | ')}`, { retriable: true, cause: exit.error ?? undefined });
        log.once('warn', `decoder-exit:${this.stream}:${this.session}`, 'decoder exited; restarting at the next keyframe', { stream: this.stream, session: this.session, err });
      },
    });
    this.decoder = decoder;
    this.ctx.decoderStarted();
  }

  /** A decoded frame (bound once). */
  private readonly onFrame = (data: Buffer, index: number, pts: number, key: boolean, tag: number, fedAt: number): void | Promise<void> => {
    this.decodedCount.inc();
    if (tag === DONE || tag === SAMPLED || tag === TOO_LATE) {
      this.framePool.give(data);
      if (tag === DONE) this.ctx.metrics.framesResumeSkipped.inc();
      else this.drop(index, tag === SAMPLED ? 'sampled' : 'deadline');
      return;
    }
    const ptsMs = Math.round((pts - this.basePts) * 1000);
    const captureTs = this.epochMs + ptsMs;
    const now = performance.now();
    const frame: Frame = {
      stream: this.stream,
      session: this.session,
      index,
      ptsMs,
      captureTs,
      deadlineTs: captureTs + this.route.budgetMs,
      keyframe: key,
      data,
      traceparent: this.traceparent,
      decodedAt: now,
      owner: this.ack,
    };
    if (tag === SCENE) {
      const skip = this.sampler.decide(frame, key);
      if (skip) {
        this.framePool.give(data);
        this.drop(index, skip);
        return;
      }
    }
    this.decodeStage.observe((now - fedAt) / 1000);
    this.captureToDecoded.observe((Date.now() - captureTs) / 1000);
    return this.route.push(frame);
  };

  /** ffmpeg rejected bytes: the chunk most recently fed goes to the dead-letter topic (once). */
  private onDecoderError(line: string): void {
    const c = this.lastFed;
    if (!c || this.rejected.has(c.offset)) return;
    if (this.rejected.size >= REJECTED_MEMORY) this.rejected.clear();
    this.rejected.add(c.offset);
    // A failure is logged by the source; the chunk then stays uncommitted.
    this.input.reject(c, 'DECODER_REJECTED', line.replace(/^(\[[^\]]*\]\s*)+/, '').slice(0, 300)).catch(() => undefined);
  }
}
