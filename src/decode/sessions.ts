/**
 * Keeps one decoder per active stream session. Chunks of a stream arrive in order (one stream
 * stays in one partition); a new session replaces the old decoder, an idle stream's decoder is
 * closed, a decoder that dies is restarted from the next chunk without other streams noticing.
 */
import type { DropReason, Frame } from '../core/frame.js';
import { scanTs, type TsScan } from './mpegts.js';
import { log } from '../core/log.js';
import { poolFor } from '../core/pool.js';
import { Sampler, type SamplingRule } from './sampling.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { DropReporter } from '../topology/drops.js';
import { SessionTracker, type Numbering, type PartitionTracker, type ResumePoint } from '../sources/kafka/checkpoint.js';
import type { Chunk, DeadLetter } from '../sources/kafka/chunk.js';
import { FfmpegDecoder, type ContinueFrom } from './ffmpeg/decoder.js';
import type { FfmpegDecodeConfig } from './ffmpeg/config.js';

/** Where frames of a stream go: the model lane's size and queue, and the stream's policies. */
export interface Route {
  model: string;
  width: number;
  height: number;
  budgetMs: number;
  sampling: SamplingRule;
  push(frame: Frame): Promise<void>;
  /** The session's last frame has been pushed (its decoder flushed and exited): windows may close. */
  sessionEnded(stream: string, session: string): Promise<void>;
}

interface StreamState {
  stream: string;
  session: string;
  nextSeq: number;
  tracker: SessionTracker;
  decoder: FfmpegDecoder | undefined;
  /** What a replacement decoder needs to continue numbering. */
  continueFrom: ContinueFrom | undefined;
  lastChunkAt: number;
  lastFed: Chunk | undefined;
  rejected: Set<string>;
  route: Route;
  sampler: Sampler;
  epochMs: number;
  traceparent: string | undefined;
  /** Bytes of the session fed or skipped so far (where the next chunk starts in the byte stream). */
  bytesIn: number;
  /** Since when (Date.now()) every frame has left the decoder later than the stream's budget; NaN when the last one was on time. */
  lateSince: number;
  /** When the current decoder started (Date.now()). */
  decoderStartedAt: number;
  /** When the decoder last emitted a frame (Date.now()). */
  lastEmitAt: number;
  /** When the current shedding began (Date.now()). */
  shedSince: number;
  /** The idle stream's open windows were closed (reset by its next chunk). */
  idleEnded: boolean;
  /** Skipping chunks until one starts a fresh keyframe (load shedding). */
  shedding: boolean;
  /** The current decoder is being stopped for shedding, not crashing. */
  shedKill: boolean;
  /** From the chunks' MPEG-TS headers (live mode): first video pts of the session, and the frame step (s). */
  firstPts: number;
  ptsStep: number;
  scanLastPts: number;
  /** Reason reported for the frames a restarted decoder skips over. */
  gapReason: DropReason;
}

/**
 * A decoder whose frames have all come out later than the budget for this long sheds load. Long
 * enough that a decoder's start (ffmpeg's first frames are always late) or a hiccup never does.
 */
const SHED_AFTER_MS = 1000;
/** A decoder's lateness counts only once it has run this long. */
const DECODER_WARMUP_MS = 2000;
/** A chunk older than this many budgets when it arrives sheds load (a backlog in Kafka). */
const SHED_CHUNK_AGE_BUDGETS = 2;
/** Shedding this long, a keyframe up to a whole budget old will do (not only half a budget). */
const SHED_RELAX_MS = 2000;
/** Shedding this long without meeting a keyframe marked as one (random-access flag), decode anyway. */
const SHED_GIVE_UP_MS = 5000;

export interface DecodeStageOptions {
  config: FfmpegDecodeConfig;
  route(stream: string): Route;
  deadLetter: DeadLetter;
  drops: DropReporter;
  metrics: Metrics;
  /** Live mode with `decode.shedLoad`: streams that fall behind their budget skip ahead. */
  shed: boolean;
}

export class DecodeStage {
  private readonly streams = new Map<string, StreamState>();
  /** Resume points read from the last commit, by stream + session. */
  private readonly resume = new Map<string, ResumePoint>();
  private readonly idleTimer: NodeJS.Timeout;
  private readonly closing = new Set<Promise<void>>();
  private shuttingDown = false;
  private readonly scan: TsScan = { keyPts: Number.NaN, firstPts: Number.NaN, lastPts: Number.NaN, minStep: Number.NaN };

  constructor(private readonly o: DecodeStageOptions) {
    this.idleTimer = setInterval(() => this.closeIdle(), Math.min(1000, o.config.idleTimeoutMs / 2));
    this.idleTimer.unref();
  }

  addResumePoints(points: ResumePoint[]): void {
    for (const p of points) this.resume.set(p.stream + '\u0000' + p.session, p);
  }

  get activeDecoders(): number {
    let n = 0;
    for (const s of this.streams.values()) if (s.decoder && !s.decoder.isExited) n++;
    return n;
  }

  /**
   * Feeds one validated chunk. Resolves when its bytes are in the decoder's input (waits while
   * the decoder is backed up: that is what pauses the partition). The caller marks it handled.
   */
  async handle(chunk: Chunk, partition: PartitionTracker): Promise<void> {
    let st = this.streams.get(chunk.stream);
    if (!st || st.session !== chunk.session) {
      const key = chunk.stream + '\u0000' + chunk.session;
      const rp = this.resume.get(key);
      if (rp && chunk.seq < rp.seq) return; // finished before the restart
      if (chunk.seq !== 0 && !(rp && chunk.seq === rp.seq)) {
        await this.o.deadLetter(chunk, 'out-of-sequence', `fw-seq ${chunk.seq} of unknown session ${chunk.session}; a session starts at 0`);
        return;
      }
      if (st) await this.endSession(st);
      partition.forgetEnded(chunk.stream);
      st = this.openSession(chunk, partition, rp && chunk.seq === rp.seq ? rp : undefined);
      if (rp) this.resume.delete(key);
    } else if (chunk.seq !== st.nextSeq) {
      await this.o.deadLetter(chunk, 'out-of-sequence', `fw-seq ${chunk.seq}, expected ${st.nextSeq} in session ${chunk.session}`);
      return;
    }
    st.nextSeq = chunk.seq + 1;
    st.lastChunkAt = Date.now();
    st.idleEnded = false;
    const at = st.bytesIn;
    st.bytesIn += chunk.value.length;
    if (this.o.shed) {
      const step = this.shedStep(st, chunk, at);
      // Read before any await: the scan object is shared with other partitions' chunks.
      const chunkLastPts = this.scan.lastPts;
      if (step !== 'feed') await this.stopForShedding(st);
      if (step !== 'feed') this.anchorNumbering(st);
      if (step === 'skip') {
        this.reportSkipped(st, chunk, chunkLastPts);
        return;
      }
    }
    if (!st.decoder || st.decoder.isExited) this.startDecoder(st);
    st.tracker.chunkFed(chunk.seq, chunk.offset, chunk.value.length);
    st.lastFed = chunk;
    await st.decoder!.write(chunk.value);
  }

  private openSession(chunk: Chunk, partition: PartitionTracker, rp: ResumePoint | undefined): StreamState {
    const tracker = new SessionTracker(chunk.stream, chunk.session, partition, rp);
    partition.sessions.add(tracker);
    const route = this.o.route(chunk.stream);
    const st: StreamState = {
      stream: chunk.stream,
      session: chunk.session,
      nextSeq: chunk.seq,
      tracker,
      decoder: undefined,
      continueFrom: !rp
        ? undefined
        : rp.kind === 'keyframe'
          ? { keyPts: rp.keyPts, keyIndex: rp.keyIndex, skipBelow: rp.nextIndex }
          : { lastIndex: rp.lastIndex, lastPts: rp.lastPts, frameDur: rp.frameDur },
      lastChunkAt: Date.now(),
      lastFed: undefined,
      rejected: new Set(),
      route,
      sampler: new Sampler(route.sampling, route.width, route.height),
      epochMs: chunk.epochMs,
      traceparent: chunk.traceparent,
      bytesIn: 0,
      lateSince: Number.NaN,
      lastEmitAt: 0,
      decoderStartedAt: 0,
      shedSince: 0,
      idleEnded: false,
      shedding: false,
      shedKill: false,
      firstPts: Number.NaN,
      ptsStep: Number.NaN,
      scanLastPts: Number.NaN,
      gapReason: 'decoder-reset',
    };
    this.streams.set(chunk.stream, st);
    return st;
  }

  private startDecoder(st: StreamState): void {
    const { metrics, drops } = this.o;
    const model = st.route.model;
    const tracker = st.tracker;
    const framePool = poolFor(st.route.width * st.route.height * 3);
    const decodeLatency = metrics.stageSeconds.labels({ stage: 'capture_to_decoded' });
    tracker.decoderStarted();
    st.lateSince = Number.NaN;
    st.decoderStartedAt = Date.now();
    // A session that comes back after its decoder ended is live again and pins offsets again.
    tracker.closed = false;
    tracker.partition.sessions.add(tracker);
    tracker.partition.forgetEnded(st.stream, st.session);
    let decoder: FfmpegDecoder;
    decoder = new FfmpegDecoder({
      stream: st.stream,
      session: st.session,
      width: st.route.width,
      height: st.route.height,
      epochMs: st.epochMs,
      budgetMs: st.route.budgetMs,
      basePts: Number.isNaN(tracker.basePts) ? undefined : tracker.basePts,
      traceparent: st.traceparent,
      owner: tracker,
      continueFrom: st.continueFrom,
      ffmpegPath: this.o.config.ffmpegPath,
      hooks: {
        emit: (frame) => {
          const now = Date.now();
          const lag = now - frame.captureTs;
          if (lag <= st.route.budgetMs) st.lateSince = Number.NaN;
          else if (Number.isNaN(st.lateSince) || now - st.lastEmitAt > SHED_AFTER_MS) st.lateSince = now;
          st.lastEmitAt = now;
          const skip = st.sampler.decide(frame, frame.keyframe);
          if (skip) {
            drops.drop(tracker, st.stream, st.session, frame.index, frame.index, skip);
            framePool.give(frame.data);
            return Promise.resolve();
          }
          decodeLatency.observe(lag / 1000);
          return st.route.push(frame);
        },
        decoded: (index, pts, pos, isKey) => {
          // After its first frame, a decoder's gaps are restarts again, whatever came before.
          st.gapReason = 'decoder-reset';
          tracker.frameDecoded(index, pts, pos, isKey);
          metrics.framesDecoded.inc({ model });
        },
        gap: (from, to) => {
          tracker.framesLost(from, to);
          drops.drop(tracker, st.stream, st.session, from, to, st.gapReason);
          st.gapReason = 'decoder-reset';
        },
        skipped: (count) => metrics.framesResumeSkipped.inc(count),
        decodeError: (line) => {
          const c = st.lastFed;
          if (!c || st.rejected.has(c.offset)) return;
          st.rejected.add(c.offset);
          if (st.rejected.size > 64) st.rejected.clear();
          void this.o.deadLetter(c, 'decoder-rejected', line.replace(/^(\[[^\]]*\]\s*)+/, '').slice(0, 300));
        },
        exited: (code, signal, lastLines) => {
          metrics.decodersActive.set(this.activeDecoders);
          // Shutdown: the session is not over; its keyframe resume point stays in the commit.
          if (this.shuttingDown) return;
          if (st.decoder === decoder) st.continueFrom = decoder.continuation();
          tracker.ending = decoder.continuation() as Numbering;
          // Stopped to shed load: not a crash (stopForShedding takes it from here).
          if (st.shedKill && st.decoder === decoder) {
            tracker.closed = true;
            return;
          }
          if (code === 0) {
            tracker.closed = true;
            // Once its last frames are through, the session's open window (clip models) closes.
            void decoder.framesDone.then(() => st.route.sessionEnded(st.stream, st.session));
            return;
          }
          // Unexpected exit: counted; the next chunk of this session starts a fresh decoder.
          metrics.decoderRestarts.inc();
          log.once('warn', `decoder-exit:${st.stream}:${st.session}`, 'decoder exited; restarting from the next chunk', {
            stream: st.stream,
            session: st.session,
            code,
            signal,
            ffmpeg: lastLines.split('\n').slice(-3).join(' | '),
          });
          tracker.closed = true;
        },
      },
    });
    st.decoder = decoder;
    metrics.decodersActive.set(this.activeDecoders);
  }

  /**
   * Live mode, per chunk: is this stream behind its budget, so that decoding the chunk would only
   * produce frames to drop? Either the chunk itself is already older than the budget (a backlog
   * in Kafka: the processor started late or a partition was held up), or frames have been leaving
   * the decoder late (it cannot keep up). Then the stream sheds: its decoder is stopped (what it
   * holds is never emitted) and chunks are skipped without decoding until one starts a keyframe
   * captured within half the budget; a new decoder starts there, and the frames in between are
   * reported as `overload`. The chunk's MPEG-TS headers tell its frames' times without decoding.
   */
  private shedStep(st: StreamState, chunk: Chunk, at: number): 'feed' | 'skip' | 'resume' {
    const scan = scanTs(chunk.value, at, this.scan);
    if (!Number.isNaN(scan.firstPts) && Number.isNaN(st.firstPts)) st.firstPts = scan.firstPts;
    // The frame step: within a chunk, or between the last frame of one chunk and the first of the next.
    const across = scan.firstPts - st.scanLastPts;
    if (scan.minStep > 0 && !(scan.minStep >= st.ptsStep)) st.ptsStep = scan.minStep;
    if (across > 0 && !(across >= st.ptsStep)) st.ptsStep = across;
    if (!Number.isNaN(scan.lastPts)) st.scanLastPts = scan.lastPts;
    const base = Number.isNaN(st.tracker.basePts) ? st.firstPts : st.tracker.basePts;
    // Skipped frames must be numbered: that takes the frame step, and a resumed session's decoder
    // must have placed itself (its first frames are known only by their keyframe).
    if (Number.isNaN(base) || !(st.ptsStep > 0)) return st.shedding ? 'skip' : 'feed';
    if (!st.shedding && st.continueFrom?.keyPts !== undefined && !(st.decoder && st.decoder.emitted > 0)) return 'feed';
    const budget = st.route.budgetMs;
    const now = Date.now();
    if (!st.shedding) {
      const chunkLate = !Number.isNaN(scan.lastPts) && now - (st.epochMs + (scan.lastPts - base) * 1000) > SHED_CHUNK_AGE_BUDGETS * budget;
      // Frames are still coming out, and all of them late for a second.
      // A decoder's first seconds do not count: ffmpeg's start (and many starting at once) is slow.
      const decoderLate =
        now - st.lateSince >= SHED_AFTER_MS && now - st.lastEmitAt < SHED_AFTER_MS && now - st.decoderStartedAt >= DECODER_WARMUP_MS && !!st.decoder && !st.decoder.isExited;
      if (!chunkLate && !decoderLate) return 'feed';
      st.shedding = true;
      st.shedSince = now;
      st.lateSince = Number.NaN;
      this.o.metrics.loadSheds.inc();
      log.once('info', `shed:${st.stream}`, 'stream fell behind its latency budget; skipping ahead to a fresh keyframe', { stream: st.stream, session: st.session, budgetMs: budget });
    }
    const shedFor = now - st.shedSince;
    const keyAge = now - (st.epochMs + (scan.keyPts - base) * 1000);
    if (keyAge <= (shedFor >= SHED_RELAX_MS ? budget : budget / 2) || shedFor >= SHED_GIVE_UP_MS) {
      // A fresh decoder starts with this chunk (the old one, if running, stops: its backlog is stale).
      st.shedding = false;
      return 'resume';
    }
    return 'skip';
  }

  /** Shedding: a running decoder is stopped (what it holds is never emitted). Idempotent. */
  private async stopForShedding(st: StreamState): Promise<void> {
    const decoder = st.decoder;
    if (decoder && !decoder.isExited) {
      st.shedKill = true;
      await decoder.kill();
      // Frames still in its output pipe are emitted first: number the next decoder after them.
      await decoder.framesDone;
      st.shedKill = false;
      st.lateSince = Number.NaN;
      this.setNumbering(st, decoder.continuation() as Numbering);
    }
    st.gapReason = 'overload';
  }

  /**
   * After skipping: the next decoder numbers its first frame by the time elapsed since the last
   * frame emitted (the skipped ones become the gap). With fewer than two frames emitted in the
   * session, the step and (if none) the first frame come from the chunks' headers.
   */
  private anchorNumbering(st: StreamState): void {
    const cf = st.continueFrom;
    if (cf?.frameDur! > 0 && cf?.lastIndex !== undefined) return;
    if (cf?.lastIndex !== undefined && cf.lastIndex >= 0 && cf.lastPts !== undefined && !Number.isNaN(cf.lastPts)) {
      this.setNumbering(st, { lastIndex: cf.lastIndex, lastPts: cf.lastPts, frameDur: st.ptsStep });
    } else {
      if (Number.isNaN(st.tracker.basePts)) st.tracker.basePts = st.firstPts;
      this.setNumbering(st, { lastIndex: -1, lastPts: st.tracker.basePts - st.ptsStep, frameDur: st.ptsStep });
    }
  }

  /** The next decoder continues numbering from `n`; so does a `continue` resume after a restart. */
  private setNumbering(st: StreamState, n: Numbering): void {
    st.continueFrom = n;
    st.tracker.ending = n;
  }

  /**
   * A skipped chunk's frames are reported `overload` at once, numbered from their times; the
   * tracker keeps the chunk as the session's resume point until the report is published.
   */
  private reportSkipped(st: StreamState, chunk: Chunk, lastPts: number): void {
    const tracker = st.tracker;
    // Still live while skipping; with nothing unfinished, it resumes at its next chunk.
    tracker.closed = true;
    tracker.partition.sessions.add(tracker);
    tracker.partition.forgetEnded(st.stream, st.session);
    this.o.metrics.chunksShed.inc();
    const cf = st.continueFrom as Numbering;
    const last = Number.isNaN(lastPts) ? cf.lastIndex : cf.lastIndex + Math.round((lastPts - cf.lastPts) / cf.frameDur);
    tracker.chunkSkipped(chunk.seq, chunk.offset, cf.lastIndex + 1, last, cf.lastPts, cf.frameDur);
    if (last <= cf.lastIndex) return;
    this.o.drops.drop(tracker, st.stream, st.session, cf.lastIndex + 1, last, 'overload');
    this.setNumbering(st, { lastIndex: last, lastPts, frameDur: cf.frameDur });
  }

  private async endSession(st: StreamState): Promise<void> {
    this.streams.delete(st.stream);
    st.tracker.replaced = true;
    if (st.decoder) {
      await st.decoder.close();
      await st.decoder.framesDone;
    }
    // Also when the decoder had died earlier: the old session's open window closes now.
    await st.route.sessionEnded(st.stream, st.session);
  }

  private closeIdle(): void {
    const cutoff = Date.now() - this.o.config.idleTimeoutMs;
    for (const st of this.streams.values()) {
      if (st.decoder && !st.decoder.isExited && st.lastChunkAt < cutoff) {
        const p = st.decoder.close().finally(() => this.closing.delete(p));
        this.closing.add(p);
      } else if (!st.idleEnded && st.lastChunkAt < cutoff && (!st.decoder || st.decoder.isExited)) {
        // Went quiet while skipping, or after its decoder died: its open windows close.
        st.idleEnded = true;
        st.shedding = false;
        const p = (st.decoder ? st.decoder.framesDone : Promise.resolve()).then(() => st.route.sessionEnded(st.stream, st.session)).finally(() => this.closing.delete(p));
        this.closing.add(p);
      }
    }
  }

  /**
   * Shutdown: stops every decoder without flushing. Frames still inside a decoder were never
   * emitted, so nothing is lost: each live session keeps its keyframe resume point, and the next
   * run re-decodes from there (a flush could emit a frame cut short at a chunk boundary).
   * Frames already emitted drain through the pipeline. Idempotent.
   */
  async close(): Promise<void> {
    this.shuttingDown = true;
    clearInterval(this.idleTimer);
    await Promise.all([...this.streams.values()].map((st) => st.decoder?.kill()));
    await Promise.all(this.closing);
  }
}
