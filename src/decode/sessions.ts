/**
 * The decode stage: one StreamSession per active stream session. Chunks of a stream arrive in
 * order (one stream stays in one partition); a new session of a stream ends the old one, a
 * session ends at `fw-eos` or after `decode.idleTimeoutMs` without chunks, and a session seen
 * before (this run, or the last commit's resume point) goes on where it was.
 */
import type { EncodedChunk, InputAck } from '../core/ack.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { DropReporter } from '../core/drops.js';
import type { DecodeConfig } from './config.js';
import { StreamSession, type Route, type SessionContext } from './session.js';
import type { DecoderBackend } from './backend.js';
import { DECODER_BACKENDS } from './backends.js';
import { DecoderWatchdog } from './watchdog.js';
import { Quarantine } from './quarantine.js';
import { log } from '../core/log.js';
import type { PipelineEvent } from '../core/events.js';

export type { Route } from './session.js';

export interface DecodeStageOptions {
  config: DecodeConfig;
  route(stream: string): Route;
  drops: DropReporter;
  metrics: Metrics;
  /** Live mode with `decode.shedLoad`: frames past their budget are skipped before decoding. */
  shed: boolean;
  /** Stream health events (`stream`, state `quarantined` / `resumed`), best effort. */
  event?: (e: PipelineEvent) => void;
  /** Told of every chunk and every session end (stream health). */
  observer?: SessionObserver;
}

export interface SessionObserver {
  chunk(stream: string, session: string): void;
  sessionEnded(stream: string, session: string, how: 'eos' | 'idle' | 'replaced'): void;
}

export class DecodeStage {
  private readonly streams = new Map<string, StreamSession>();
  private readonly idleTimer: NodeJS.Timeout;
  private readonly ending = new Set<Promise<void>>();
  private shuttingDown = false;
  private decoders = 0;
  private readonly ctx: SessionContext;
  private readonly backend: DecoderBackend;
  private readonly quarantine: Quarantine;
  /** Quarantined streams (and the session that was), to announce when they come back. */
  private readonly quarantined = new Map<string, string>();
  private readonly watchdog: DecoderWatchdog;
  private readonly watchTimer: NodeJS.Timeout;
  /** Degraded streams' rates (batch/degrade.ts), applied to each session of the stream. */
  private readonly rateCaps = new Map<string, number>();
  /** Chunks whose handling waits (backpressure), and the time the input has spent waiting so far. */
  private waiting = 0;
  private waitingSince = 0;
  private waitedMs = 0;

  constructor(private readonly o: DecodeStageOptions) {
    this.idleTimer = setInterval(() => this.endIdle(), Math.min(1000, o.config.idleTimeoutMs / 2));
    this.idleTimer.unref();
    const c = o.config;
    this.backend = DECODER_BACKENDS[c.backend](c);
    this.quarantine = new Quarantine({ crashes: c.quarantineCrashes, windowMs: c.quarantineWindowMs, durationMs: c.quarantineMs });
    this.watchdog = new DecoderWatchdog({
      stallMs: c.stallMs,
      maxCpuPercent: c.maxCpuPercent,
      cpuWindowMs: c.cpuWindowMs,
      killed: (_stream, reason) => o.metrics.decoderKills.inc({ reason }),
    });
    this.watchTimer = setInterval(() => this.watch(), Math.max(100, Math.min(1000, c.stallMs / 4)));
    this.watchTimer.unref();
    this.ctx = {
      decoders: this.backend,
      config: o.config,
      metrics: o.metrics,
      drops: o.drops,
      shed: o.shed,
      shuttingDown: () => this.shuttingDown,
      decoderStarted: () => o.metrics.decodersActive.set(++this.decoders),
      decoderExited: (crashed, stream, session) => {
        o.metrics.decodersActive.set(--this.decoders);
        if (!crashed || this.shuttingDown) return;
        o.metrics.decoderRestarts.inc();
        if (!this.quarantine.crashed(stream)) return;
        const until = this.quarantine.quarantinedUntil(stream)!;
        o.metrics.streamsQuarantined.inc();
        log.warn('stream quarantined: its decoder crashed too often', { stream, session, code: 'STREAM_QUARANTINED', crashes: c.quarantineCrashes, windowMs: c.quarantineWindowMs, until });
        this.quarantined.set(stream, session);
        o.event?.({ type: 'stream', stream, session, state: 'quarantined', ts: Date.now(), untilTs: until });
      },
      quarantinedUntil: (stream) => this.quarantine.quarantinedUntil(stream),
    };
  }

  /** Starts a spare decoder for a model input size ahead of the first stream (H.264, the common case). */
  warm(width: number, height: number): void {
    this.backend.warm('h264', width, height);
  }

  /** Whether the stream's decoder runs; undefined when it has no open session. */
  decoderRunning(stream: string): boolean | undefined {
    return this.streams.get(stream)?.decoding;
  }

  get activeDecoders(): number {
    return this.decoders;
  }

  /**
   * Takes one validated chunk. Returns a promise only when the caller must wait before the next
   * chunk of this input (replay backpressure, a session ending, a dead letter being written).
   */
  handle(chunk: EncodedChunk, input: InputAck): void | Promise<void> {
    const obs = this.o.observer;
    if (obs) {
      obs.chunk(chunk.stream, chunk.session);
      if (chunk.eos) obs.sessionEnded(chunk.stream, chunk.session, 'eos');
    }
    const st = this.streams.get(chunk.stream);
    if (st && st.session === chunk.session) {
      if (chunk.seq !== st.nextSeq) return input.reject(chunk, 'CHUNK_OUT_OF_SEQUENCE', `fw-seq ${chunk.seq}, expected ${st.nextSeq} in session ${chunk.session}`);
      st.lastChunkAt = this.inputClock();
      return this.track(st.push(chunk));
    }
    const rp = input.resumeOf(chunk.stream, chunk.session);
    if (rp && chunk.seq < rp.seq) return; // finished before the restart
    if (chunk.seq !== 0 && !(rp && chunk.seq === rp.seq)) {
      return input.reject(chunk, 'CHUNK_OUT_OF_SEQUENCE', `fw-seq ${chunk.seq} of unknown session ${chunk.session}; a session starts at 0`);
    }
    const open = (): void | Promise<void> => {
      const session = new StreamSession(chunk, input.openSession(chunk.stream, chunk.session, rp), input, this.o.route(chunk.stream), rp, this.ctx);
      const cap = this.rateCaps.get(chunk.stream);
      if (cap !== undefined) session.setRateCap(cap);
      this.streams.set(chunk.stream, session);
      session.lastChunkAt = this.inputClock();
      return this.track(session.push(chunk));
    };
    if (!st) return open();
    // A new session of the stream: the old one is over (its last frames go out first).
    this.streams.delete(chunk.stream);
    obs?.sessionEnded(st.stream, st.session, 'replaced');
    return st.end('replaced').then(open);
  }

  /**
   * Wall time less the time the input spent waiting on backpressure. A session is idle when no
   * chunk came for `idleTimeoutMs` of it: while a partition waits for a decoder (replay mode),
   * chunks cannot come, and its other sessions are not idle for that.
   */
  inputClock(): number {
    const now = Date.now();
    return now - this.waitedMs - (this.waiting > 0 ? now - this.waitingSince : 0);
  }

  private track(wait: void | Promise<void>): void | Promise<void> {
    if (!wait) return;
    if (this.waiting++ === 0) this.waitingSince = Date.now();
    return wait.finally(() => {
      if (--this.waiting === 0) this.waitedMs += Date.now() - this.waitingSince;
    });
  }

  /** Degrades a stream to at most `fps` classified frames per second; undefined: restored. */
  setRateCap(stream: string, fps: number | undefined): void {
    if (fps === undefined) this.rateCaps.delete(stream);
    else this.rateCaps.set(stream, fps);
    this.streams.get(stream)?.setRateCap(fps);
  }

  /** The open sessions, for the degrade controller's tick. */
  sessions(): IterableIterator<StreamSession> {
    return this.streams.values();
  }

  /** The watchdog's tick: every running decoder, and quarantines that are over. */
  private watch(): void {
    for (const st of this.streams.values()) {
      const d = st.activeDecoder;
      if (d) this.watchdog.check(st.stream, d);
    }
    for (const [stream, session] of this.quarantined) {
      if (this.quarantine.quarantinedUntil(stream) !== undefined) continue;
      this.quarantined.delete(stream);
      log.info('stream out of quarantine: decoding from the next keyframe', { stream });
      this.o.event?.({ type: 'stream', stream, session, state: 'released', ts: Date.now() });
    }
  }

  /**
   * The input's partition moved to another member: its sessions stop here at once. Nothing they
   * held is reported (the new owner decodes it again from the committed resume point); frames
   * already handed on still publish (duplicates at most, never a gap).
   */
  release(input: InputAck): void {
    for (const st of this.streams.values()) {
      if (st.input !== input) continue;
      this.streams.delete(st.stream);
      const p = st.release().finally(() => this.ending.delete(p));
      this.ending.add(p);
    }
  }

  private endIdle(): void {
    const cutoff = this.inputClock() - this.o.config.idleTimeoutMs;
    for (const st of this.streams.values()) {
      if (st.lastChunkAt >= cutoff) continue;
      // Forgotten at once: if its chunks come back, the source knows where it goes on.
      this.streams.delete(st.stream);
      this.rateCaps.delete(st.stream);
      this.o.observer?.sessionEnded(st.stream, st.session, 'idle');
      const p = st.end('idle').finally(() => this.ending.delete(p));
      this.ending.add(p);
    }
  }

  /**
   * Shutdown: stops every decoder without flushing. Frames still inside a decoder were never
   * emitted, so nothing is lost: each live session keeps its keyframe resume point, and the next
   * run re-decodes from there. Frames already emitted drain through the pipeline. Idempotent.
   */
  async close(): Promise<void> {
    this.shuttingDown = true;
    clearInterval(this.idleTimer);
    clearInterval(this.watchTimer);
    await Promise.all([...this.streams.values()].map((st) => st.kill()));
    await Promise.all(this.ending);
    await this.backend.close();
  }
}
