/**
 * Traces of sampled frames (issue #19), with the official OpenTelemetry JS SDK, exported over
 * OTLP/HTTP when `telemetry.otlp.endpoint` is set; nothing at all otherwise (no SDK object is
 * made, and the hot path pays one `undefined` check per delivered batch).
 *
 * A frame is traced when its chunk carried a sampled W3C `traceparent` header (the trace goes
 * on there) or, for the others, with probability `telemetry.otlp.sampleRatio` (a new trace).
 * Spans follow OpenTelemetry's messaging conventions: one `process <chunk topic>` CONSUMER span
 * per frame, from the moment its access unit went to the decoder to the moment its label was
 * delivered, with `messaging.system`, `messaging.destination.name`,
 * `messaging.destination.partition.id`, `messaging.kafka.offset` (the chunk that held the frame's
 * first byte) and `messaging.consumer.group.name`; children `decode`, `batch` (the wait for a
 * batch), `infer <model>` and `publish <labels>` (PRODUCER). The spans are made when the label is
 * delivered, with the times each stage recorded, so tracing adds no await to the data path.
 */
import { z } from 'zod/v4';
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace, type Context, type Tracer } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { performance } from 'node:perf_hooks';
import { log } from '../core/log.js';

export const telemetrySchema = z
  .strictObject({
    otlp: z
      .strictObject({
        endpoint: z.url().optional().describe('OTLP/HTTP endpoint of a collector, e.g. `http://127.0.0.1:4318` (`/v1/traces` is added); unset: no traces.'),
        sampleRatio: z.number().min(0).max(1).default(0.01).describe('Share of frames traced whose chunk carried no sampled `traceparent` (those always are).'),
        serviceName: z.string().min(1).default('framewire').describe('`service.name` of the spans.'),
      })
      .prefault({})
      .describe('Traces of sampled frames over OTLP/HTTP.'),
  })
  .prefault({})
  .describe('Traces (OpenTelemetry).');

export type TelemetryConfig = z.infer<typeof telemetrySchema>;

/** What the tracer needs of a delivered frame; times are performance.now() ms unless said. */
export interface TracedFrame {
  readonly stream: string;
  readonly session: string;
  readonly index: number;
  readonly traceparent: string | undefined;
  /** The chunk that held the frame's first byte. */
  readonly partition?: number;
  readonly offset?: number | string;
  /** performance.now() when its access unit was fed to the decoder, and when the frame came out. */
  readonly fedAt?: number;
  readonly decodedAt: number;
}

export interface BatchTimes {
  model: string;
  modelVersion: string;
  batchSize: number;
  /** performance.now(): request sent, answered, delivery started, delivered. */
  sentAt: number;
  answeredAt: number;
  publishStart: number;
  publishEnd: number;
}

/** Where the chunk and label records are, for the span names and attributes. */
export interface TraceTopics {
  chunks: string;
  group: string;
  labels: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The remote parent a `traceparent` header names, if it is valid and sampled. */
export function sampledParent(traceparent: string | undefined): Context | undefined {
  if (!traceparent) return undefined;
  const m = TRACEPARENT.exec(traceparent);
  if (!m || m[1] === '0'.repeat(32) || m[2] === '0'.repeat(16)) return undefined;
  const flags = Number.parseInt(m[3]!, 16);
  if ((flags & TraceFlags.SAMPLED) === 0) return undefined;
  return trace.setSpanContext(ROOT_CONTEXT, { traceId: m[1]!, spanId: m[2]!, traceFlags: flags, isRemote: true });
}

/** performance.now() ms → the SDK's time input (epoch ms). */
const wall = (t: number): number => performance.timeOrigin + t;

export class FrameTracer {
  private readonly provider: BasicTracerProvider;
  private readonly tracer: Tracer;

  private constructor(
    private readonly o: { endpoint: string; sampleRatio: number; serviceName: string },
    private readonly topics: TraceTopics,
    private readonly random: () => number,
  ) {
    const exporter = new OTLPTraceExporter({ url: `${o.endpoint.replace(/\/+$/, '')}/v1/traces` });
    this.provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': o.serviceName }),
      spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000, maxQueueSize: 4096 })],
    });
    this.tracer = this.provider.getTracer('framewire');
  }

  /** A tracer when `telemetry.otlp.endpoint` is set, else undefined (tracing off). */
  static create(config: TelemetryConfig, topics: TraceTopics, random: () => number = Math.random): FrameTracer | undefined {
    const c = config.otlp;
    if (!c.endpoint) return undefined;
    log.info('tracing sampled frames over OTLP/HTTP', { endpoint: c.endpoint, sampleRatio: c.sampleRatio });
    return new FrameTracer({ endpoint: c.endpoint, sampleRatio: c.sampleRatio, serviceName: c.serviceName }, topics, random);
  }

  /** Spans for the frames of one delivered batch that are traced. */
  delivered(frames: readonly TracedFrame[], t: BatchTimes): void {
    for (const f of frames) {
      const parent = sampledParent(f.traceparent);
      if (!parent && !(this.random() < this.o.sampleRatio)) continue;
      this.frame(f, t, parent ?? ROOT_CONTEXT);
    }
  }

  private frame(f: TracedFrame, t: BatchTimes, parent: Context): void {
    const start = f.fedAt ?? f.decodedAt;
    const root = this.tracer.startSpan(
      `process ${this.topics.chunks}`,
      {
        kind: SpanKind.CONSUMER,
        startTime: wall(start),
        attributes: {
          'messaging.system': 'kafka',
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.destination.name': this.topics.chunks,
          'messaging.consumer.group.name': this.topics.group,
          ...(f.partition !== undefined ? { 'messaging.destination.partition.id': String(f.partition) } : {}),
          ...(f.offset !== undefined ? { 'messaging.kafka.offset': Number(f.offset) } : {}),
          'framewire.stream': f.stream,
          'framewire.session': f.session,
          'framewire.frame': f.index,
        },
      },
      parent,
    );
    const ctx = trace.setSpan(ROOT_CONTEXT, root);
    const child = (name: string, from: number, to: number, kind: SpanKind, attributes: Record<string, string | number> = {}): void => {
      this.tracer.startSpan(name, { kind, startTime: wall(from), attributes }, ctx).end(wall(Math.max(from, to)));
    };
    if (f.fedAt !== undefined) child('decode', f.fedAt, f.decodedAt, SpanKind.INTERNAL);
    child('batch', f.decodedAt, t.sentAt, SpanKind.INTERNAL, { 'framewire.batch.size': t.batchSize });
    child(`infer ${t.model}`, t.sentAt, t.answeredAt, SpanKind.CLIENT, { 'framewire.model': t.model, 'framewire.model.version': t.modelVersion, 'framewire.batch.size': t.batchSize });
    child(`publish ${this.topics.labels}`, t.publishStart, t.publishEnd, SpanKind.PRODUCER, {
      'messaging.system': 'kafka',
      'messaging.operation.type': 'send',
      'messaging.destination.name': this.topics.labels,
    });
    root.end(wall(Math.max(start, t.publishEnd)));
  }

  /** Exports what is queued and stops. */
  async close(): Promise<void> {
    await this.provider.shutdown().catch((err: unknown) => log.warn('closing the trace exporter failed', { err }));
  }
}
