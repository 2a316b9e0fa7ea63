/**
 * A built topology, running. It owns the start order (infer lanes, then the HTTP listener, then
 * the sources, so a processor that cannot serve never joins its consumer group) and the two-phase
 * shutdown: stop intake, drain within the deadline (decoders flush, batches finish, labels
 * publish, offsets commit), then close sinks and connections; forced after the deadline.
 */
import { log } from '../core/log.js';
import type { Topology } from '../config/topology.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { HttpEndpoint } from '../telemetry/http.js';
import type { DecodeStage } from '../decode/sessions.js';
import type { TritonPool } from '../infer/triton/pool.js';
import type { StatsPoller } from '../infer/triton/stats.js';
import type { Sink } from '../core/sink.js';
import type { Source } from '../core/source.js';
import type { DropPublisher } from './drops.js';
import type { SharedKafka } from '../kafka/connections.js';
import type { Lane } from './lanes.js';
import { SHUTDOWN_STEP_MS, bounded, type Startup } from './lifecycle.js';
import type { FrameTracer } from '../telemetry/tracing.js';
import type { Monitor } from './monitor.js';
import { FramewireError } from '../core/errors.js';
import type { ModelReloader, ReloadResult } from './reload.js';
import type { DegradeLoop } from './degrade.js';

/** The parts the builder made; the running graph starts and stops them. */
export interface TopologyParts {
  topology: Topology;
  metrics: Metrics;
  pool: TritonPool;
  kafka: SharedKafka;
  http: HttpEndpoint;
  sinks: Sink[];
  drops: DropPublisher;
  lanes: Lane[];
  stats: StatsPoller | undefined;
  decode: DecodeStage;
  sources: Source[];
  /** Aborted after the drain (or when a start is cancelled): retry loops stop waiting. */
  abort: AbortController;
  /** The start-up deadline (the consumer group join counts against it). */
  startup: Startup;
  /** Stream health, alerts and the dashboard feed. */
  monitor: Monitor;
  /** Topology reloads (SIGHUP): lanes move to other models or versions (src/topology/reload.ts). */
  reloader: ModelReloader;
  /** Traces of sampled frames (telemetry.otlp); undefined: off. */
  tracer?: FrameTracer;
  /** Degrading by sampling under load (priority.degrade, live mode); undefined: off. */
  degrade?: DegradeLoop;
}

export class RunningTopology {
  private closing: Promise<void> | undefined;
  private started = false;

  constructor(private readonly p: TopologyParts) {}

  get metrics(): Metrics {
    return this.p.metrics;
  }

  get topology(): Topology {
    return this.p.topology;
  }

  async start(): Promise<void> {
    const { topology: t, lanes } = this.p;
    this.started = true;
    this.p.startup.check();
    for (const l of lanes) l.stage.start();
    this.p.stats?.start();
    this.p.degrade?.start();
    for (const l of lanes) this.p.decode.warm(l.spec.width, l.spec.height);
    await this.p.http.start();
    // Open alert episodes are read back before the first chunk is consumed.
    await this.p.monitor.start(this.p.sources);
    for (const s of this.p.sources) await this.p.startup.within(`Kafka at ${t.kafka.brokers.join(',')} (joining the consumer group)`, s.start());
    log.info('pipeline running', {
      topology: t.name,
      models: lanes.map(({ spec: s }) => `${s.name} ${s.clipFrames ? `${s.clipFrames}x` : ''}${s.width}x${s.height} batch<=${s.maxBatchSize}`),
      http: t.http.listen,
    });
    this.running = true;
  }

  /** Started all the way (sources joined). */
  private running = false;

  /** Applies a reloaded topology's model choices to the running lanes; rejects, changing nothing, when it cannot. */
  reload(next: Topology): Promise<ReloadResult> {
    if (!this.started || this.closing) return Promise.reject(new FramewireError('TOPOLOGY_INVALID', 'config', 'reload: the pipeline is not running'));
    return this.p.reloader.reload(next);
  }

  async notReadyReason(): Promise<string | undefined> {
    if (this.closing) return 'shutting down';
    if (!this.started || this.p.sources.some((s) => !s.isConsuming)) return 'not consuming (consumer group not joined)';
    try {
      if (this.p.pool.readyCount === 0) return 'no Triton endpoint is ready';
      const triton = this.p.pool.primary;
      for (const { stage: { spec } } of this.p.lanes) if (!(await triton.modelReady(spec.name, spec.requestVersion))) return `model ${spec.name} not ready`;
    } catch (err) {
      return `Triton unreachable: ${(err as Error).message}`;
    }
    return undefined;
  }

  /** Two-phase shutdown; idempotent. */
  close(drainTimeoutMs = this.p.topology.shutdown.drainTimeoutMs): Promise<void> {
    // A start still under way is cancelled: its waits end, nothing more joins the group.
    if (!this.running) this.p.abort.abort();
    this.closing ??= this.doClose(drainTimeoutMs);
    return this.closing;
  }

  private async doClose(drainTimeoutMs: number): Promise<void> {
    const p = this.p;
    const drain = async () => {
      for (const s of p.sources) await s.stopIntake();
      p.degrade?.stop();
      await p.decode.close();
      for (const l of p.lanes) l.batcher.close();
      await Promise.all(p.lanes.map((l) => l.stage.finished()));
      await p.drops.close();
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([drain().then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), drainTimeoutMs)))]);
    clearTimeout(timer);
    // Retries still waiting on a dead broker or server stop now; what they held stays uncommitted.
    p.abort.abort();
    if (timedOut) {
      log.warn('drain deadline passed; forcing shutdown', { drainTimeoutMs });
      await bounded(p.decode.close(), SHUTDOWN_STEP_MS.decoders, 'stopping decoders');
    }
    // Each step bounded: with Kafka or Triton down, a commit or a disconnect may never answer.
    for (const s of p.sources) await bounded(s.close(), SHUTDOWN_STEP_MS.source, `closing source ${s.name} (last commit, leaving the group)`);
    await bounded(p.monitor.close(), SHUTDOWN_STEP_MS.monitor, 'closing the monitor');
    await bounded(closeAll(p.sinks), SHUTDOWN_STEP_MS.sinks, 'closing sinks');
    await bounded(p.kafka.close(), SHUTDOWN_STEP_MS.kafka, 'closing Kafka connections');
    p.stats?.stop();
    await bounded(p.pool.close(), SHUTDOWN_STEP_MS.triton, 'closing Triton connections');
    await bounded(p.http.close(), SHUTDOWN_STEP_MS.http, 'closing the HTTP listener');
    await bounded(p.tracer?.close(), SHUTDOWN_STEP_MS.http, 'exporting the last traces');
  }
}

/** Closes sinks, logging (not throwing) a failure so the others still close. */
export async function closeAll(sinks: Sink[]): Promise<void> {
  for (const s of sinks) await s.close().catch((err) => log.warn('closing sink failed', { sink: s.name, err }));
}
