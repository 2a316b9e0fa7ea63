/**
 * One model's lane: batches from the Batcher go to Triton (up to `maxInflight` at once). Each
 * batch is handed to the output stage's label delivery (sinks/labels.ts) when it is taken, and its
 * result when Triton answers; the delivery turns results into records, publishes them in the
 * order the batches were taken and finishes the frames.
 */
import { performance } from 'node:perf_hooks';
import type { LabelRecord } from '../core/frame.js';
import { FramewireError } from '../core/errors.js';
import { isAbort, retry } from '../core/retry.js';
import { poolFor } from '../core/pool.js';
import type { Batcher } from '../batch/batcher.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { Histogram } from 'prom-client';
import type { OutputStage } from '../sinks/output.js';
import { LabelDelivery, type PendingBatch } from '../sinks/labels.js';
import type { FrameTracer } from '../telemetry/tracing.js';
import type { DropReporter } from '../core/drops.js';
import type { ShadowRunner } from './shadow.js';
import type { TritonPool, TensorBatch } from './triton/pool.js';
import type { ShmRing } from './triton/shm.js';
import { frameTensorBytes, inputMismatch, inputShape, itemPixels, packFrame, parseClassification, type ModelSpec } from './triton/model.js';
import type { InferRequestedOutput } from './triton/types.js';
import type { Label } from '../core/frame.js';

/**
 * Backoff of a retried inference request (`triton.retries`), ms: the first retry within 25 ms
 * (another endpoint, or the same after a transient error) so a live frame can still make its
 * deadline; at most a second apart.
 */
const INFER_RETRY_MS = { baseMs: 25, maxMs: 1000 } as const;

export interface InferStageOptions {
  spec: ModelSpec;
  topK: number;
  /** The Triton endpoints (routing, health, transport). */
  pool: TritonPool;
  /** Shared-memory slots for this lane's input tensors (at least `maxInflight`), added to the pool; none = in-message. */
  ring?: ShmRing;
  batcher: Batcher;
  /** Where labels go (every sink). */
  output: OutputStage;
  drops: DropReporter;
  metrics: Metrics;
  maxInflight: number;
  /**
   * Batches answered by Triton and waiting to be published, beyond those in Triton
   * (`batch.publishBacklogBatches`). Publishing is taken off the request slots: a batch's slot
   * frees when Triton answers, and whatever has been answered meanwhile is published together in
   * one delivery (one Kafka request), so a 10–15 ms acknowledgement no longer paces inference.
   */
  publishBacklogBatches: number;
  timeoutMs: number;
  retries: number;
  /** Send Triton a `timeout` parameter: time left until the batch's earliest frame deadline (≥ 1 ms). */
  deadlineTimeout?: boolean;
  /** Triton `priority` parameter; 0 = model default (not sent). */
  priority?: number;
  /** Told each successful request's batch size and client-measured latency (the scheduler's estimate). */
  observeLatency?: (batchSize: number, ms: number) => void;
  /** Told when a request has finished, successfully or not (the batcher's view of the server's backlog). */
  settled?: () => void;
  /** Told each batch of records once delivered (temporal smoothing, change events). */
  published?: (records: LabelRecord[]) => void;
  /** Aborted when shutdown gives up waiting: retries stop, unpublished frames stay unfinished (uncommitted). */
  signal?: AbortSignal;
  /** Traces of sampled frames (telemetry.otlp); undefined: off. */
  tracer?: FrameTracer;
  /** The running topology's content hash (it changes with a reload), for the records' lineage. */
  topologyHash?: () => string | undefined;
  /** The lane's shadow model (models[].shadow); undefined: none. */
  shadow?: ShadowRunner;
}

/** A batch in Triton or waiting for delivery: what the delivery needs, and where it was sent. */
interface InFlight extends PendingBatch {
  target: Target;
}

/** Where a lane's batches go: model, version, labels per frame, and what is requested of Triton. */
interface Target {
  spec: ModelSpec;
  k: number;
  outputs: InferRequestedOutput[];
  captureToPublish: Histogram.Internal<string>;
}


let requestSeq = 0;

export class InferStage {
  /** Of those, requests Triton has not answered yet. */
  private requesting = 0;
  private slotWaiter: (() => void) | undefined;
  private done: Promise<void> | undefined;
  private readonly frameBytes: number;
  private readonly tensorBytes: number;
  private readonly batchPool;
  /** Where new batches go; replaced by switchModel(). */
  private target: Target;

  /** The lane's shadow model, if any; replaced by a reload (promotion swaps it with the primary). */
  shadow: ShadowRunner | undefined;

  constructor(private readonly o: InferStageOptions) {
    // An item is a frame, or for a clip model a window of frames (the clip's pooled buffer).
    this.frameBytes = itemPixels(o.spec);
    this.tensorBytes = frameTensorBytes(o.spec);
    this.batchPool = poolFor(this.tensorBytes * o.batcher.maxBatch);
    this.target = this.targetFor(o.spec, o.topK);
    this.shadow = o.shadow;
  }

  private targetFor(spec: ModelSpec, topK: number): Target {
    const k = Math.min(topK, spec.classes);
    // Triton's classification extension returns "score:index:label" strings, top-k per frame. It
    // refuses shared memory for such outputs, so they always come back in the response message.
    const outputs = [{ name: spec.outputName, parameters: { classification: { int64_param: k } } }];
    return { spec, k, outputs, captureToPublish: this.o.metrics.captureToPublish.labels({ model: spec.name }) };
  }

  /** The model (and version) new batches go to. */
  get spec(): ModelSpec {
    return this.target.spec;
  }

  /**
   * Sends every batch taken from now on to another model or version (a topology reload). Batches
   * already taken finish on the model they were sent to, so each frame is labelled once, by one
   * of the two. The new model must take the same input (datatype, geometry): the frames in the
   * batcher's queue were decoded for it, and the batch buffers are sized for it.
   */
  switchModel(spec: ModelSpec, topK: number): void {
    const mismatch = inputMismatch(this.target.spec, spec);
    if (mismatch) throw new FramewireError('TOPOLOGY_INVALID', 'config', `${mismatch}; restart to change the input`);
    this.target = this.targetFor(spec, topK);
  }

  start(): void {
    const { output, drops, metrics, tracer, topologyHash, published } = this.o;
    const delivery = new LabelDelivery({ output, drops, metrics, tracer, topologyHash, published, lane: () => this.o.spec.name, delivered: () => this.wakeSlot() });
    this.done = Promise.all([this.batchLoop(delivery), delivery.done]).then(() => undefined);
  }

  /** Resolves when the batcher's queue is closed and drained and every batch is published. */
  finished(): Promise<void> {
    return this.done ?? Promise.resolve();
  }

  private async batchLoop(delivery: LabelDelivery): Promise<void> {
    for (;;) {
      while (this.requesting >= this.o.maxInflight || delivery.length >= this.o.maxInflight + this.o.publishBacklogBatches) {
        await new Promise<void>((r) => (this.slotWaiter = r));
      }
      const frames = await this.o.batcher.next();
      if (!frames) break;
      if (frames.length === 0) continue;
      const target = this.target;
      const entry: InFlight = { frames, target, model: target.spec.name, captureToPublish: target.captureToPublish, result: undefined, version: '', sentAt: 0, answeredAt: 0, takenAt: performance.now(), inferMs: 0 };
      delivery.take(entry);
      this.requesting++;
      // infer() reports failures as a result; anything it throws is one too (never a stalled head).
      void this.infer(entry).catch((err: unknown) => new FramewireError('INFER_FAILED', 'infer', String(err), { cause: err })).then((result) => {
        entry.result = result;
        entry.answeredAt = performance.now();
        this.requesting--;
        delivery.answered();
        this.wakeSlot();
      });
    }
    delivery.close();
  }

  /** A request was answered or a delivery finished: the batch loop may take another batch. */
  private wakeSlot(): void {
    const s = this.slotWaiter;
    this.slotWaiter = undefined;
    if (s) s();
  }

  private async infer(entry: InFlight): Promise<Label[][] | FramewireError> {
    const { pool, metrics, ring } = this.o;
    const { frames, target } = entry;
    const { spec } = target;
    const n = frames.length;
    // Pack the frames into one pooled tensor buffer (widening to the model's datatype) and return
    // their buffers to the decoder pool.
    const packed = this.batchPool.take();
    const framePool = poolFor(this.frameBytes);
    let untilTs = Infinity;
    for (let i = 0; i < n; i++) {
      const f = frames[i]!;
      packFrame(spec, f.data, packed, i);
      framePool.give(f.data);
      if (f.deadlineTs < untilTs) untilTs = f.deadlineTs;
    }
    const bytes = n * this.tensorBytes;
    const slot = ring?.acquire();
    const batch: TensorBatch = {
      model: spec.name,
      version: spec.requestVersion,
      id: String(++requestSeq),
      inputName: spec.inputName,
      datatype: spec.inputDatatype,
      shape: inputShape(spec, n),
      data: packed.subarray(0, bytes),
      outputs: target.outputs,
    };
    if (slot !== undefined) {
      ring!.writeInput(slot, packed, bytes);
      batch.ring = ring;
      batch.slot = slot;
    }
    metrics.batchSize.observe({ model: spec.name }, n);
    entry.sentAt = performance.now();
    // A sampled batch's packed input goes to the shadow once the primary has answered; the
    // buffer returns to the pool when the shadow is done with it.
    const sh = this.shadow;
    const shadow = sh && sh.primaryName === spec.name && sh.sampled(n) ? sh : undefined;
    let keep = false;
    try {
      return await retry(
        async () => {
          batch.parameters = this.requestParameters(untilTs);
          const t0 = performance.now();
          const res = await pool.infer(batch, this.o.timeoutMs, untilTs);
          const ms = performance.now() - t0;
          entry.inferMs = ms;
          metrics.inferSeconds.observe({ model: spec.name }, ms / 1000);
          this.o.observeLatency?.(n, ms);
          const raw = res.raw_output_contents[0];
          if (!raw) throw new FramewireError('INFER_FAILED', 'infer', `model ${spec.name} returned no output`);
          metrics.framesInferred.inc({ model: spec.name }, n);
          entry.version = res.model_version || spec.version;
          const labels = parseClassification(raw, n, target.k);
          if (shadow) {
            keep = true;
            const streams = frames.map((f) => f.stream);
            void shadow.compare(packed.subarray(0, bytes), n, streams, labels, ms, this.requesting > 1).finally(() => this.batchPool.give(packed));
          }
          return labels;
        },
        {
          attempts: this.o.retries + 1,
          ...INFER_RETRY_MS,
          signal: this.o.signal,
          onRetry: (err) => metrics.inferErrors.inc({ code: (err as FramewireError).code ?? 'INFER_FAILED' }),
        },
      );
    } catch (err) {
      const e = err instanceof FramewireError ? err : new FramewireError('INFER_FAILED', 'infer', String(err), { cause: err });
      if (!isAbort(err)) metrics.inferErrors.inc({ code: e.code });
      return e;
    } finally {
      if (slot !== undefined) ring!.release(slot);
      if (!keep) this.batchPool.give(packed);
      this.o.settled?.();
    }
  }

  /** Triton request parameters: `timeout` (µs) from the frames' deadline, `priority` from the topology. */
  private requestParameters(untilTs: number): TensorBatch['parameters'] {
    const timeout = this.o.deadlineTimeout ?? false;
    const priority = this.o.priority ?? 0;
    if (!timeout && priority === 0) return undefined;
    const p: NonNullable<TensorBatch['parameters']> = {};
    if (timeout && Number.isFinite(untilTs)) p.timeout = { int64_param: Math.max(1000, Math.round((untilTs - Date.now()) * 1000)) };
    if (priority > 0) p.priority = { int64_param: priority };
    return p;
  }
}
