/**
 * The output stage's label delivery (issue #18): answered batches become label records and are
 * delivered through the OutputStage in the order the batches were taken, so each stream's labels
 * leave in frame order. Whatever has been answered while a delivery was under way goes out
 * together in the next one (one Kafka request), so a slow acknowledgement never holds Triton's
 * request slots. Frames are finished (published, or dropped with a reason) only after delivery:
 * that is what lets the source commit.
 *
 * The infer stage only produces: it `take()`s an entry when it takes a batch and fills in its
 * result when Triton answers (`answered()`); everything after that is here.
 */
import { performance } from 'node:perf_hooks';
import type { Histogram } from 'prom-client';
import type { CoveredFrame, DropReason, Frame, Label, LabelRecord } from '../core/frame.js';
import type { DropReporter } from '../core/drops.js';
import { FramewireError } from '../core/errors.js';
import { log } from '../core/log.js';
import { RecordBatch } from '../core/sink.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { FrameTracer } from '../telemetry/tracing.js';
import type { OutputStage } from './output.js';

/** One batch from the moment it is taken until its records are delivered. */
export interface PendingBatch {
  frames: Frame[];
  /** The model the batch was sent to (a switch leaves batches already taken on theirs). */
  model: string;
  /** That model's capture→publish histogram child (bound once per model, not per frame). */
  captureToPublish: Histogram.Internal<string>;
  /** Labels per frame, or why there are none; undefined until Triton answers. */
  result: Label[][] | FramewireError | undefined;
  /** The version Triton answered with (its response's `model_version`). */
  version: string;
  /** performance.now() when the batch was taken, the request went out, and it was answered. */
  takenAt: number;
  sentAt: number;
  answeredAt: number;
  /** Client-side time of the request Triton answered, ms. */
  inferMs: number;
}

/** What a label record says of the batch that labelled its frame (docs/contracts.md "Lineage"). */
export interface BatchLineage {
  model: string;
  modelVersion: string;
  batchSize: number;
  /** performance.now() when the batch was taken (queueMs runs from the frame's decodedAt to it). */
  takenAt: number;
  inferMs: number;
  topologyHash: string | undefined;
  publishedTs: number;
}

const tenths = (ms: number): number => Math.round(ms * 10) / 10;

/**
 * The label record of item `f` (a frame, or for a clip `covered`, one frame it labels). Lineage
 * fields the frame does not know (an input without partitions) are left out.
 */
export function labelRecordOf(f: Frame, covered: CoveredFrame | undefined, labels: Label[], b: BatchLineage): LabelRecord {
  const c = covered ?? f;
  const r: LabelRecord = { type: 'label', stream: f.stream, session: f.session, frame: c.index, ptsMs: c.ptsMs, captureTs: c.captureTs, model: b.model, modelVersion: b.modelVersion, labels, publishedTs: b.publishedTs };
  if (f.partition !== undefined && c.offset !== undefined) {
    r.partition = f.partition;
    r.offset = c.offset;
    if (c.keyOffset !== undefined && c.keyFrame !== undefined) {
      r.keyFrame = c.keyFrame;
      r.keyOffset = c.keyOffset;
    }
  }
  if (b.topologyHash !== undefined) r.topologyHash = b.topologyHash;
  r.batchSize = b.batchSize;
  r.queueMs = tenths(Math.max(0, b.takenAt - f.decodedAt));
  r.inferMs = tenths(b.inferMs);
  if (f.clip) r.clip = { fromFrame: f.clip.fromFrame, toFrame: f.index };
  return r;
}

/** Reports an item dropped: a frame, or every frame a clip would have labelled. */
export function dropItem(drops: DropReporter, f: Frame, reason: DropReason): void {
  if (!f.clip) {
    drops.drop(f.owner, f.stream, f.session, f.index, f.index, reason);
    return;
  }
  for (const c of f.clip.covered) drops.drop(f.owner, f.stream, f.session, c.index, c.index, reason);
}

export interface LabelDeliveryOptions {
  output: OutputStage;
  drops: DropReporter;
  metrics: Metrics;
  /** The lane's model, for logs and the delivery's context. */
  lane: () => string;
  /** The running topology's content hash (it changes with a reload), for the records' lineage. */
  topologyHash?: () => string | undefined;
  /** Traces of sampled frames (telemetry.otlp); undefined: off. */
  tracer?: FrameTracer;
  /** Told each batch of records once delivered (the postprocess steps: smoothing, change events, alerts). */
  published?: (records: LabelRecord[]) => void;
  /** Told after each delivery (or failure) leaves the queue: the producer may take more batches. */
  delivered: () => void;
}

export class LabelDelivery {
  /** Batches taken and not yet delivered, in the order they were taken. */
  private readonly queue: PendingBatch[] = [];
  private waiter: (() => void) | undefined;
  private open = true;
  private readonly publishStage: Histogram.Internal<string>;
  readonly done: Promise<void>;

  constructor(private readonly o: LabelDeliveryOptions) {
    this.publishStage = o.metrics.stageSeconds.labels({ stage: 'publish' });
    this.done = this.loop();
  }

  /** Batches taken and not yet delivered (the producer bounds this). */
  get length(): number {
    return this.queue.length;
  }

  /** A batch was taken: its records will go out after those of every batch taken before it. */
  take(entry: PendingBatch): void {
    this.queue.push(entry);
  }

  /** A batch's result was filled in. */
  answered(): void {
    this.wake();
  }

  /** No more batches: `done` resolves once the queue is delivered. */
  close(): void {
    this.open = false;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w();
  }

  private async loop(): Promise<void> {
    const { metrics, drops } = this.o;
    for (;;) {
      const head = this.queue[0];
      if (!head || head.result === undefined) {
        if (!head && !this.open) return;
        await new Promise<void>((r) => (this.waiter = r));
        continue;
      }
      // Every answered batch at the head goes out in one delivery, in the order taken.
      let n = 0;
      while (n < this.queue.length && this.queue[n]!.result !== undefined) n++;
      const ready = this.queue.slice(0, n);
      const now = Date.now();
      const records: LabelRecord[] = [];
      const traces: (string | undefined)[] = [];
      // Records per batch: their model is the batch's (a delivery may hold batches of two models after a switch).
      const recordCounts: number[] = [];
      const topologyHash = this.o.topologyHash?.();
      for (const { frames, result, model, version, takenAt, inferMs } of ready) {
        const before = records.length;
        if (result instanceof FramewireError) {
          log.once('warn', `infer-failed:${model}:${result.code}`, 'inference failed; frames dropped', { model, err: result });
          for (const f of frames) dropItem(drops, f, 'infer-failed');
          recordCounts.push(0);
          continue;
        }
        const labels = result!;
        const lineage: BatchLineage = { model, modelVersion: version, batchSize: frames.length, takenAt, inferMs, topologyHash, publishedTs: now };
        for (let i = 0; i < frames.length; i++) {
          const f = frames[i]!;
          if (f.clip) {
            // A clip's labels go to each frame it covers; the record names the window.
            for (const c of f.clip.covered) {
              records.push(labelRecordOf(f, c, labels[i]!, lineage));
              traces.push(c.traceparent);
            }
          } else {
            records.push(labelRecordOf(f, undefined, labels[i]!, lineage));
            traces.push(f.traceparent);
          }
        }
        recordCounts.push(records.length - before);
      }
      if (records.length > 0) {
        const publishStart = performance.now();
        const outcome = await this.deliver(records, traces);
        if (outcome === 'aborted') return; // shutdown gave up: the frames stay unfinished, so uncommitted
        if (outcome === 'failed') {
          for (const { frames, result } of ready) if (!(result instanceof FramewireError)) for (const f of frames) dropItem(drops, f, 'publish-failed');
          this.queue.splice(0, n);
          this.o.delivered();
          continue;
        }
        const publishEnd = performance.now();
        const publishSeconds = (publishEnd - publishStart) / 1000;
        const tracer = this.o.tracer;
        if (tracer) {
          for (const { frames, result, model, version, sentAt, answeredAt } of ready) {
            if (!(result instanceof FramewireError)) tracer.delivered(frames, { model, modelVersion: version, batchSize: frames.length, sentAt, answeredAt, publishStart, publishEnd });
          }
        }
        const published = Date.now();
        for (const { frames, result, captureToPublish } of ready) {
          if (result instanceof FramewireError) continue;
          for (const f of frames) {
            // A clip's latency runs from the capture of its last frame (when the window was complete).
            captureToPublish.observe((published - f.captureTs) / 1000);
            this.publishStage.observe(publishSeconds);
            if (f.clip) for (const c of f.clip.covered) f.owner.framePublished(c.index);
            else f.owner.framePublished(f.index);
          }
        }
        for (let e = 0; e < ready.length; e++) if (recordCounts[e]! > 0) metrics.framesPublished.inc({ model: ready[e]!.model }, recordCounts[e]!);
        this.o.published?.(records);
      }
      this.queue.splice(0, n);
      this.o.delivered();
    }
  }

  /**
   * Delivers through the output stage (every sink, each retried on its own while retriable):
   * offsets wait meanwhile. A sink that refused the records for good reports the frames dropped
   * as `publish-failed`; an abort (shutdown) leaves them unfinished.
   */
  private async deliver(records: LabelRecord[], traces: (string | undefined)[]): Promise<'ok' | 'failed' | 'aborted'> {
    const lane = this.o.lane();
    const outcome = await this.o.output.deliver('labels', new RecordBatch(records, traces), 'labels', { model: lane });
    if (outcome === 'failed') log.error('labels refused by a sink; frames reported dropped', { model: lane, records: records.length });
    return outcome;
  }
}
