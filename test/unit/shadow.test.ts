/** Shadow models: the rolling report's arithmetic, batch sampling, and who goes first under load (fake Triton). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShadowReport, ShadowRunner } from '../../src/infer/shadow.js';
import { formatShadowReport } from '../../src/shadow/cli.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import type { ModelSpec } from '../../src/infer/triton/model.js';
import type { TritonPool } from '../../src/infer/triton/pool.js';

const L = (label: string, score: number) => ({ label, score });

test('report: agreement, mean |Δ| of the primary top label, confusion and per stream, over the latest window', () => {
  const r = new ShadowReport(4);
  r.add({ stream: 'a', primary: [L('sfw', 0.9), L('nsfw', 0.1)], shadow: [L('sfw', 0.8), L('nsfw', 0.2)], primaryMs: 10, shadowMs: 4 });
  r.add({ stream: 'a', primary: [L('nsfw', 0.6), L('sfw', 0.4)], shadow: [L('sfw', 0.55), L('nsfw', 0.45)], primaryMs: 20, shadowMs: 6 });
  r.add({ stream: 'b', primary: [L('sfw', 0.7)], shadow: [L('sfw', 0.7)], primaryMs: 30, shadowMs: 8 });
  let s = r.summary({ model: 'p', modelVersion: '1', shadow: 's', shadowVersion: '1' });
  assert.equal(s.frames, 3);
  assert.equal(s.agreement, 2 / 3);
  assert.ok(Math.abs(s.meanAbsDelta - (0.1 + 0.15 + 0) / 3) < 1e-12);
  assert.deepEqual(s.confusion, { sfw: { sfw: 2 }, nsfw: { sfw: 1 } });
  assert.deepEqual(s.streams, { a: { frames: 2, agreement: 0.5 }, b: { frames: 1, agreement: 1 } });
  assert.deepEqual(s.latencyMs, { primary: 20, shadow: 6 });
  // Two more: the window keeps the latest four (the first frame rolls out).
  r.add({ stream: 'b', primary: [L('sfw', 0.5)], shadow: [L('sfw', 0.5)], primaryMs: 10, shadowMs: 2 });
  r.add({ stream: 'b', primary: [L('sfw', 0.5)], shadow: [L('sfw', 0.5)], primaryMs: 10, shadowMs: 2 });
  s = r.summary({ model: 'p', modelVersion: '1', shadow: 's', shadowVersion: '1' });
  assert.equal(s.frames, 4);
  assert.equal(s.agreement, 3 / 4);
  assert.deepEqual(s.streams.a, { frames: 1, agreement: 0 });
  const text = formatShadowReport(s).join('\n');
  assert.match(text, /top-1 agreement 75\.0 %/);
  assert.match(text, /^\s+nsfw\s+1$/m, 'the confusion row of nsfw: its one frame taken as sfw by the shadow');
});

const spec = (name: string): ModelSpec => ({ name, version: '1', requestVersion: '', inputName: 'x', inputDatatype: 'UINT8', elementBytes: 1, height: 2, width: 2, clipFrames: 0, maxBatchSize: 8, outputName: 'y', classes: 2 });

/** A Triton that answers each shadow request when told to. */
function fakePool() {
  const pending: (() => void)[] = [];
  const pool = {
    inferAside: (batch: { shape: number[] }) =>
      new Promise((resolve) => {
        const n = batch.shape[0]!;
        // Classification strings as Triton sends them: length-prefixed "score:index:label".
        const parts: Buffer[] = [];
        for (let i = 0; i < n * 2; i++) {
          const s = Buffer.from(i % 2 === 0 ? '0.9:0:sfw' : '0.1:1:nsfw');
          const len = Buffer.alloc(4);
          len.writeUInt32LE(s.length);
          parts.push(len, s);
        }
        pending.push(() => resolve({ raw_output_contents: [Buffer.concat(parts)], model_version: '1' }));
      }),
  } as unknown as TritonPool;
  return { pool, answer: () => pending.shift()?.(), waiting: () => pending.length };
}

test('sampling takes whole batches, a share of the frames on average', () => {
  const { pool } = fakePool();
  const s = new ShadowRunner({ primary: spec('p'), shadow: spec('s'), sample: 0.25, live: true, pool, metrics: new Metrics(), timeoutMs: 1000 });
  let frames = 0;
  for (let i = 0; i < 400; i++) if (s.sampled(8)) frames += 8;
  assert.equal(frames, 800, 'a quarter of 3,200 frames, in batches of 8');
});

test('live: a sampled batch is skipped while a shadow request is in flight or the primary is busy; replay waits instead', async () => {
  const primary = [[L('sfw', 0.8), L('nsfw', 0.2)], [L('nsfw', 0.7), L('sfw', 0.3)]];
  const live = fakePool();
  const s = new ShadowRunner({ primary: spec('p'), shadow: spec('s'), sample: 1, live: true, pool: live.pool, metrics: new Metrics(), timeoutMs: 1000 });
  const first = s.compare(Buffer.alloc(8), 2, ['a', 'a'], primary, 10, false);
  await s.compare(Buffer.alloc(8), 2, ['a', 'a'], primary, 10, false); // in flight: skipped at once
  assert.equal(s.report.skipped, 2);
  live.answer();
  await first;
  await s.compare(Buffer.alloc(8), 2, ['a', 'a'], primary, 10, true); // primary busy: skipped
  assert.equal(s.report.skipped, 4);
  assert.equal(s.report.frames, 2);
  const sum = s.summary('1');
  assert.equal(sum.agreement, 0.5, 'frame 0 agrees (sfw), frame 1 does not (nsfw vs sfw)');

  const replay = fakePool();
  const r = new ShadowRunner({ primary: spec('p'), shadow: spec('s'), sample: 1, live: false, pool: replay.pool, metrics: new Metrics(), timeoutMs: 1000 });
  const a = r.compare(Buffer.alloc(8), 2, ['a', 'a'], primary, 10, true);
  const b = r.compare(Buffer.alloc(8), 2, ['a', 'a'], primary, 10, true);
  await new Promise((res) => setTimeout(res, 10));
  assert.equal(replay.waiting(), 1, 'the second waits for the first');
  replay.answer();
  await a;
  await new Promise((res) => setTimeout(res, 10));
  replay.answer();
  await b;
  assert.equal(r.report.frames, 4);
  assert.equal(r.report.skipped, 0, 'replay compares every sampled batch');
});
