/**
 * One stream session on its way from chunks to frames: our demuxer cuts the byte stream into
 * numbered frames, each frame is decoded, skipped before decoding (sampling, load shedding) or,
 * when it cannot be decoded (no keyframe yet after a start or a decoder crash), reported. So every
 * frame found is accounted for at the moment it is found or when its decoder gives it back.
 *
 *   chunk → TsDemuxer → FrameNumbering → ShedPolicy (live) → Sampler.before → Decoder → Route.push
 *                                        └───────────── dropped with a reason ─────────────┘
 *
 * Frames are numbered in presentation order (numbering.ts). Without B-frames a frame's number is
 * known when it is found; with them a little later, so each frame travels under a handle (its
 * decode-order position) and what became of it before its number was known (fed, or dropped with
 * a reason) is kept on the numbering's waiting entry until the number comes.
 */
import { performance } from 'node:perf_hooks';
import { setPriority } from 'node:os';
import type { DropReason, Frame } from '../core/frame.js';
import type { EncodedChunk, InputAck, ResumePoint, SessionAck, SessionEnd } from '../core/ack.js';
import { log } from '../core/log.js';
import { FramewireError } from '../core/errors.js';
import { poolFor, type BufferPool } from '../core/pool.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { DropReporter } from '../core/drops.js';
import { TsDemuxer, type AccessUnit } from './mpegts.js';
import { FrameNumbering } from './numbering.js';
import { LATE, SHED, ShedPolicy, UNMEASURED_DECODE_MS, UNMEASURED_FRAME_MS } from './shedding.js';
import { DECODE_DEGRADED, DECODE_ONLY, LOOK, SKIP, SKIP_DEGRADED, Sampler, type SamplingRule } from './sampling.js';
import { PRIORITIES, type Priority } from '../core/priority.js';
import type { Decoder, DecoderBackend, HeldFrame } from './backend.js';
import type { Unnumbered } from './numbering.js';
import type { DecodeConfig } from './config.js';

/** Where frames of a stream go: the model lane's size and queue, and the stream's policies. */
export interface Route {
  model: string;
  width: number;
  height: number;
  budgetMs: number;
  sampling: SamplingRule;
  /** Which streams are degraded first when the machine cannot label them all (batch/degrade.ts). */
  priority: Priority;
  /** Niceness its decoders run at: the OS gives higher-priority streams' decoders the cores first (0: unchanged). */
  nice: number;
  /** Hands a frame on; a promise only when it must wait (replay mode, full queue). */
  push(frame: Frame): void | Promise<void>;
  /** The session's last frame has been pushed: its open windows (clip models) may close. */
  sessionEnded(stream: string, session: string): Promise<void>;
}

/** What every session shares: the decode stage's settings and outlets. */
export interface SessionContext {
  config: DecodeConfig;
  metrics: Metrics;
  drops: DropReporter;
  /** Live mode with `decode.shedLoad`. */
  shed: boolean;
  /** Where decoders come from (decode.backend). */
  decoders: DecoderBackend;
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
/** Skipped by the stream's degraded rate, decoded because later frames reference it. */
const DEGRADED = 5;

/** Decoder errors reported per session before the rest are only counted. */
const REJECTED_MEMORY = 64;

/** What became of a frame before its number was known (Unnumbered.fate). */
const FATE_FED = 1;
/** Finished before a restart and not needed as a reference: nothing to report. */
const FATE_DONE = 2;
const FATE_DROP = 3; // + index into DROP_FATES
const DROP_FATES: readonly DropReason[] = ['sampled', 'overload', 'deadline', 'decoder-reset', 'unchanged', 'undecodable'];
const fateOf = (reason: DropReason): number => FATE_DROP + DROP_FATES.indexOf(reason);
/** `sampled` by the stream's degraded rate. */
const FATE_DEGRADED = FATE_DROP + DROP_FATES.length;

/** A decoded frame that came out before its number was known (rare: a decoder with less reorder delay than the stream's timestamps). */
interface EarlyFrame {
  data: Buffer;
  handle: number;
  pts: number;
  key: boolean;
  tag: number;
  fedAt: number;
}

export class StreamSession {
  readonly stream: string;
  readonly session: string;
  nextSeq: number;
  /** When its last chunk came, on the decode stage's input clock (idleness is measured on it). */
  lastChunkAt = 0;
  /** When it opened (wall ms). */
  readonly openedAt = Date.now();
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
  private decoder: Decoder | undefined;
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
  /** The frame being found and the number it got at once (-1: later). */
  private arriving = -1;
  private arrivingIndex = -1;
  private readonly early: EarlyFrame[] = [];
  /** Decoders closed while shedding, still putting out what they held. */
  private readonly retiring = new Set<Decoder>();
  /** A frame handed on from the numbering must be waited for (replay backpressure). */
  private blocked: Promise<void> | undefined;
  /** Largest pts − dts seen (s): how long the stream's own timing keeps a frame between decode and presentation. */
  private presentDelay = 0;
  /** The stream's frame interval, ms (from its dts steps), and its last decoder's CPU cost per frame, ms (a guess until measured). */
  private frameMs = UNMEASURED_FRAME_MS;
  private frameMsMeasured = false;
  private lastDts = Number.NaN;
  private decodeCostMs = UNMEASURED_DECODE_MS;
  private decodeCostMeasured = false;
  private readonly degradedCount;
  /** Its priority class, on each frame for the batcher (0 critical). */
  private readonly rank: number;

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
    this.numbering = new FrameNumbering(resume, this.onNumbered);
    this.sampler = new Sampler(route.sampling, route.width, route.height);
    this.framePool = poolFor(route.width * route.height * 3);
    const c = ctx.config;
    this.policy = ctx.shed ? new ShedPolicy({ budgetMs: route.budgetMs, shedAfterBudgets: c.shedAfterBudgets, freshFraction: c.shedFreshFraction, relaxAfterMs: c.shedRelaxAfterMs, giveUpAfterMs: c.shedGiveUpAfterMs, catchUpMs: c.shedCatchUpMs }) : undefined;
    this.decodedCount = ctx.metrics.framesDecoded.labels({ model: route.model });
    this.decodeStage = ctx.metrics.stageSeconds.labels({ stage: 'decode' });
    this.captureToDecoded = ctx.metrics.stageSeconds.labels({ stage: 'capture_to_decoded' });
    this.degradedCount = ctx.metrics.framesDegraded.labels({ priority: route.priority });
    this.rank = PRIORITIES.indexOf(route.priority);
  }

  /** Degrades the session to at most `fps` classified frames per second (undefined: its rule alone). */
  setRateCap(fps: number | undefined): void {
    this.sampler.setRateCap(fps);
  }

  get rateCap(): number | undefined {
    return this.sampler.rateCap;
  }

  /** The stream's keyframe interval, ms (NaN until two keyframes). */
  get gopMs(): number {
    return this.sampler.gopMs;
  }

  /** Frames per second the stream sends, measured from its timestamps (NaN until measured). */
  get fps(): number {
    return this.frameMsMeasured ? 1000 / this.frameMs : Number.NaN;
  }

  /** Its decoder's CPU time per frame, ms (NaN until measured). */
  get decodeMs(): number {
    return this.decodeCostMeasured ? this.decodeCostMs : Number.NaN;
  }

  /** The running decoder, for the watchdog. */
  get activeDecoder(): Decoder | undefined {
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
    const blocked = this.blocked;
    this.blocked = undefined;
    if (!this.mustDrain) return blocked;
    this.mustDrain = false;
    const drained = this.decoder?.drained();
    return blocked && drained ? Promise.all([blocked, drained]).then(() => undefined) : (blocked ?? drained);
  }

  /**
   * No more chunks: the last frame (a PES without a length ends only here) is found, the decoder
   * puts out what it holds, and the session's windows close. Idempotent.
   */
  end(how: SessionEnd): Promise<void> {
    if (!this.ending) {
      this.demux.flush(this.onUnit);
      this.numbering.flush();
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
    const all = [...this.retiring];
    if (this.decoder) all.push(this.decoder);
    return Promise.all(all.map((d) => d.kill())).then(() => undefined);
  }

  private captureOf(pts: number): number {
    return this.epochMs + Math.round((pts - this.basePts) * 1000);
  }

  private drop(index: number, reason: DropReason): void {
    if (index < this.numbering.doneBelow) return; // finished before the restart
    this.ctx.drops.drop(this.ack, this.stream, this.session, index, index, reason);
  }

  /** Skipped by the stream's degraded rate: `sampled`, marked degraded. */
  private dropDegraded(index: number): void {
    if (index < this.numbering.doneBelow) return;
    this.degradedCount.inc();
    this.ctx.drops.drop(this.ack, this.stream, this.session, index, index, 'sampled', true);
  }

  /** A frame just found is dropped: reported now when its number is known; its fate (kept until the number comes) either way. */
  private settle(index: number, reason: DropReason): number {
    if (index >= 0) this.drop(index, reason);
    return fateOf(reason);
  }

  /** A frame's number is known (presentation order, increasing). */
  private readonly onNumbered = (u: Unnumbered, index: number): void => {
    this.ack.frameFound(index, u.pts, u.key, u.seq, u.offset);
    if (u.handle === this.arriving) {
      this.arrivingIndex = index; // its fate is decided right after
      return;
    }
    if (u.fate === FATE_FED) {
      const e = this.early.length ? this.early.findIndex((f) => f.handle === u.handle) : -1;
      if (e >= 0) {
        const f = this.early.splice(e, 1)[0]!;
        const wait = this.onFrame(f.data, index, f.handle, f.pts, f.key, f.tag, f.fedAt);
        if (wait) this.blocked = this.blocked ? this.blocked.then(() => wait) : wait;
      } else if (!this.decoder?.number(u.handle, index)) for (const d of this.retiring) if (d.number(u.handle, index)) break;
    } else if (u.fate === FATE_DEGRADED) this.dropDegraded(index);
    else if (u.fate >= FATE_DROP) this.drop(index, DROP_FATES[u.fate - FATE_DROP]!);
  };

  /** One frame found by the demuxer, in decode order (bound once: no closure per frame). */
  private readonly onUnit = (au: AccessUnit): void => {
    this.arrivingIndex = -1;
    // Set before: the frame may be numbered inside `arrive`.
    this.arriving = this.numbering.nextHandle;
    const handle = this.numbering.arrive(au.pts, au.dts, au.key, au.seq, au.offset);
    this.arriving = -1;
    if (handle < 0) return;
    const index = this.arrivingIndex;
    const depth = this.numbering.reorderDepth;
    if (this.decoder && this.decoder.reorderDepth !== depth) this.decoder.reorderDepth = depth;
    const fate = this.decideUnit(au, handle, index);
    if (index < 0) this.numbering.waitingFor(handle)!.fate = fate;
  };

  /** What to do with a frame just found; returns its fate for a frame whose number is not known yet. */
  private decideUnit(au: AccessUnit, handle: number, index: number): number {
    if (Number.isNaN(this.basePts)) this.basePts = au.pts;
    if (au.pts - au.dts > this.presentDelay) this.noteReorderDelay(au.pts - au.dts);
    // Finished before the restart (only known once numbered: a waiting frame is decoded and discarded if so).
    const done = index >= 0 && index < this.numbering.doneBelow;
    let late = false;
    const d = this.decoder;
    const step = (au.dts - this.lastDts) * 1000;
    this.lastDts = au.dts;
    // Smoothed; a gap (a camera that dropped frames, a wrap) moves it only a little.
    if (step > 0 && step < 1000) {
      this.frameMs = this.frameMsMeasured ? this.frameMs + (step - this.frameMs) / 16 : step;
      this.frameMsMeasured = true;
    }
    if (d && d.cpuMsPerFrame > 0) {
      this.decodeCostMs = d.cpuMsPerFrame;
      this.decodeCostMeasured = true;
    }
    // Degraded: a frame the lowered rate skips is reported as such, whatever its age; load
    // shedding then only decides the frames that would be classified.
    let pre = -1;
    if (!done && this.sampler.rateCap !== undefined) {
      pre = this.sampler.before(Math.round((au.pts - this.basePts) * 1000), au.key, au.disposable);
      if (pre === SKIP_DEGRADED) {
        if (!au.disposable) this.needKey = true;
        if (index >= 0) this.dropDegraded(index);
        return FATE_DEGRADED;
      }
    }
    if (this.policy) {
      const now = Date.now();
      // A decoder that has not put out its first frame yet is starting, not behind.
      const held = d && d.holding && d.emitted > 0 ? now - this.captureOf(d.oldestHeldPts) : 0;
      const episodes = this.policy.episodes;
      const catchUps = this.policy.catchUps;
      const backlog = d && d.emitted > 0 ? d.holding - d.reorderDepth : Number.NaN;
      const decision = this.policy.decide(now, this.captureOf(au.pts), au.key, held, this.frameMs, this.decodeCostMs, backlog);
      late = decision === LATE;
      if (this.policy.catchUps !== catchUps) {
        this.ctx.metrics.catchUps.inc();
        log.once('info', `catchup:${this.stream}`, 'stream fell behind its latency budget; decoding without classifying to catch up', { stream: this.stream, session: this.session, budgetMs: this.route.budgetMs, decodeMs: Math.round(this.decodeCostMs * 100) / 100 });
      }
      if (decision === SHED) {
        if (this.policy.episodes !== episodes) {
          this.ctx.metrics.loadSheds.inc();
          log.once('info', `shed:${this.stream}`, 'stream fell behind its latency budget; skipping ahead to a fresh keyframe', { stream: this.stream, session: this.session, budgetMs: this.route.budgetMs });
          // What the decoder holds (its reorder depth) comes out now instead of when decoding resumes.
          this.retireDecoder();
        }
        this.ctx.metrics.framesShed.inc();
        this.needKey = true;
        if (pre === DECODE_DEGRADED) {
          // Not to be classified anyway: degraded, not lost to the overload.
          if (index >= 0) this.dropDegraded(index);
          return FATE_DEGRADED;
        }
        return this.settle(index, 'overload');
      }
    }
    let tag = DONE;
    if (!done) {
      if (pre < 0) pre = this.sampler.before(Math.round((au.pts - this.basePts) * 1000), au.key, au.disposable);
      if (pre === SKIP) {
        if (!au.disposable) this.needKey = true;
        return this.settle(index, 'sampled');
      }
      if (pre === SKIP_DEGRADED) {
        if (!au.disposable) this.needKey = true;
        if (index >= 0) this.dropDegraded(index);
        return FATE_DEGRADED;
      }
      // Not to be classified anyway: degraded, not late.
      tag = pre === DECODE_DEGRADED ? DEGRADED : late ? TOO_LATE : pre === DECODE_ONLY ? SAMPLED : pre === LOOK ? SCENE : EMIT;
      if (tag === TOO_LATE && au.disposable) {
        return this.settle(index, 'deadline');
      }
    } else if (au.disposable) {
      return FATE_DONE; // finished, and nothing needs it as a reference
    }
    if (this.needKey && !au.key) {
      // No keyframe since the decoder started (a session joined mid-GOP) or crashed: undecodable.
      return this.settle(index, 'decoder-reset');
    }
    if (!this.decoder || this.decoder.isExited) this.startDecoder();
    this.needKey = false;
    this.lastFed = this.current;
    if (!this.decoder!.feed(au, handle, index, tag)) this.mustDrain = true;
    return FATE_FED;
  }

  /**
   * With B-frames a frame cannot be shown before the later frames it is predicted from have been
   * captured and sent: the stream's timestamps say how long (the largest pts − dts, 200 ms for
   * x264's defaults at 25 fps), and that much of every frame's budget is gone before we can do
   * anything. Said once per stream when it is most of the budget.
   */
  private noteReorderDelay(delay: number): void {
    this.presentDelay = delay;
    const ms = Math.round(delay * 1000);
    if (ms * 2 < this.route.budgetMs) return;
    log.once('warn', `reorder-delay:${this.stream}`, `stream's B-frames keep each frame up to ${ms} ms between capture and the moment it can be decoded and shown, out of a latency budget of ${this.route.budgetMs} ms: frames will miss it; give the stream a larger budget, or have its camera (or framewire ingest --codec x264) send no B-frames`, { stream: this.stream, reorderDelayMs: ms, budgetMs: this.route.budgetMs });
  }

  /**
   * A B-frame decoder keeps its reorder depth of frames until more are fed: closed now, it puts
   * them out at once (as a clean end) instead of when decoding resumes, and its stale frames do not
   * count as the stream being behind then. The next keyframe takes another (a spare). A decoder
   * without reordering gives its frames out by itself and keeps running.
   */
  private retireDecoder(): void {
    const d = this.decoder;
    if (!d || d.isExited || d.holding === 0 || d.reorderDepth === 0) return;
    this.decoder = undefined;
    this.retiring.add(d);
    void d.close().finally(() => this.retiring.delete(d));
  }

  private startDecoder(): void {
    const decoder: Decoder = this.ctx.decoders.take(this.demux.codec ?? 'h264', this.route.width, this.route.height, {
      frame: this.onFrame,
      skipped: (index, handle, tag) => this.onSkipped(index, handle, tag),
      error: (line) => this.onDecoderError(line),
      exited: (exit, held) => {
        if (this.decoder === decoder) this.decoder = undefined;
        const crashed = exit.reason !== 'ended' && !this.ending && !this.released;
        this.ctx.decoderExited(crashed, this.stream, this.session);
        if (this.ctx.shuttingDown() || this.released) return;
        // What never came out: lost with the decoder (or, after a clean end, frames ffmpeg could not decode).
        for (const h of held) this.lost(h, 'decoder-reset');
        if (!crashed) return;
        this.needKey = true;
        const err = new FramewireError(exit.code, 'decode', exit.detail, { retriable: true, cause: exit.cause });
        log.once('warn', `decoder-exit:${this.stream}:${this.session}`, 'decoder exited; restarting at the next keyframe', { stream: this.stream, session: this.session, err });
      },
    });
    this.decoder = decoder;
    if (this.route.nice > 0 && decoder.pid !== undefined) {
      try {
        setPriority(decoder.pid, this.route.nice);
      } catch (err) {
        log.once('warn', 'decoder-nice', 'cannot lower a decoder\'s scheduling priority; lower-priority streams\' decoders compete for the cores as equals', { stream: this.stream, err });
      }
    }
    decoder.reorderDepth = this.numbering.reorderDepth;
    this.ctx.decoderStarted();
  }

  /** A frame fed that will not come out. */
  private lost(h: HeldFrame, reason: DropReason): void {
    if (h.tag === DONE) return;
    if (h.index >= 0) return this.drop(h.index, reason);
    const u = this.numbering.waitingFor(h.handle);
    if (u) u.fate = fateOf(reason);
    else {
      // Numbered while it was inside the decoder, and the number went to the decoder's copy.
      log.once('warn', 'decoder-lost-unnumbered', 'a frame lost in a decoder had no number to report it by', { stream: this.stream });
    }
  }

  /** The decoder put out a later picture instead of this one: it was dropped inside ffmpeg. */
  private onSkipped(index: number, handle: number, tag: number): void {
    this.lost({ index, handle, tag }, 'undecodable');
  }

  /** A decoded frame (bound once). */
  private readonly onFrame = (data: Buffer, index: number, handle: number, pts: number, key: boolean, tag: number, fedAt: number): void | Promise<void> => {
    if (index < 0) {
      // Out before its number is known: held until the numbering gives it one.
      this.early.push({ data, handle, pts, key, tag, fedAt });
      return;
    }
    this.decodedCount.inc();
    const now = performance.now();
    if (index < this.numbering.doneBelow) tag = DONE;
    if (tag === DONE || tag === SAMPLED || tag === TOO_LATE || tag === DEGRADED) {
      this.framePool.give(data);
      if (tag === DONE) this.ctx.metrics.framesResumeSkipped.inc();
      else if (tag === DEGRADED) this.dropDegraded(index);
      else this.drop(index, tag === SAMPLED ? 'sampled' : 'deadline');
      return;
    }
    const ptsMs = Math.round((pts - this.basePts) * 1000);
    const captureTs = this.epochMs + ptsMs;
    const frame: Frame = {
      stream: this.stream,
      session: this.session,
      index,
      ptsMs,
      captureTs,
      deadlineTs: captureTs + this.route.budgetMs,
      keyframe: key,
      rank: this.rank,
      data,
      traceparent: this.traceparent,
      decodedAt: now,
      fedAt,
      owner: this.ack,
      partition: this.ack.chunkPartition,
      offset: this.ack.chunkOffset?.(index),
      keyFrame: this.ack.keyFrame?.(index),
      keyOffset: this.ack.keyOffset?.(index),
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
