/**
 * What a source or sink component is: `{ type, schema, topics?, build }`, and what its `build`
 * is handed. The registry (topology/registry.ts) holds the registered ones; a component folder
 * implements these without importing the topology.
 */
import type { z } from 'zod/v4';
import type { Admin, Kafka, Producer } from 'kafkajs';
// The process-wide services every component is handed; types only (telemetry imports no stage).
import type { Metrics } from '../telemetry/metrics.js';
import type { HttpEndpoint } from '../telemetry/http.js';
import type { AlertSnapshots, Sink } from './sink.js';
import type { ChunkHandler, Source } from './source.js';

/** A topic a component needs; the builder creates it, with these settings, when missing (kafka/topics.ts). */
export interface TopicSpec {
  topic: string;
  numPartitions: number;
  configEntries?: { name: string; value: string }[];
}

/** Shared Kafka connections, opened on first use (a topology without Kafka components opens none). */
export interface KafkaConnections {
  client(): Kafka;
  admin(): Promise<Admin>;
  producer(): Promise<Producer>;
}

/** What every component's `build` gets: shared connections and process-wide services. */
export interface BuildContext {
  readonly pipelineName: string;
  readonly metrics: Metrics;
  readonly kafka: KafkaConnections;
  /** The processor's HTTP listener: components add routes and WebSocket upgrade paths to it. */
  readonly http: HttpEndpoint;
  /** Aborted when start-up is cancelled or shutdown stops waiting: a component's retry loops end. */
  readonly signal?: AbortSignal;
  /** Snapshots of firing alerts as they are made (a sink that sends them with its alerts waits on it). */
  readonly snapshots: AlertSnapshots;
}

export interface SourceContext extends BuildContext {
  /** Where the source hands chunks (the decode stage). */
  readonly decode: ChunkHandler;
}

/** The zod schema of one component's config: a strict object whose `type` is a literal. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ComponentSchema = z.ZodObject<{ type: z.ZodLiteral<string> } & z.core.$ZodShape, any>;

interface ComponentBase<S extends ComponentSchema> {
  readonly type: string;
  readonly schema: S;
  /** Topics to create before start (none by default). */
  topics?(config: z.infer<S>): TopicSpec[];
  /**
   * What traces name it by (OpenTelemetry's messaging attributes): a source's topic and consumer
   * group, a sink's labels destination. Without it, traces use the component's type.
   */
  messaging?(config: z.infer<S>): MessagingNames;
}

export interface MessagingNames {
  /** `messaging.destination.name`: the topic (or queue) read from or published to. */
  destination: string;
  /** `messaging.consumer.group.name`, for a source that reads as a group member. */
  group?: string;
}

export interface SourceComponent<S extends ComponentSchema = ComponentSchema> extends ComponentBase<S> {
  build(ctx: SourceContext, config: z.infer<S>): Promise<Source>;
}

export interface SinkComponent<S extends ComponentSchema = ComponentSchema> extends ComponentBase<S> {
  build(ctx: BuildContext, config: z.infer<S>): Promise<Sink>;
}

export type ComponentKind = 'source' | 'sink';
