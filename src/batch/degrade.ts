/**
 * Per-stream priority, and degrading by sampling before dropping (live mode). Every `intervalMs`
 * the controller is given what the pipeline measured: each stream's frame rate, its decoder's CPU
 * time per frame and its lane's inference cost per frame (the latency estimator at the lane's
 * estimate), the frames waiting for inference, and the `deadline` / `overload` drops since the
 * last tick. From them it estimates the load, as a share of what the machine can do in a second:
 *
 *   load = Σ decoded fps × decodeMs / (1000 × cores)     decoding, spread over the cores
 *        + Σ min(fps, rate) / lane capacity            the frames kept, against the most a lane
 *                                                      labels a second (full batches back to back
 *                                                      at the estimator's time for one)
 *        + queued frames' inference time / intervalMs  the backlog must clear within a tick
 *
 * With the rates' part of it above `highWater` the lowest-priority class that can still go lower
 * is halved, as many halvings as the estimate says are needed; with only the backlog, or late
 * drops above `lateDropShare` of the frames kept (the estimate is too optimistic), one halving,
 * and another no sooner than SETTLE_TICKS later (the step shows late in them). Each stream's rate
 * floored at `minFps`; `critical` is touched only once every `normal` and `background` stream is
 * at its floor, and only for its own late drops (never for the estimate alone). Below `lowWater` for `restoreAfterMs`, with no late drops and the estimate after
 * the step still below `lowWater`, the highest-priority degraded class is doubled back, one step
 * at a time. A degrade soon after a restore doubles the wait before the next restore (no flapping).
 *
 * Pure: the caller passes the clock and the signals, so it is tested with a fake one.
 */
import { z } from 'zod/v4';
import { regexField } from '../config/regex.js';

import { PRIORITIES, type Priority } from '../core/priority.js';
export { PRIORITIES, type Priority };

export const degradeSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .optional()
      .describe('Live mode only: when the measured load is above what the machine can do, lower the sampling rate of the lowest-priority streams (announced as `degraded` events; their skipped frames are reported `sampled` with `"degraded": true`) before frames miss their deadlines, and restore it when the load falls. Default: on once `priority.streams` names a stream `critical` or `background` (naming one asks for it to be kept, or given up, first), off otherwise.'),
    intervalMs: z.int().min(50).default(250).describe('How often the load is measured and rates decided, ms.'),
    minFps: z.number().positive().default(1).describe('A degraded stream keeps at least this many frames per second. A stream degraded to at most one frame per keyframe interval decodes only its keyframes, which also saves the decoder\'s CPU.'),
    highWater: z.number().gt(0).default(0.85).describe('Estimated load (share of the machine, 1 = all of it) above which rates are lowered.'),
    lowWater: z.number().gt(0).default(0.5).describe('Estimated load, after the step, below which a degraded class gets its rate doubled back.'),
    lateDropShare: z.number().min(0).max(1).default(0.005).describe('Share of the kept frames dropped as `deadline` or `overload` in a tick that counts as overload whatever the estimate says.'),
    restoreAfterMs: z.int().min(0).default(2000).describe('How long the load must stay below `lowWater` (and no late drops) before each restoring step, ms; doubled (up to 8×) when a degrade follows a restore within twice this.'),
    warmupMs: z.int().min(0).default(2000).describe("A session's late drops in its first ms (its decoder starting) do not count as overload."),
    cores: z.int().min(1).optional().describe('Cores decoding is spread over in the estimate; default: the cores this process may use.'),
  })
  .superRefine((d, ctx) => {
    if (d.lowWater >= d.highWater) ctx.addIssue({ code: 'custom', path: ['lowWater'], message: `${d.lowWater} is not below highWater (${d.highWater}): rates would go up and down in turn` });
  })
  .describe('Degrading by sampling before dropping.');

export const prioritySchema = z
  .strictObject({
    streams: z
      .array(
        z.strictObject({
          streams: regexField('Regular expression of stream ids.'),
          priority: z.enum(PRIORITIES).describe("critical: its frames go first in a batch, and it is degraded only for its own late frames once every other stream is at its floor; normal; background: degraded first."),
        }),
      )
      .default([])
      .describe("Per-stream priority; the first matching entry wins; default: `normal`."),
    niceDecoders: z
      .boolean()
      .default(true)
      .describe('Run the decoders of each class below the highest one `streams` names 4 niceness steps lower (critical 0, normal 4, background 8), so that on a busy machine the OS gives critical streams\' decoders the cores first. With no entry, every decoder runs as before.'),
    degrade: degradeSchema.prefault({}),
  })
  .describe('Which streams keep their frames when the machine cannot label them all.');

export type PriorityConfig = z.infer<typeof prioritySchema>;

/** Whether the controller decides rates: as set, else on once any stream has a priority other than normal. */
export function degradeOn(c: PriorityConfig): boolean {
  return c.degrade.enabled ?? c.streams.some((e) => e.priority !== 'normal');
}
export type DegradeConfig = z.infer<typeof degradeSchema>;

/** Compiles the entries' patterns once; the result is a stream's priority. */
export function priorityRules(c: PriorityConfig): (stream: string) => Priority {
  const compiled = c.streams.map((e) => ({ pattern: new RegExp(e.streams), priority: e.priority }));
  return (stream) => compiled.find((e) => e.pattern.test(stream))?.priority ?? 'normal';
}

/** One active stream as measured this tick. */
export interface StreamLoad {
  stream: string;
  session: string;
  priority: Priority;
  /** Frames per second the stream sends (NaN: not measured yet). */
  fps: number;
  /** Its decoder's CPU time per frame, ms (NaN: not measured yet). */
  decodeMs: number;
  /** Its lane's inference cost per frame, ms (NaN: no request answered yet); used when its lane's cost is not given. */
  inferMs: number;
  /** Its lane's model (LoadSignals.lanes). */
  model?: string;
  /** Its keyframe interval, ms (NaN: not seen yet): degraded to a frame a GOP or less, only keyframes are decoded. */
  gopMs?: number;
}

/** A model lane: its service time by batch size (the latency estimator). */
export interface LaneCost {
  model: string;
  maxBatch: number;
  /** Service time of a request of n frames, ms. */
  estimate(n: number): number;
}

/**
 * The frames a second a lane can label at most: full batches back to back (batches grow while
 * the server is busy, so that is where a lane under load goes). The estimator measures service
 * time (a request's latency less its wait behind the one before), so requests in flight
 * together do not multiply it.
 */
export function laneCapacityFps(l: LaneCost): number {
  return (1000 * l.maxBatch) / Math.max(1e-3, l.estimate(l.maxBatch));
}

/** The lane's share of its capacity that `fps` frames a second take, in ms a second. */
export function laneBusyMs(l: LaneCost, fps: number): number {
  return fps > 0 ? (1000 * fps) / laneCapacityFps(l) : 0;
}

export interface LoadSignals {
  now: number;
  streams: StreamLoad[];
  /** The lanes' costs; a stream whose `model` is one of them is priced by it, otherwise at its `inferMs`. */
  lanes?: LaneCost[];
  /** Inference cost of the frames waiting for a batch, ms. */
  backlogMs: number;
  /** Frames dropped as `deadline` or `overload` since the last tick. */
  lateDrops: number;
  /** Of them, frames of critical streams: only they can make critical streams degrade (the estimate alone never does). */
  criticalLateDrops?: number;
}

export type DegradeReason = 'demand' | 'backlog' | 'drops' | 'load-fell';

/** A stream's sampling rate changed. */
export interface RateChange {
  stream: string;
  session: string;
  priority: Priority;
  /** Frames per second now classified; `fullRate` when restored. */
  rate: number;
  /** The stream's own frame rate. */
  fullRate: number;
  /** rate / fullRate. */
  share: number;
  restored: boolean;
  reason: DegradeReason;
  /** The estimated load that decided it. */
  load: number;
}

/** Lowest priority first: the order classes are degraded in. */
const DEGRADE_ORDER: readonly Priority[] = ['background', 'normal', 'critical'];
/** Halvings beyond which no class goes (1/1024 of its rate: every stream is at its floor long before). */
const MAX_LEVEL = 10;
const MAX_BACKOFF = 8;
/** Ticks after a step before drops alone may take another. */
const SETTLE_TICKS = 4;
/** Late drops this many times `lateDropShare`: two halvings at once. */
const MANY_LATE = 10;
/** Assumed until a stream's rate is measured. */
const DEFAULT_FPS = 25;

interface StreamState {
  /** Halvings in effect for this stream (its class's, capped where the stream reaches its floor). */
  level: number;
  rate: number;
  seen: number;
}

export class DegradeController {
  /** Halvings per class. */
  private readonly levels: Record<Priority, number> = { critical: 0, normal: 0, background: 0 };
  /** Why each class last moved (what a stream joining it is told). */
  private readonly reasons: Record<Priority, DegradeReason> = { critical: 'demand', normal: 'demand', background: 'demand' };
  private readonly streams = new Map<string, StreamState>();
  private calmSince = Number.NaN;
  private lastRestoreAt = Number.NEGATIVE_INFINITY;
  private lastDegradeAt = Number.NEGATIVE_INFINITY;
  private backoff = 1;
  private tickNo = 0;
  /** The load estimated at the last tick, with the rates then in effect. */
  load = 0;
  /** Its parts, at the last estimate made (decoding; inference). */
  decodeLoad = 0;
  inferLoad = 0;
  private readonly parts = [0, 0];
  /** This tick, critical streams' own frames missed their deadlines. */
  private criticalLate = false;
  /** Consecutive ticks with critical streams' frames missing (a backlog draining misses for a while by itself). */
  private criticalLateTicks = 0;
  /** Times a class was lowered / raised. */
  degrades = 0;
  restores = 0;

  constructor(private readonly c: DegradeConfig & { cores: number }) {}

  /** The classified rate of a stream, fps; undefined: every frame its sampling rule keeps. */
  rateOf(stream: string): number | undefined {
    const s = this.streams.get(stream);
    return s && s.level > 0 ? s.rate : undefined;
  }

  levelOf(priority: Priority): number {
    return this.levels[priority];
  }

  /** The load estimate with every stream at its full rate. */
  fullLoad(sig: LoadSignals): number {
    const decode = this.parts[0]!;
    const infer = this.parts[1]!;
    const full = this.estimate(sig, { critical: 0, normal: 0, background: 0 });
    this.parts[0] = decode;
    this.parts[1] = infer;
    return full;
  }

  /** Estimates the load with the rates in effect, deciding nothing (degradation off: figures for `framewire plan`). */
  measure(sig: LoadSignals): number {
    this.load = this.estimate(sig, this.levels);
    this.decodeLoad = this.parts[0]!;
    this.inferLoad = this.parts[1]!;
    return this.load;
  }

  tick(sig: LoadSignals): RateChange[] {
    const tick = ++this.tickNo;
    for (const st of sig.streams) {
      let s = this.streams.get(st.stream);
      if (!s) this.streams.set(st.stream, (s = { level: 0, rate: Number.NaN, seen: tick }));
      s.seen = tick;
    }
    for (const [stream, s] of this.streams) if (s.seen !== tick) this.streams.delete(stream);

    this.load = this.estimate(sig, this.levels);
    this.decodeLoad = this.parts[0]!;
    this.inferLoad = this.parts[1]!;
    // What the rates decide; a backlog clears by itself once the rates fit.
    const steady = this.load - sig.backlogMs / this.c.intervalMs;
    let kept = 0;
    for (const st of sig.streams) kept += Math.min(fpsOf(st), this.rateAt(st, this.levels[st.priority]));
    const tickSeconds = this.c.intervalMs / 1000;
    const late = sig.lateDrops > 0 && sig.lateDrops > this.c.lateDropShare * kept * tickSeconds;
    let criticalKept = 0;
    for (const st of sig.streams) if (st.priority === 'critical') criticalKept += Math.min(fpsOf(st), this.rateAt(st, this.levels.critical));
    const criticalDrops = sig.criticalLateDrops ?? 0;
    this.criticalLate = criticalDrops > 0 && criticalDrops > this.c.lateDropShare * criticalKept * tickSeconds;
    this.criticalLateTicks = this.criticalLate ? this.criticalLateTicks + 1 : 0;
    const demand = steady > this.c.highWater;
    // Drops or a backlog alone: the frames already queued when the last step was taken may still
    // miss, so a step shows in them only after a while.
    const pressure = late || this.load > this.c.highWater;
    const overloaded = demand || (pressure && sig.now - this.lastDegradeAt >= SETTLE_TICKS * this.c.intervalMs);
    const settled = sig.now - this.lastDegradeAt >= SETTLE_TICKS * this.c.intervalMs;
    if (overloaded) {
      this.calmSince = Number.NaN;
      const levels = { ...this.levels };
      let steps = 0;
      let reason: DegradeReason = demand ? 'demand' : late ? 'drops' : 'backlog';
      if (demand) {
        // As many halvings as the estimate says it takes (critical streams never for it alone).
        while (this.lower(levels, sig, false)) {
          steps++;
          if (this.estimate(sig, levels) - sig.backlogMs / this.c.intervalMs <= this.c.highWater) break;
        }
        if (steps > 0 && this.estimate(sig, levels) - sig.backlogMs / this.c.intervalMs >= steady - 1e-9) {
          // No number of halvings shows in the estimate (a cost not measured yet): blind, so one
          // step at most, as seldom as for drops.
          Object.assign(levels, this.levels);
          steps = settled && this.lower(levels, sig, false) ? 1 : 0;
        }
      }
      if (steps === 0 && settled && pressure) {
        // The drops or the backlog: one halving (two when many frames miss).
        const many = sig.lateDrops > MANY_LATE * this.c.lateDropShare * kept * tickSeconds;
        for (let i = 0; i < (many ? 2 : 1) && this.lower(levels, sig, false); i++) steps++;
        // Critical streams only when nothing else could go lower already, and only for their own
        // frames missing for SETTLE_TICKS ticks in a row with no queue left to explain it: what was
        // queued before the others went down (a start, a burst) drains by itself and must not cost
        // critical streams their rate. Missing for 3× as long, a queue or not, it is real.
        const drained = sig.backlogMs < this.c.intervalMs / 4;
        const criticalDue = this.criticalLateTicks >= (drained ? SETTLE_TICKS : 3 * SETTLE_TICKS);
        if (steps === 0 && criticalDue && this.lower(levels, sig, true)) steps = 1;
        if (steps > 0) reason = late ? 'drops' : 'backlog';
      }
      if (steps > 0) {
        for (const p of PRIORITIES) if (levels[p] !== this.levels[p]) this.reasons[p] = reason;
        Object.assign(this.levels, levels);
        this.degrades += steps;
        this.lastDegradeAt = sig.now;
        // Restored not long ago and overloaded again: wait longer before the next restore.
        if (sig.now - this.lastRestoreAt < 2 * this.c.restoreAfterMs * this.backoff) this.backoff = Math.min(MAX_BACKOFF, this.backoff * 2);
      }
    } else if (pressure) {
      this.calmSince = Number.NaN;
    } else if (this.levels.critical > 0) {
      // Critical streams were lowered only for their own late frames: they come back a step at a
      // time once no frame has missed for restoreAfterMs and the step fits under highWater, not
      // only once the whole load is below lowWater (the others, at their floor, may keep it above
      // that for good).
      if (Number.isNaN(this.calmSince)) this.calmSince = sig.now;
      if (sig.now - this.calmSince >= this.c.restoreAfterMs * this.backoff) {
        const levels = { ...this.levels, critical: this.levels.critical - 1 };
        if (this.estimate(sig, levels) <= this.c.highWater) {
          this.reasons.critical = 'load-fell';
          Object.assign(this.levels, levels);
          this.restores++;
          this.lastRestoreAt = sig.now;
          this.calmSince = sig.now;
        }
      }
    } else if (this.load < this.c.lowWater) {
      if (Number.isNaN(this.calmSince)) this.calmSince = sig.now;
      if (sig.now - this.calmSince >= this.c.restoreAfterMs * this.backoff) {
        const levels = { ...this.levels };
        if (this.raise(levels) && this.estimate(sig, levels) < this.c.lowWater) {
          for (const p of PRIORITIES) if (levels[p] !== this.levels[p]) this.reasons[p] = 'load-fell';
          Object.assign(this.levels, levels);
          this.restores++;
          this.lastRestoreAt = sig.now;
          this.calmSince = sig.now; // the next step waits as long again
        }
      }
      // Calm for long after the last restore: the flapping is over.
      if (sig.now - this.lastRestoreAt > 4 * this.c.restoreAfterMs * MAX_BACKOFF) this.backoff = 1;
    } else {
      this.calmSince = Number.NaN;
    }
    return this.announce(sig);
  }

  /** Streams whose effective level changed (a class moved, or a stream joined a degraded class). */
  private announce(sig: LoadSignals): RateChange[] {
    const changes: RateChange[] = [];
    for (const st of sig.streams) {
      const s = this.streams.get(st.stream)!;
      const level = this.effectiveLevel(st, this.levels[st.priority]);
      if (level === s.level) continue;
      const full = fpsOf(st);
      s.level = level;
      s.rate = level === 0 ? full : this.rateAt(st, level);
      changes.push({ stream: st.stream, session: st.session, priority: st.priority, rate: round2(s.rate), fullRate: round2(full), share: round2(s.rate / full), restored: level === 0, reason: this.reasons[st.priority], load: round2(this.load) });
    }
    return changes;
  }

  /** One halving of the lowest class that can still go lower; false when every stream is at its floor. */
  private lower(levels: Record<Priority, number>, sig: LoadSignals, critical: boolean): boolean {
    for (const p of DEGRADE_ORDER) {
      if (levels[p] >= MAX_LEVEL) continue;
      if (p === 'critical' && !critical) continue;
      if (sig.streams.some((st) => st.priority === p && this.rateAt(st, levels[p]) > this.c.minFps + 1e-9)) {
        levels[p]++;
        return true;
      }
    }
    return false;
  }

  /** One doubling of the highest degraded class. */
  private raise(levels: Record<Priority, number>): boolean {
    for (let i = DEGRADE_ORDER.length - 1; i >= 0; i--) {
      const p = DEGRADE_ORDER[i]!;
      if (levels[p] > 0) {
        levels[p]--;
        return true;
      }
    }
    return false;
  }

  private estimate(sig: LoadSignals, levels: Record<Priority, number>): number {
    let decode = 0;
    let infer = 0;
    const laneFps = sig.lanes ? new Map<string, number>() : undefined;
    for (const st of sig.streams) {
      const fps = fpsOf(st);
      const rate = this.rateAt(st, levels[st.priority]);
      // Degraded to a keyframe a GOP or less, the stream decodes its keyframes only (decode/sampling.ts).
      const decoded = levels[st.priority] > 0 && st.gopMs! > 0 && 1000 / rate >= 0.9 * st.gopMs! ? Math.min(fps, 1000 / st.gopMs!) : fps;
      if (st.decodeMs > 0) decode += decoded * st.decodeMs;
      const kept = Math.min(fps, rate);
      if (laneFps && st.model !== undefined && sig.lanes!.some((l) => l.model === st.model)) laneFps.set(st.model, (laneFps.get(st.model) ?? 0) + kept);
      else if (st.inferMs > 0) infer += kept * st.inferMs;
    }
    if (laneFps) for (const l of sig.lanes!) infer += laneBusyMs(l, laneFps.get(l.model) ?? 0);
    this.parts[0] = decode / (1000 * this.c.cores);
    this.parts[1] = infer / 1000;
    return this.parts[0] + this.parts[1] + sig.backlogMs / this.c.intervalMs;
  }

  /** The rate of a stream at `level` halvings, floored at minFps (never above its own rate). */
  private rateAt(st: StreamLoad, level: number): number {
    const fps = fpsOf(st);
    if (level === 0) return fps;
    return Math.min(fps, Math.max(this.c.minFps, fps / 2 ** level));
  }

  /** Its class's level, less the halvings that would take it below its floor. */
  private effectiveLevel(st: StreamLoad, level: number): number {
    const fps = fpsOf(st);
    let l = 0;
    while (l < level && fps / 2 ** l > this.c.minFps + 1e-9) l++;
    return l;
  }
}

function fpsOf(st: StreamLoad): number {
  return st.fps > 0 ? st.fps : DEFAULT_FPS;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
