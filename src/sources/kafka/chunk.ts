/** The video chunk record (docs/contracts.md) and its validation. */
import type { IHeaders } from 'kafkajs';
import { MAX_CHUNK_BYTES, type DeadLetterCode, type EncodedChunk } from '../../core/ack.js';

export { MAX_CHUNK_BYTES };
export const SUPPORTED_FORMATS = new Set(['mpegts']);

export interface Chunk extends EncodedChunk {
  topic: string;
  partition: number;
  key: Buffer | null;
  headers: IHeaders;
  format: string;
}

export interface RawRecord {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: IHeaders;
}

function header(h: IHeaders | undefined, name: string): string | undefined {
  const v = h?.[name];
  if (v === undefined || v === null) return undefined;
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
}

/** Validates a record; returns the chunk or why it cannot be used. */
export function parseChunk(r: RawRecord): Chunk | { code: DeadLetterCode; detail: string } {
  const stream = header(r.headers, 'fw-stream');
  const session = header(r.headers, 'fw-session');
  const seqText = header(r.headers, 'fw-seq');
  const format = header(r.headers, 'fw-format');
  const epochText = header(r.headers, 'fw-epoch-ms');
  const missing = [
    ['fw-stream', stream],
    ['fw-session', session],
    ['fw-seq', seqText],
    ['fw-format', format],
    ['fw-epoch-ms', epochText],
  ].filter(([, v]) => v === undefined || v === '');
  if (missing.length) return { code: 'CHUNK_HEADER_MISSING', detail: `missing header(s): ${missing.map(([n]) => n).join(', ')}` };
  const key = r.key?.toString('utf8');
  if (key !== undefined && key !== stream) return { code: 'CHUNK_HEADER_INVALID', detail: `key '${clip(key)}' differs from fw-stream '${clip(stream!)}'` };
  // Digits only, and small enough to be exact (found by fuzzing: '18446744073709551616' was taken
  // as an imprecise number, 400 nines as Infinity).
  if (!/^\d{1,15}$/.test(seqText!)) return { code: 'CHUNK_HEADER_INVALID', detail: `fw-seq '${clip(seqText!)}' is not a non-negative integer below 10^15` };
  if (!/^\d{1,15}$/.test(epochText!)) return { code: 'CHUNK_HEADER_INVALID', detail: `fw-epoch-ms '${clip(epochText!)}' is not a Unix time in ms` };
  if (!SUPPORTED_FORMATS.has(format!)) return { code: 'CHUNK_FORMAT_UNKNOWN', detail: `fw-format '${clip(format!)}' is not supported (supported: ${[...SUPPORTED_FORMATS].join(', ')})` };
  if (!r.value || r.value.length === 0) return { code: 'CHUNK_HEADER_INVALID', detail: 'empty value' };
  if (r.value.length > MAX_CHUNK_BYTES) return { code: 'CHUNK_TOO_LARGE', detail: `${r.value.length} bytes, more than ${MAX_CHUNK_BYTES}` };
  return {
    topic: r.topic,
    partition: r.partition,
    offset: r.offset,
    key: r.key,
    value: r.value,
    headers: r.headers ?? {},
    stream: stream!,
    session: session!,
    seq: Number(seqText),
    format: format!,
    epochMs: Number(epochText),
    traceparent: header(r.headers, 'traceparent'),
    // fw-eos: present (any value but 0/false, the empty one included) on a session's last record.
    eos: isEos(r.headers),
  };
}

/** A header value quoted in a dead-letter detail: short, one line. */
function clip(v: string): string {
  const one = v.replace(/[\r\n]+/g, ' ');
  return one.length > 40 ? `${one.slice(0, 40)}…` : one;
}

function isEos(h: IHeaders | undefined): boolean {
  if (!h || !('fw-eos' in h) || h['fw-eos'] === undefined) return false;
  const v = header(h, 'fw-eos');
  return v !== '0' && v !== 'false';
}
