/**
 * The component registry: the one place a source or sink type is named. A component is
 * `{ type, schema, build }` (core/component.ts); the topology schema composes its `sources` and
 * `sinks` unions from what is registered (src/components.ts registers the built-in ones), the docs generator reads
 * the same schemas, and the builder looks a config's `type` up here. Adding a sink is a folder
 * with its schema and runtime, plus one line in src/components.ts.
 */
import type { ComponentKind, ComponentSchema, SinkComponent, SourceComponent } from '../core/component.js';

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
