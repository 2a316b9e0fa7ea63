/**
 * Property-based fuzzing (fast-check) of the parsers that read bytes from cameras in process: the
 * chunk header validation (src/sources/kafka/chunk.ts), our MPEG-TS demuxer (src/decode/mpegts.ts)
 * and ingest's TS watcher (src/ingest/buffer.ts). Inputs are real x264 MPEG-TS streams (ffmpeg)
 * mutated — bytes flipped, runs overwritten, inserted, deleted, duplicated, truncated, cut into
 * random chunks — and random headers. Properties: nothing throws, outputs stay within what the
 * input could hold, memory stays bounded, and an unmutated stream demuxes the same however it is
 * chunked. FRAMEWIRE_FUZZ_RUNS scales the number of runs (default 1 = CI-sized).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { parseChunk, MAX_CHUNK_BYTES, type RawRecord } from '../../src/sources/kafka/chunk.js';
import { MAX_FRAME_BYTES, TsDemuxer } from '../../src/decode/mpegts.js';
import { TsWatcher } from '../../src/ingest/buffer.js';
import { DEAD_LETTER_REASONS } from '../../src/core/errors.js';

const SCALE = Number(process.env.FRAMEWIRE_FUZZ_RUNS ?? 1);
const executions: Record<string, number> = {};
after(() => console.log(`fuzz executions: ${JSON.stringify(executions)}`));

function encode(args: string[]): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-fuzz-'));
  try {
    const file = path.join(dir, 'v.ts');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=160x120:r=25:d=2', ...args, '-f', 'mpegts', file]);
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const streams = {
  lengths: encode(['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-omit_video_pes_length', '0']),
  plain: encode(['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-bf', '2']),
  hevc: encode(['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=none:keyint=10', '-omit_video_pes_length', '0']),
};
const streamNames = Object.keys(streams) as (keyof typeof streams)[];

type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; n: number }
  | { kind: 'duplicate'; at: number; n: number }
  | { kind: 'truncate'; at: number };

const pos = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: pos, xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('overwrite' as const), at: pos, bytes: fc.uint8Array({ minLength: 1, maxLength: 400 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: pos, bytes: fc.uint8Array({ minLength: 1, maxLength: 400 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: pos, n: fc.integer({ min: 1, max: 2000 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: pos, n: fc.integer({ min: 1, max: 4000 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: pos }),
);

function mutate(src: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(src);
  for (const m of ms) {
    const at = Math.floor(m.at * b.length);
    switch (m.kind) {
      case 'flip':
        b[at] = b[at]! ^ m.xor;
        break;
      case 'overwrite':
        Buffer.from(m.bytes).copy(b, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
        break;
      case 'duplicate':
        b = Buffer.concat([b.subarray(0, at + m.n), b.subarray(at, at + m.n), b.subarray(at + m.n)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
    }
  }
  return b;
}

/** Cuts at the given fractions (sorted, deduplicated), as Kafka chunks would. */
function split(b: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => Math.floor(c * b.length)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const a of at) {
    if (a > prev) out.push(b.subarray(prev, a));
    prev = Math.max(prev, a);
  }
  if (prev < b.length) out.push(b.subarray(prev));
  return out;
}

interface Unit {
  pts: number;
  key: boolean;
  size: number;
  seq: number;
  crc: string;
}

function demuxAll(chunks: Buffer[], flush = true): { units: Unit[]; d: TsDemuxer } {
  const d = new TsDemuxer();
  const units: Unit[] = [];
  const out = (au: { data: Buffer; pts: number; key: boolean; seq: number }) => units.push({ pts: au.pts, key: au.key, size: au.data.length, seq: au.seq, crc: au.data.subarray(0, 32).toString('hex') + au.data.length });
  chunks.forEach((c, i) => d.push(c, i, String(i), out));
  if (flush) d.flush(out);
  return { units, d };
}

test('TS demuxer: mutated and truncated real streams, cut anywhere, never throw and stay within their input', () => {
  const runs = 3000 * SCALE;
  fc.assert(
    fc.property(fc.constantFrom(...streamNames), fc.array(mutation, { minLength: 1, maxLength: 12 }), fc.array(pos, { maxLength: 40 }), (name, ms, cuts) => {
      executions.demuxer = (executions.demuxer ?? 0) + 1;
      const bytes = mutate(streams[name], ms);
      const chunks = split(bytes, cuts);
      const { units } = demuxAll(chunks);
      let total = 0;
      for (const u of units) {
        assert.ok(u.size > 0 && u.size <= MAX_FRAME_BYTES, 'frame size');
        assert.ok(Number.isFinite(u.pts), 'a frame without a finite pts');
        assert.ok(u.seq >= 0 && u.seq < chunks.length, 'frame attributed to a chunk that was not pushed');
        total += u.size;
      }
      // PES payloads are carved out of the input: together never more than it holds.
      assert.ok(total <= bytes.length, `frames hold ${total} bytes of a ${bytes.length}-byte input`);
      // Frames come out with 188-byte packets of at most 184 payload bytes each.
      assert.ok(units.length <= Math.ceil(bytes.length / 188) + 1);
    }),
    { numRuns: runs, seed: 12_012 },
  );
});

test('TS demuxer: an unmutated stream gives the same frames however it is chunked', () => {
  const whole = Object.fromEntries(streamNames.map((n) => [n, demuxAll([streams[n]]).units]));
  fc.assert(
    fc.property(fc.constantFrom(...streamNames), fc.array(pos, { minLength: 1, maxLength: 60 }), (name, cuts) => {
      executions.chunking = (executions.chunking ?? 0) + 1;
      const got = demuxAll(split(streams[name], cuts)).units.map(({ seq: _s, ...u }) => u);
      assert.deepEqual(got, whole[name]!.map(({ seq: _s, ...u }) => u));
    }),
    { numRuns: 300 * SCALE, seed: 12_013 },
  );
});

test('TS demuxer: no PES boundary for 20 MiB keeps memory bounded (hostile unbounded PES)', () => {
  executions.unbounded = (executions.unbounded ?? 0) + 1;
  // One video PES start (stream id E0, length 0 = unbounded), then continuation packets forever.
  const start = Buffer.alloc(188, 0xff);
  start.set([0x47, 0x41, 0x00, 0x10, 0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 0x21, 0, 1, 0, 1]);
  const cont = Buffer.alloc(188, 0xaa);
  cont.set([0x47, 0x01, 0x00, 0x10]);
  const d = new TsDemuxer();
  const chunk = Buffer.concat(Array.from({ length: 5000 }, () => cont));
  d.push(start, 0, '0', () => assert.fail('no frame expected'));
  const rss0 = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 24; i++) d.push(chunk, i + 1, String(i + 1), () => undefined);
  const grown = process.memoryUsage().arrayBuffers - rss0;
  assert.ok(d.damaged >= 1, 'the oversized frame is counted as damaged');
  assert.ok(grown < 2 * MAX_FRAME_BYTES + (8 << 20), `demuxer memory grew by ${grown} bytes`);
});

test('ingest TS watcher: mutated streams never throw; keyframe offsets are packet starts inside their piece', () => {
  fc.assert(
    fc.property(fc.constantFrom(...streamNames), fc.array(mutation, { maxLength: 8 }), fc.array(pos, { maxLength: 30 }), (name, ms, cuts) => {
      executions.watcher = (executions.watcher ?? 0) + 1;
      const w = new TsWatcher();
      for (const piece of split(mutate(streams[name], ms), cuts)) {
        const { keyStarts, frameStarts } = w.observe(piece);
        for (const k of keyStarts) {
          assert.ok(k.offset >= 0 && k.offset + 188 <= piece.length && piece[k.offset] === 0x47);
          assert.ok(Number.isFinite(k.pts));
        }
        for (const f of frameStarts) assert.ok(f >= 0 && f < piece.length);
      }
    }),
    { numRuns: 1000 * SCALE, seed: 12_014 },
  );
});

const headerValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('0', '-1', '1e3', '00', '18446744073709551616', '9'.repeat(400), ' 1', '1 ', 'NaN', 'mpegts', 'MPEGTS', '', '\u0000', 'a\nb'),
  fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  fc.constant(undefined),
);
const headerName = fc.constantFrom('fw-stream', 'fw-session', 'fw-seq', 'fw-format', 'fw-epoch-ms', 'fw-eos', 'traceparent', 'other');
const CODES = new Set(Object.keys(DEAD_LETTER_REASONS));

test('chunk headers: arbitrary headers, keys and values are accepted only when valid, otherwise rejected with a reason; never thrown', () => {
  const valid = { 'fw-stream': 'cam-1', 'fw-session': 's1', 'fw-seq': '7', 'fw-format': 'mpegts', 'fw-epoch-ms': '1764120000123' };
  fc.assert(
    fc.property(
      fc.dictionary(headerName, headerValue, { maxKeys: 8 }),
      fc.boolean(),
      fc.option(fc.oneof(fc.constant('cam-1'), fc.string({ maxLength: 10 })), { nil: null }),
      fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 64 }), fc.constant(MAX_CHUNK_BYTES + 1)),
      (overrides, startValid, key, valueLen) => {
        executions.headers = (executions.headers ?? 0) + 1;
        const headers = { ...(startValid ? valid : {}), ...overrides } as RawRecord['headers'];
        const r: RawRecord = { topic: 't', partition: 0, offset: '5', key: key === null ? null : Buffer.from(key), value: valueLen === null ? null : Buffer.alloc(valueLen), headers };
        const res = parseChunk(r);
        if ('code' in res) {
          assert.ok(CODES.has(res.code), res.code);
          assert.equal(typeof res.detail, 'string');
          assert.ok(res.detail.length < 300 && !/[\r\n]/.test(res.detail), `detail: ${JSON.stringify(res.detail)}`);
          return;
        }
        assert.ok(Number.isSafeInteger(res.seq) && res.seq >= 0, `seq ${res.seq}`);
        assert.ok(Number.isSafeInteger(res.epochMs) && res.epochMs >= 0, `epoch ${res.epochMs}`);
        assert.ok(res.stream.length > 0 && res.session.length > 0);
        if (key !== null) assert.equal(res.stream, key);
        assert.ok(res.value.length > 0 && res.value.length <= MAX_CHUNK_BYTES);
      },
    ),
    { numRuns: 20_000 * SCALE, seed: 12_015 },
  );
});
