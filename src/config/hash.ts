/**
 * The topology's content hash, carried on every record (`topologyHash`, docs/contracts.md
 * "Lineage"): a record says which configuration produced it. It is taken over the topology as
 * loaded and validated (environment interpolated, defaults filled in), with object keys sorted,
 * so comments, key order, quoting and spelling a default out do not change it; anything that
 * changes what the pipeline does does. Secrets are never inline (config/secret.ts), so none is
 * hashed.
 */
import { createHash } from 'node:crypto';
import type { Topology } from './topology.js';

/** Hex characters kept: 64 bits, plenty to tell a deployment's configurations apart. */
const HASH_CHARS = 16;

/** JSON text with every object's keys in sorted order (arrays keep theirs: order is meaning there). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.keys(value)
    .sort()
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

/** `sha256:` + the first 16 hex digits of the SHA-256 of the normalized topology. */
export function topologyHash(t: Topology): string {
  return 'sha256:' + createHash('sha256').update(canonicalJson(t)).digest('hex').slice(0, HASH_CHARS);
}
