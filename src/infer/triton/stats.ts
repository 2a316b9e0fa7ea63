/**
 * Turns Triton's ModelStatistics (running totals since the server started) into per-interval
 * figures: every poll, the difference to the previous poll gives the requests served in the
 * interval and the mean time each spent queued and in compute_input/infer/output. Summed over
 * endpoints; an endpoint whose totals went backwards (restarted) starts a new baseline.
 */
import { log } from '../../core/log.js';
import type { Metrics } from '../../telemetry/metrics.js';
import type { TritonClient } from './client.js';
import type { ModelStatistics, StatisticDuration } from './types.js';

export const PHASES = ['queue', 'compute_input', 'compute_infer', 'compute_output'] as const;
export type Phase = (typeof PHASES)[number];

/** What one interval looked like for one model. */
export interface IntervalStats {
  model: string;
  /** Successful requests completed in the interval. */
  requests: number;
  /** Batch elements (frames) inferred in the interval. */
  inferences: number;
  /** Mean seconds per request spent in each phase during the interval (0 when no request). */
  seconds: Record<Phase, number>;
  /** Mean server-side seconds per successful request (Triton's `success` duration). */
  successSeconds: number;
}

interface Totals {
  success: StatisticDuration;
  inferenceCount: number;
  phases: Record<Phase, StatisticDuration>;
}

const NONE: StatisticDuration = { count: 0, ns: 0 };

/** Proto3 message fields may be absent (null): a model that never ran has nothing to count. */
function totalsOf(s: ModelStatistics): Totals {
  const i = s.inference_stats;
  return {
    success: i?.success ?? NONE,
    inferenceCount: s.inference_count,
    phases: { queue: i?.queue ?? NONE, compute_input: i?.compute_input ?? NONE, compute_infer: i?.compute_infer ?? NONE, compute_output: i?.compute_output ?? NONE },
  };
}

export interface StatsPollerOptions {
  clients: () => readonly TritonClient[];
  /** The models to poll, or a function giving them at each poll (lanes can switch models on a reload). */
  models: readonly string[] | (() => readonly string[]);
  intervalMs: number;
  metrics?: Metrics;
}

export class StatsPoller {
  /** Previous totals, by endpoint url then model. */
  private readonly last = new Map<string, Map<string, Totals>>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<IntervalStats[]> | undefined;

  constructor(private readonly o: StatsPollerOptions) {}

  start(): void {
    if (this.timer || this.o.intervalMs <= 0) return;
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Polls now; returns the interval since the previous poll (the first poll only sets the baseline). */
  poll(): Promise<IntervalStats[]> {
    if (!this.polling) this.polling = this.doPoll().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async doPoll(): Promise<IntervalStats[]> {
    const sums = new Map<string, { requests: number; inferences: number; success: number; ns: Record<Phase, number> }>();
    const models = typeof this.o.models === 'function' ? this.o.models() : this.o.models;
    for (const m of models) sums.set(m, { requests: 0, inferences: 0, success: 0, ns: { queue: 0, compute_input: 0, compute_infer: 0, compute_output: 0 } });
    await Promise.all(
      this.o.clients().map(async (client) => {
        let byModel = this.last.get(client.url);
        if (!byModel) this.last.set(client.url, (byModel = new Map()));
        for (const model of models) {
          let stats: ModelStatistics[];
          try {
            stats = await client.modelStatistics(model);
          } catch (err) {
            log.once('warn', `triton-stats:${client.url}:${model}`, 'polling Triton model statistics failed', { endpoint: client.url, model, err });
            continue;
          }
          // All versions of the model together.
          const now: Totals = { success: { count: 0, ns: 0 }, inferenceCount: 0, phases: { queue: { count: 0, ns: 0 }, compute_input: { count: 0, ns: 0 }, compute_infer: { count: 0, ns: 0 }, compute_output: { count: 0, ns: 0 } } };
          for (const s of stats) {
            const t = totalsOf(s);
            now.success.count += t.success.count;
            now.success.ns += t.success.ns;
            now.inferenceCount += t.inferenceCount;
            for (const p of PHASES) {
              now.phases[p].count += t.phases[p].count;
              now.phases[p].ns += t.phases[p].ns;
            }
          }
          const prev = byModel.get(model);
          byModel.set(model, now);
          if (!prev || now.success.count < prev.success.count) continue; // baseline, or the server restarted
          const sum = sums.get(model)!;
          sum.requests += now.success.count - prev.success.count;
          sum.success += now.success.ns - prev.success.ns;
          sum.inferences += now.inferenceCount - prev.inferenceCount;
          for (const p of PHASES) sum.ns[p] += now.phases[p].ns - prev.phases[p].ns;
        }
      }),
    );
    const out: IntervalStats[] = [];
    for (const [model, s] of sums) {
      const per = (ns: number) => (s.requests > 0 ? ns / s.requests / 1e9 : 0);
      const seconds = { queue: per(s.ns.queue), compute_input: per(s.ns.compute_input), compute_infer: per(s.ns.compute_infer), compute_output: per(s.ns.compute_output) };
      out.push({ model, requests: s.requests, inferences: s.inferences, seconds, successSeconds: per(s.success) });
      const m = this.o.metrics;
      if (m) {
        m.tritonQueueSeconds.set({ model }, seconds.queue);
        m.tritonComputeInputSeconds.set({ model }, seconds.compute_input);
        m.tritonComputeInferSeconds.set({ model }, seconds.compute_infer);
        m.tritonComputeOutputSeconds.set({ model }, seconds.compute_output);
        m.tritonServerRequests.inc({ model }, s.requests);
      }
    }
    return out;
  }
}
