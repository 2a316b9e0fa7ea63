/**
 * Generates the config reference (docs/config.md) and JSON Schema (docs/topology.schema.json)
 * from the topology schema and the component registry, and the error catalogue (docs/errors.md) from ERROR_CODES.
 * The README's metrics table comes from the metric definitions. `npm run docs` writes them; test/unit/docs.test.ts fails when the committed files drift.
 */
import { z } from 'zod/v4';
import { topologySchema } from './topology.js';
import { registry } from '../topology/registry.js';
import { METRIC, Metrics } from '../telemetry/metrics.js';
import { DEAD_LETTER_REASONS, ERROR_CODES } from '../core/errors.js';

type JsonSchema = {
  type?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  const?: unknown;
  minimum?: number;
  pattern?: string;
  minItems?: number;
};

export function topologyJsonSchema(): object {
  return z.toJSONSchema(topologySchema(), { io: 'input' });
}

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.type === 'array' && s.items) return s.items.anyOf ? 'list of components' : `list of ${typeOf(s.items)}`;
  return s.type ?? 'any';
}

function rows(s: JsonSchema, prefix: string, out: string[]): void {
  const req = new Set(s.required ?? []);
  for (const [name, p] of Object.entries(s.properties ?? {})) {
    const path = prefix ? `${prefix}.${name}` : name;
    const def = p.default !== undefined && !(typeof p.default === 'object' && p.default && Object.keys(p.default).length === 0) ? `\`${JSON.stringify(p.default)}\`` : req.has(name) ? '**required**' : '';
    const limits = [p.minimum !== undefined && p.minimum > -Number.MAX_SAFE_INTEGER ? `≥ ${p.minimum}` : '', p.pattern ? `matches \`${p.pattern}\`` : '', p.minItems ? `at least ${p.minItems}` : '']
      .filter(Boolean)
      .join(', ');
    out.push(`| \`${path}\` | ${typeOf(p)} | ${def} | ${(p.description ?? '').replace(/\|/g, '\\|')}${limits ? ` (${limits})` : ''} |`);
    if (p.type === 'object' && p.properties) rows(p, path, out);
    if (p.type === 'array' && p.items?.type === 'object') rows(p.items, `${path}[]`, out);
  }
}

export function configReference(): string {
  const schema = topologyJsonSchema() as JsonSchema;
  const out: string[] = [
    '# Topology reference',
    '',
    '<!-- Generated from src/config/topology.ts and the component schemas by `npm run docs`. Do not edit. -->',
    '',
    schema.description ?? '',
    '',
    'A topology is a YAML file. `${VAR}` and `${VAR:-default}` are replaced from the environment before parsing.',
    'Unknown fields are errors, so a typo is reported rather than ignored.',
    '',
    '| field | type | default | description |',
    '| --- | --- | --- | --- |',
  ];
  rows(schema, '', out);
  // One section per registered component, from its own schema.
  for (const [name, components] of [['sources', registry.sources], ['sinks', registry.sinks]] as const) {
    for (const c of components.values()) {
      const v = z.toJSONSchema(c.schema, { io: 'input' }) as JsonSchema;
      out.push('', `## \`${name}[]\` of type \`${c.type}\``, '', v.description ?? '', '', '| field | type | default | description |', '| --- | --- | --- | --- |');
      rows(v, `${name}[]`, out);
    }
  }
  return out.join('\n') + '\n';
}

export function errorCatalogue(): string {
  const out = [
    '# Error codes',
    '',
    '<!-- Generated from src/core/errors.ts by `npm run docs`. Do not edit. -->',
    '',
    'Every error framewire raises is a `FramewireError` with a `code`, the `stage` it came from, whether it is `retriable`, and its `cause`.',
    '',
    'A chunk that cannot be used is dead-lettered with one of these codes in `fw-dlq-code` and its short form in `fw-dlq-reason` (docs/contracts.md).',
    '',
    '| code | meaning | dead-letter reason |',
    '| --- | --- | --- |',
  ];
  const reasons: Partial<Record<string, string>> = DEAD_LETTER_REASONS;
  for (const [code, meaning] of Object.entries(ERROR_CODES)) out.push(`| \`${code}\` | ${meaning} | ${reasons[code] ? `\`${reasons[code]}\`` : ''} |`);
  return out.join('\n') + '\n';
}

/** The README's metrics table, from the metric definitions (name, type, labels, help). */
export function metricsTable(): string {
  const names = new Set<string>(Object.values(METRIC));
  const out = ['| metric | type | labels | meaning |', '| --- | --- | --- | --- |'];
  for (const m of new Metrics().registry.getMetricsAsArray()) {
    if (!names.has(m.name)) continue; // Node's default process metrics
    const labels = ((m as unknown as { labelNames?: string[] }).labelNames ?? []).join(', ');
    out.push(`| \`${m.name}\` | ${m.type} | ${labels} | ${m.help.replace(/\|/g, '\\|')} |`);
  }
  return out.join('\n') + '\n';
}

export const METRICS_BEGIN = '<!-- metrics:begin (generated from src/telemetry/metrics.ts by `npm run docs`; do not edit) -->\n';
export const METRICS_END = '<!-- metrics:end -->';

/** `readme` with the text between the metrics markers replaced by the generated table. */
export function withMetricsTable(readme: string): string {
  const a = readme.indexOf(METRICS_BEGIN);
  const b = readme.indexOf(METRICS_END);
  if (a < 0 || b < a) throw new Error('README.md lacks the metrics markers');
  return readme.slice(0, a + METRICS_BEGIN.length) + metricsTable() + readme.slice(b);
}

export function generatedDocs(readme?: string): Record<string, string> {
  return {
    'docs/config.md': configReference(),
    'docs/topology.schema.json': JSON.stringify(topologyJsonSchema(), null, 2) + '\n',
    'docs/errors.md': errorCatalogue(),
    ...(readme === undefined ? {} : { 'README.md': withMetricsTable(readme) }),
  };
}
