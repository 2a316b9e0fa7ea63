/**
 * What the dashboard's WebSocket needs beyond labels and events (docs/contracts.md "Dashboard"):
 * about once a second a `stats` message per stream (from the health tracker) and one `pipeline`
 * message (batch sizes, Triton queue and compute time per model, decoders, consumer lag), sent
 * only while a client asked for stats; and a `hello` with the active alerts when one connects.
 */
import type { Metrics } from '../telemetry/metrics.js';
import type { HealthTracker } from '../health/tracker.js';
import type { AlertEngine } from '../alerts/engine.js';
import type { ClientSend, DashboardClients } from '../core/sink.js';
import type { ConsumerLag } from '../core/source.js';

export interface PipelineStats {
  type: 'pipeline';
  ts: number;
  name: string;
  models: { model: string; batchMean: number | undefined; batches: number; queueMs: number | undefined; computeMs: number | undefined; queuedFrames: number | undefined }[];
  decoders: number | undefined;
  /** Input the source has not committed yet (the Kafka source: its consumer group's), summed over partitions (undefined: not known yet). */
  lag: number | undefined;
  streams: number;
}

export interface DashboardHubOptions {
  name: string;
  models: string[];
  /** The sink whose clients get the messages. */
  ws: DashboardClients;
  health: HealthTracker;
  alerts: AlertEngine;
  metrics: Metrics;
  /** The source's lag, when it can say (undefined: the message's `lag` stays unknown). */
  lag?: ConsumerLag;
  intervalMs?: number;
}

type MetricValues = { values: { value: number; labels: Record<string, string | number>; metricName?: string }[] };

export class DashboardHub {
  private timer: NodeJS.Timeout | undefined;
  private lastBatch = new Map<string, { sum: number; count: number }>();
  private lag: number | undefined;
  private lagAt = 0;
  private busy = false;

  constructor(private readonly o: DashboardHubOptions) {
    o.ws.onStatsClient = (send) => this.hello(send);
  }

  start(): void {
    this.timer = setInterval(() => void this.beat(), this.o.intervalMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The state a new dashboard starts from; the sink passes on only what the client may see. */
  private hello(send: ClientSend): void {
    send(null, JSON.stringify({ type: 'hello', name: this.o.name, models: this.o.models, ts: Date.now() }));
    for (const a of this.o.alerts.active()) send(a.stream, JSON.stringify(a));
    for (const s of this.o.health.stats()) send(s.stream, JSON.stringify(s));
  }

  private async beat(): Promise<void> {
    if (this.busy || !this.o.ws.hasStatsClients) return;
    this.busy = true;
    try {
      for (const s of this.o.health.stats()) this.o.ws.sendStats(s.stream, JSON.stringify(s));
      this.o.ws.sendStats(undefined, JSON.stringify(await this.pipelineStats()));
    } finally {
      this.busy = false;
    }
  }

  async pipelineStats(): Promise<PipelineStats> {
    const m = this.o.metrics;
    const [batch, queue, infer, queued, decoders] = (await Promise.all([
      m.batchSize.get(),
      m.tritonQueueSeconds.get(),
      m.tritonComputeInferSeconds.get(),
      m.queueFrames.get(),
      m.decodersActive.get(),
    ])) as unknown as MetricValues[];
    const byModel = (mv: MetricValues, model: string, name?: string) => mv.values.find((v) => v.labels.model === model && (name === undefined || v.metricName === name))?.value;
    const models = this.o.models.map((model) => {
      const sum = byModel(batch!, model, 'framewire_batch_size_frames_sum') ?? 0;
      const count = byModel(batch!, model, 'framewire_batch_size_frames_count') ?? 0;
      const prev = this.lastBatch.get(model) ?? { sum: 0, count: 0 };
      this.lastBatch.set(model, { sum, count });
      const batches = count - prev.count;
      const q = byModel(queue!, model);
      const c = byModel(infer!, model);
      return {
        model,
        batchMean: batches > 0 ? Math.round(((sum - prev.sum) / batches) * 10) / 10 : undefined,
        batches,
        queueMs: q === undefined ? undefined : Math.round(q * 10_000) / 10,
        computeMs: c === undefined ? undefined : Math.round(c * 10_000) / 10,
        queuedFrames: byModel(queued!, model),
      };
    });
    void this.refreshLag();
    return { type: 'pipeline', ts: Date.now(), name: this.o.name, models, decoders: decoders!.values[0]?.value, lag: this.lag, streams: this.o.health.size };
  }

  /** The source's lag, asked every 5 s while a dashboard is open. */
  private async refreshLag(): Promise<void> {
    const source = this.o.lag;
    if (!source || Date.now() - this.lagAt < 5000) return;
    this.lagAt = Date.now();
    try {
      this.lag = await source.lag();
    } catch {
      /* unknown this time */
    }
  }
}
