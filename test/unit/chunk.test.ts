import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChunk, type RawRecord } from '../../src/sources/kafka/chunk.js';

const good = (): RawRecord => ({
  topic: 't',
  partition: 1,
  offset: '42',
  key: Buffer.from('cam-1'),
  value: Buffer.from([0x47, 1, 2]),
  headers: { 'fw-stream': Buffer.from('cam-1'), 'fw-session': Buffer.from('s1'), 'fw-seq': Buffer.from('3'), 'fw-format': Buffer.from('mpegts'), 'fw-epoch-ms': Buffer.from('1764120000000'), traceparent: Buffer.from('00-abc-def-01') },
});

test('a valid record parses with typed fields', () => {
  const c = parseChunk(good());
  assert.ok(!('code' in c));
  assert.equal(c.stream, 'cam-1');
  assert.equal(c.seq, 3);
  assert.equal(c.epochMs, 1764120000000);
  assert.equal(c.traceparent, '00-abc-def-01');
});

const reasonOf = (mut: (r: RawRecord) => void) => {
  const r = good();
  mut(r);
  const c = parseChunk(r);
  return 'code' in c ? c : undefined;
};

test('each bad record gets its reason and a detail naming the problem', () => {
  assert.deepEqual(reasonOf((r) => delete r.headers!['fw-session'])?.code, 'CHUNK_HEADER_MISSING');
  assert.match(reasonOf((r) => delete r.headers!['fw-session'])!.detail, /fw-session/);
  assert.equal(reasonOf((r) => (r.headers!['fw-seq'] = Buffer.from('-1')))?.code, 'CHUNK_HEADER_INVALID');
  assert.equal(reasonOf((r) => (r.headers!['fw-epoch-ms'] = Buffer.from('yesterday')))?.code, 'CHUNK_HEADER_INVALID');
  assert.equal(reasonOf((r) => (r.headers!['fw-format'] = Buffer.from('avi')))?.code, 'CHUNK_FORMAT_UNKNOWN');
  assert.equal(reasonOf((r) => (r.key = Buffer.from('cam-2')))?.code, 'CHUNK_HEADER_INVALID');
  assert.equal(reasonOf((r) => (r.value = Buffer.alloc((1 << 20) + 1)))?.code, 'CHUNK_TOO_LARGE');
  assert.equal(reasonOf((r) => (r.value = Buffer.alloc(0)))?.code, 'CHUNK_HEADER_INVALID');
});
