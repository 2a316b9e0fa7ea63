/**
 * Deadline-aware batching for one model. Frames wait in bounded per-stream queues; batches take
 * the frames with the earliest deadlines across streams (EDF), up to the model's batch limit.
 * How long to wait for more frames is chosen so the batch can still meet its earliest deadline,
 * given a live estimate of inference time. In `live` mode a frame that can no longer meet its
 * deadline is dropped before inference (`deadline`) and a full queue drops its oldest frame
 * (`overload`); in `replay` mode nothing is dropped and a full queue makes producers wait.
 *
 * The planning is pure (`plan(now)`), so it is tested with a fake clock.
 */
import type { Frame } from '../core/frame.js';
import type { LatencyEstimator } from './estimator.js';
import { Wakeup } from '../core/queue.js';

export type SchedulerDrop = 'deadline' | 'overload';

export interface BatcherOptions {
  maxBatch: number;
  maxWaitMs: number;
  mode: 'live' | 'replay';
  streamQueueFrames: number;
  queueFrames: number;
  marginMs: number;
  estimator: LatencyEstimator;
  /** Least-served streams first (after urgent frames); false: earliest deadline first only. Default true. */
  fairShares?: boolean;
  /**
   * Live: when nothing has been sent for this long, a frame the estimate calls infeasible but
   * whose deadline has not passed is sent anyway (a probe), so a stale, inflated estimate gets
   * corrected instead of dropping every frame forever. Default 500 ms.
   */
  probeMs?: number;
  /** A frame leaves without inference; the caller reports it and recycles its buffer. */
  drop(frame: Frame, reason: SchedulerDrop): void;
  /** A batch left for inference (queue-time metrics). */
  taken?(frames: Frame[]): void;
  /** Wall clock, ms (deadlines are Unix ms). */
  now?: () => number;
}

/** A FIFO of one stream session's frames (ring buffer: no allocation per frame). */
class FrameRing {
  private items: (Frame | undefined)[];
  private head = 0;
  length = 0;
  /** Frames of this queue sent to inference: under overload, the least-served stream goes first. */
  served = 0;
  constructor(capacity: number) {
    this.items = new Array(capacity);
  }
  get first(): Frame | undefined {
    return this.length ? this.items[this.head] : undefined;
  }
  push(f: Frame): void {
    if (this.length === this.items.length) {
      const grown: (Frame | undefined)[] = new Array(this.items.length * 2);
      for (let i = 0; i < this.length; i++) grown[i] = this.items[(this.head + i) % this.items.length];
      this.items = grown;
      this.head = 0;
    }
    this.items[(this.head + this.length) % this.items.length] = f;
    this.length++;
  }
  shift(): Frame | undefined {
    if (!this.length) return undefined;
    const f = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.items.length;
    this.length--;
    return f;
  }
}

export type Plan = { take: number } | { waitMs: number | undefined };

export class Batcher {
  readonly maxBatch: number;
  private readonly queues = new Map<string, FrameRing>();
  /** Round-robin order for equal deadlines. */
  private rr = 0;
  /** The lowest `served` of the streams in the latest batch: where a stream that was idle rejoins. */
  private servedLevel = 0;
  private total = 0;
  /** When the oldest waiting frame arrived (reset when a batch leaves). */
  private pendingSince = Number.NaN;
  private closed = false;
  /**
   * When the work already handed out is expected to be done (wall ms): a new request queues
   * behind it on the server, so deadlines are judged from there, not from now. Re-anchored at
   * every completion (`settled`), so a pessimistic estimate cannot push it ever further ahead.
   */
  private busyUntil = 0;
  /** When the last batch was handed out (wall ms). */
  private lastTakeAt = 0;
  /** Estimated service time of each batch handed out and not yet settled, oldest first. */
  private readonly inflight: number[] = [];
  private readonly itemArrived = new Wakeup();
  private readonly spaceWaiters: (() => void)[] = [];
  private readonly now: () => number;

  constructor(private readonly o: BatcherOptions) {
    this.maxBatch = o.maxBatch;
    this.now = o.now ?? Date.now;
  }

  get length(): number {
    return this.total;
  }

  /**
   * Adds a decoded frame. Live: never waits. Replay: waits while the queues are full (a promise
   * only then, so the decoder's read loop does not pay for an await per frame).
   */
  push(frame: Frame): boolean | Promise<boolean> {
    const key = frame.stream + '\u0000' + frame.session;
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = new FrameRing(Math.min(64, this.o.streamQueueFrames))));
    if (this.o.mode === 'replay') {
      if (this.full(q)) return this.pushWhenRoom(frame, q);
    } else {
      if (q.length >= this.o.streamQueueFrames) this.dropOldest(q, 'overload');
      if (this.total >= this.o.queueFrames) this.dropOldest(this.longest(), 'overload');
    }
    return this.enqueue(frame, q);
  }

  private full(q: FrameRing): boolean {
    return !this.closed && (q.length >= this.o.streamQueueFrames || this.total >= this.o.queueFrames);
  }

  private async pushWhenRoom(frame: Frame, q: FrameRing): Promise<boolean> {
    while (this.full(q)) await new Promise<void>((r) => this.spaceWaiters.push(r));
    return this.enqueue(frame, q);
  }

  private enqueue(frame: Frame, q: FrameRing): boolean {
    if (this.closed) return false;
    if (this.total === 0) this.pendingSince = this.now();
    // A stream that was idle does not bank priority: it rejoins at the least-served active level.
    if (q.length === 0 && q.served < this.servedLevel) q.served = this.servedLevel;
    q.push(frame);
    this.total++;
    this.itemArrived.wake();
    return true;
  }

  /** The next batch (EDF), or undefined once closed and drained. */
  async next(): Promise<Frame[] | undefined> {
    for (;;) {
      const p = this.plan(this.now());
      if ('take' in p) return this.take(p.take);
      if (this.closed) {
        if (this.total === 0) return undefined;
        return this.take(this.maxBatch);
      }
      await this.itemArrived.wait(p.waitMs === undefined ? undefined : Math.max(1, Math.ceil(p.waitMs)));
    }
  }

  /**
   * Decides, at time `now`, whether to send a batch and of how many frames, or how long to wait.
   * Drops (live mode) frames that cannot meet their deadline even in a batch of their own.
   */
  plan(now: number): Plan {
    const est = this.o.estimator;
    const start = Math.max(now, this.busyUntil);
    if (this.o.mode === 'live') {
      const soloDone = start + est.estimate(1) + this.o.marginMs;
      // Probe: spare frames that may still make it in reality; one of them goes alone.
      const spareAfter = this.inflight.length === 0 && now - this.lastTakeAt >= (this.o.probeMs ?? 500) ? now + this.o.marginMs : Infinity;
      for (const q of this.queues.values()) {
        while (q.first && q.first.deadlineTs < soloDone && q.first.deadlineTs <= spareAfter) this.dropOldest(q, 'deadline');
      }
    }
    if (this.total === 0) return { waitMs: undefined };
    if (this.o.mode === 'replay') {
      if (this.total >= this.maxBatch) return { take: this.maxBatch };
      // No deadlines: while the server is still busy with what it has, waiting costs nothing and
      // the batch grows (Triton's cost per frame falls with the batch size), until just before
      // the work in flight is expected to finish.
      let waitUntil = this.pendingSince + this.o.maxWaitMs;
      if (this.inflight.length > 0 && this.busyUntil - this.o.marginMs > waitUntil) waitUntil = this.busyUntil - this.o.marginMs;
      return now >= waitUntil ? { take: this.total } : { waitMs: waitUntil - now };
    }
    // Live: the largest batch that still finishes before its earliest deadline (EDF takes that frame first).
    const slack = this.earliestDeadline() - start - this.o.marginMs;
    let fit = Math.min(this.maxBatch, this.total);
    while (fit > 1 && est.estimate(fit) > slack) fit--;
    // More frames than can go in time, or a full batch: send now.
    if (fit < this.total || this.total >= this.maxBatch) return { take: fit };
    // Waiting for one more frame must still leave time for the larger batch to finish.
    let waitUntil = this.pendingSince + this.o.maxWaitMs;
    const latest = this.earliestDeadline() - est.estimate(Math.min(this.maxBatch, this.total + 1)) - this.o.marginMs - (start - now);
    if (latest < waitUntil) waitUntil = latest;
    if (now >= waitUntil) return { take: this.total };
    return { waitMs: waitUntil - now };
  }

  /**
   * Removes up to n frames. Each stream with frames waiting gets up to an equal share of the batch
   * before any stream gets more, so a busy (or early) stream cannot crowd the others out
   * (critical streams excepted: they are not capped). Within that, urgent frames go first (those
   * that could not wait for the next batch: left out, they would be dropped), then the stream of
   * higher priority (`rank`), then the stream served least so far, then the earliest deadline
   * (EDF), then round-robin. Any n frames the plan allows finish before the earliest deadline, so which
   * ones go is free: when not every waiting frame can make it, the streams share what can, instead
   * of a stream whose frames happen to arrive just after each batch losing most; and a frame that
   * could wait never displaces one that cannot.
   */
  take(n: number): Frame[] {
    const batch: Frame[] = [];
    const est = this.o.estimator;
    const fair = this.o.fairShares ?? true;
    const urgentBefore = Math.max(this.now(), this.busyUntil) + est.estimate(n) + est.estimate(1) + this.o.marginMs;
    const queues = [...this.queues.values()].filter((q) => q.length > 0);
    const quota = Math.ceil(n / Math.max(1, queues.length));
    const taken = new Map<FrameRing, number>();
    let level = Infinity;
    for (const capped of [true, false]) {
      while (batch.length < n && this.total > 0) {
        let best: FrameRing | undefined;
        let bestIdx = 0;
        for (let i = 0; i < queues.length; i++) {
          const idx = (this.rr + i) % queues.length;
          const q = queues[idx]!;
          const f = q.first;
          if (!f || (capped && (f.rank ?? 1) > 0 && (taken.get(q) ?? 0) >= quota)) continue;
          if (!best) {
            best = q;
            bestIdx = idx;
            continue;
          }
          const b = best.first!;
          if (!fair) {
            if (f.deadlineTs < b.deadlineTs) {
              best = q;
              bestIdx = idx;
            }
            continue;
          }
          const urgent = f.deadlineTs < urgentBefore;
          const bUrgent = b.deadlineTs < urgentBefore;
          const rank = f.rank ?? 1;
          const bRank = b.rank ?? 1;
          if (urgent !== bUrgent ? urgent : rank !== bRank ? rank < bRank : q.served < best.served || (q.served === best.served && f.deadlineTs < b.deadlineTs)) {
            best = q;
            bestIdx = idx;
          }
        }
        if (!best) break;
        batch.push(best.shift()!);
        if (best.served < level) level = best.served;
        best.served++;
        taken.set(best, (taken.get(best) ?? 0) + 1);
        this.total--;
        this.rr = (bestIdx + 1) % queues.length;
      }
    }
    if (level !== Infinity) this.servedLevel = level;
    this.afterRemoval();
    if (batch.length) {
      this.lastTakeAt = this.now();
      const est = this.o.estimator.estimate(batch.length);
      this.inflight.push(est);
      this.busyUntil = Math.max(this.now(), this.busyUntil) + est;
    }
    this.o.taken?.(batch);
    return batch;
  }

  /** A batch handed out earlier has finished (or failed): the server's backlog is what remains. */
  settled(): void {
    this.inflight.shift();
    let remaining = 0;
    for (const est of this.inflight) remaining += est;
    this.busyUntil = this.now() + remaining;
  }

  close(): void {
    this.closed = true;
    for (const w of this.spaceWaiters.splice(0)) w();
    this.itemArrived.wake();
  }

  private earliestDeadline(): number {
    let d = Infinity;
    for (const q of this.queues.values()) {
      const f = q.first;
      if (f && f.deadlineTs < d) d = f.deadlineTs;
    }
    return d;
  }

  private longest(): FrameRing {
    let best: FrameRing | undefined;
    for (const q of this.queues.values()) if (!best || q.length > best.length) best = q;
    return best!;
  }

  private dropOldest(q: FrameRing, reason: SchedulerDrop): void {
    const f = q.shift();
    if (!f) return;
    this.total--;
    this.o.drop(f, reason);
    this.afterRemoval();
  }

  private afterRemoval(): void {
    if (this.total === 0) this.pendingSince = Number.NaN;
    // Forget empty queues of ended sessions so the map stays bounded.
    if (this.queues.size > 64) for (const [k, q] of this.queues) if (q.length === 0) this.queues.delete(k);
    while (this.spaceWaiters.length && this.total < this.o.queueFrames) this.spaceWaiters.shift()!();
  }
}
