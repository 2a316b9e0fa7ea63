/**
 * The component registry: the one place a source or sink type is named. A component is
 * `{ type, schema, build }`; the topology schema composes its `sources` and `sinks` unions from
 * what is registered (src/components.ts registers the built-in ones), the docs generator reads
 * the same schemas, and the builder looks a config's `type` up here. Adding a sink is a folder
 * with its schema and runtime, plus one line in src/components.ts.
 */
import type { z } from 'zod/v4';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Metrics } from '../telemetry/metrics.js';
import type { HttpEndpoint } from '../telemetry/http.js';
import type { Sink } from '../sinks/types.js';
import type { Source, ChunkHandler } from '../sources/types.js';

/** Topics a component needs; the builder creates the missing ones before anything starts. */
export type { TopicSpec } from '../core/topics.js';
import type { TopicSpec } from '../core/topics.js';

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
}

export interface SourceComponent<S extends ComponentSchema = ComponentSchema> extends ComponentBase<S> {
  build(ctx: SourceContext, config: z.infer<S>): Promise<Source>;
}

export interface SinkComponent<S extends ComponentSchema = ComponentSchema> extends ComponentBase<S> {
  build(ctx: BuildContext, config: z.infer<S>): Promise<Sink>;
}

export type ComponentKind = 'source' | 'sink';

class Registry {
  readonly sources = new Map<string, SourceComponent>();
  readonly sinks = new Map<string, SinkComponent>();
  /** Bumped on every registration, so the composed topology schema knows when to rebuild. */
  version = 0;

  source<S extends ComponentSchema>(c: SourceComponent<S>): void {
    this.add(this.sources, 'source', c as unknown as SourceComponent);
  }

  sink<S extends ComponentSchema>(c: SinkComponent<S>): void {
    this.add(this.sinks, 'sink', c as unknown as SinkComponent);
  }

  private add<C extends { type: string }>(map: Map<string, C>, kind: ComponentKind, c: C): void {
    if (map.has(c.type)) throw new Error(`${kind} type '${c.type}' is registered twice`);
    map.set(c.type, c);
    this.version++;
  }
}

export const registry = new Registry();
