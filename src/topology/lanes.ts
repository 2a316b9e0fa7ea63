/**
 * A model lane: the batcher, latency estimator, infer stage and (for clip models) window
 * assembler that serve one model. Frames routed to the model enter through `push`.
 */
import type { Frame, LabelRecord } from '../core/frame.js';
import { poolFor } from '../core/pool.js';
import type { Topology, ModelConfig } from '../config/topology.js';
import type { Metrics } from '../telemetry/metrics.js';
import { Batcher, type BatcherOptions } from '../batch/batcher.js';
import type { BatchConfig } from '../batch/config.js';
import type { TritonConfig } from '../infer/triton/config.js';
import { LatencyEstimator } from '../batch/estimator.js';
import { ClipAssembler } from '../batch/clips.js';
import { InferStage, type InferStageOptions } from '../infer/stage.js';
import { dropItem } from '../sinks/labels.js';
import type { ModelSpec } from '../infer/triton/model.js';
import type { TritonPool } from '../infer/triton/pool.js';
import type { ShmRing } from '../infer/triton/shm.js';
import type { OutputStage } from '../sinks/output.js';
import type { FrameTracer } from '../telemetry/tracing.js';
import type { DropReporter } from '../core/drops.js';
import { RecordBatch } from '../core/sink.js';
import { ShadowRunner } from '../infer/shadow.js';

export interface Lane {
  readonly spec: ModelSpec;
  /** Replaces the lane's shadow model (a reload): `spec` checked against the primary's input, or none. */
  setShadow(primary: ModelSpec, spec: ModelSpec | undefined, config: ModelConfig['shadow']): void;
  readonly batcher: Batcher;
  readonly stage: InferStage;
  /** The lane's service time by batch size (what the degrade controller prices a frame at). */
  readonly estimator: LatencyEstimator;
  /** Frames per request lately (smoothed). */
  readonly meanBatch: number;
  /** Synchronous unless the batcher must wait (replay mode, full queues). */
  push(frame: Frame): void | Promise<void>;
  /** A session ended: a clip model's last partial window goes out. */
  sessionEnded(stream: string, session: string): Promise<void>;
}

export interface LaneOptions {
  spec: ModelSpec;
  model: ModelConfig;
  topology: Topology;
  pool: TritonPool;
  ring: ShmRing | undefined;
  output: OutputStage;
  drops: DropReporter;
  metrics: Metrics;
  published(records: LabelRecord[]): void;
  /** Aborts the lane's retries (shutdown past its drain deadline). */
  signal?: AbortSignal;
  /** Traces of sampled frames; undefined: off. */
  tracer?: FrameTracer;
  /** The running topology's content hash, for the records' lineage. */
  topologyHash?: () => string | undefined;
  /** The shadow model's description, when `model.shadow` is set (checked against the primary's input). */
  shadowSpec?: ModelSpec;
  /** Called when the lane's shadow meets its `promoteWhen` (topology/promotion.ts swaps the two). */
  promote?: (shadow: ShadowRunner) => void;
}

/** The `batch` fields the batcher takes as configured (`maxBatchSize` is capped by the model first). */
const BATCHER_FIELDS = ['maxWaitMs', 'mode', 'streamQueueFrames', 'queueFrames', 'marginMs', 'fairShares'] as const satisfies readonly (keyof BatchConfig & keyof BatcherOptions)[];
/** The `batch` and `triton` fields the infer stage takes as configured (`deadlineTimeout` is live mode's only). */
const STAGE_BATCH_FIELDS = ['maxInflight', 'publishBacklogBatches'] as const satisfies readonly (keyof BatchConfig & keyof InferStageOptions)[];
const STAGE_TRITON_FIELDS = ['timeoutMs', 'retries', 'priority'] as const satisfies readonly (keyof TritonConfig & keyof InferStageOptions)[];

function pick<T, K extends keyof T>(from: T, keys: readonly K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) out[k] = from[k];
  return out;
}

export function buildLane(o: LaneOptions): Lane {
  const { spec, model: m, topology: t, metrics } = o;
  const maxBatch = Math.min(spec.maxBatchSize, t.batch.maxBatchSize ?? spec.maxBatchSize);
  const estimator = new LatencyEstimator(undefined, undefined, t.batch.estimatorHorizonMs);
  let lastFinished = 0;
  let meanBatch = Number.NaN;
  const gauge = metrics.queueFrames.labels({ model: spec.name });
  const queued = metrics.stageSeconds.labels({ stage: 'queued' });
  const batcher = new Batcher({
    ...pick(t.batch, BATCHER_FIELDS),
    maxBatch,
    estimator,
    drop: (f, reason) => {
      dropItem(o.drops, f, reason);
      poolFor(f.data.length).give(f.data);
    },
    taken: (frames) => {
      const now = performance.now();
      for (const f of frames) queued.observe((now - f.decodedAt) / 1000);
      if (frames.length) meanBatch = Number.isNaN(meanBatch) ? frames.length : meanBatch + (frames.length - meanBatch) / 16;
      gauge.set(batcher.length);
    },
  });
  const makeShadow = (primary: ModelSpec, sspec: ModelSpec | undefined, c: ModelConfig['shadow']): ShadowRunner | undefined => {
    if (!sspec || !c) return undefined;
    const runner: ShadowRunner = new ShadowRunner({
      primary,
      shadow: sspec,
      sample: c.sample,
      live: t.batch.mode === 'live',
      pool: o.pool,
      metrics,
      timeoutMs: t.triton.timeoutMs,
      window: c.window,
      promoteWhen: c.promoteWhen,
      promote: () => o.promote?.(runner),
    });
    return runner;
  };
  const shadow = makeShadow(spec, o.shadowSpec, m.shadow);
  const stage = new InferStage({
    spec,
    topK: m.topK,
    pool: o.pool,
    ring: o.ring,
    ...pick(t.batch, STAGE_BATCH_FIELDS),
    ...pick(t.triton, STAGE_TRITON_FIELDS),
    // Replay has no deadlines to keep: a past deadline must not become a 1 ms Triton timeout.
    deadlineTimeout: t.triton.deadlineTimeout && t.batch.mode === 'live',
    batcher,
    output: o.output,
    drops: o.drops,
    metrics,
    // The estimate is of service time: with requests overlapping, a response's latency also
    // holds its wait behind the previous one, which the batcher already accounts for.
    observeLatency: (n, ms) => {
      const finished = performance.now();
      estimator.observe(n, finished - Math.max(finished - ms, lastFinished));
      lastFinished = finished;
    },
    settled: () => batcher.settled(),
    published: o.published,
    signal: o.signal,
    tracer: o.tracer,
    topologyHash: o.topologyHash,
    shadow,
  });
  if (shadow && m.shadow) reportShadow(shadow, m.shadow.reportIntervalMs, o, () => stage.spec.version);
  const setShadow = (primary: ModelSpec, sspec: ModelSpec | undefined, c: ModelConfig['shadow']): void => {
    if (stage.shadow) stage.shadow.stopped = true;
    const next = makeShadow(primary, sspec, c);
    stage.shadow = next;
    if (next && c) reportShadow(next, c.reportIntervalMs, o, () => stage.spec.version);
  };
  // Clip models: frames gather in per-session windows; each complete window is one batch item.
  const clips = spec.clipFrames
    ? new ClipAssembler({
        frames: spec.clipFrames,
        stride: m.clip?.stride ?? spec.clipFrames,
        frameBytes: spec.width * spec.height * 3,
        skipped: (f) => o.drops.drop(f.owner, f.stream, f.session, f.index, f.index, 'sampled'),
      })
    : undefined;
  return {
    spec,
    setShadow,
    batcher,
    stage,
    estimator,
    get meanBatch() {
      return meanBatch;
    },
    push(frame) {
      const item = clips ? clips.add(frame) : frame;
      if (!item) return;
      const r = batcher.push(item);
      if (r instanceof Promise) return r.then(() => gauge.set(batcher.length));
      gauge.set(batcher.length);
    },
    async sessionEnded(stream, session) {
      const item = clips?.end(stream, session);
      if (item) await batcher.push(item);
    },
  };
}

/** The batch size a lane's shared-memory slots must hold. */
export function laneMaxBatch(spec: ModelSpec, t: Topology): number {
  return Math.min(spec.maxBatchSize, t.batch.maxBatchSize ?? spec.maxBatchSize);
}

/**
 * Every `intervalMs`: the shadow report as a `shadow` record on the events topic (best effort, like
 * `change` events) and as gauges. Stops with the lane's signal (shutdown).
 */
function reportShadow(shadow: ShadowRunner, intervalMs: number, o: LaneOptions, primaryVersion: () => string): void {
  const labels = { model: shadow.primaryName, shadow: shadow.spec.name };
  const timer = setInterval(() => {
    if (shadow.stopped) return clearInterval(timer);
    if (shadow.report.frames === 0) return;
    const s = shadow.summary(primaryVersion());
    o.metrics.shadowAgreement.set(labels, s.agreement);
    o.metrics.shadowScoreDelta.set(labels, s.meanAbsDelta);
    o.output.bestEffort(new RecordBatch([s]), 'shadow reports');
  }, intervalMs);
  timer.unref();
  o.signal?.addEventListener('abort', () => clearInterval(timer), { once: true });
}
