/** Shadow models: the rolling report's arithmetic, batch sampling, and who goes first under load (fake Triton). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShadowReport, ShadowRunner } from '../../src/infer/shadow.js';
import { formatPromotion, formatShadowReport } from '../../src/shadow/cli.js';
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

test('report: the running agreement equals the summary\'s over a window that has rolled over many times', () => {
  const r = new ShadowReport(7);
  let state = 1;
  for (let i = 0; i < 200; i++) {
    state = (state * 48271) % 2147483647;
    const agree = state % 3 !== 0;
    r.add({ stream: 'a', primary: [L('sfw', 0.9)], shadow: [L(agree ? 'sfw' : 'nsfw', 0.9)], primaryMs: 1, shadowMs: 1 });
    assert.equal(r.agreement, r.summary({ model: 'p', modelVersion: '1', shadow: 's', shadowVersion: '1' }).agreement, `after frame ${i}`);
  }
});

test('promoteWhen: asks once the report holds enough frames at the agreement, once, and again only after retryPromotion', async () => {
  const primary = [[L('sfw', 0.8)], [L('nsfw', 0.7)]]; // the fake shadow's top-1 is sfw for each: half agree
  const run = async (promoteWhen: { agreement: number; frames: number }, batches: number) => {
    const { pool, answer } = fakePool();
    let asked = 0;
    const s = new ShadowRunner({ primary: spec('p'), shadow: spec('s'), sample: 1, live: false, pool, metrics: new Metrics(), timeoutMs: 1000, window: 10, promoteWhen, promote: () => asked++ });
    for (let i = 0; i < batches; i++) {
      const p = s.compare(Buffer.alloc(8), 2, ['a', 'a'], primary, 10, false);
      await new Promise((res) => setImmediate(res));
      answer();
      await p;
    }
    return { s, asked: () => asked, answer };
  };
  // Half the frames agree: 0.5 meets 0.5 from the 4th frame on, asked once however many follow.
  const met = await run({ agreement: 0.5, frames: 4 }, 5);
  assert.equal(met.asked(), 1);
  assert.equal(met.s.promotable(), false, 'under way: not asked again');
  met.s.retryPromotion();
  assert.equal(met.s.promotable(), true, 'a failed promotion may ask again');
  // Too few frames, or agreement under the bar: never.
  assert.equal((await run({ agreement: 0.5, frames: 10 }, 4)).asked(), 0, '8 frames < 10');
  assert.equal((await run({ agreement: 0.51, frames: 4 }, 6)).asked(), 0, '0.5 < 0.51');
  // Without promoteWhen, promotion stays manual.
  const { pool } = fakePool();
  assert.equal(new ShadowRunner({ primary: spec('p'), shadow: spec('s'), sample: 1, live: false, pool, metrics: new Metrics(), timeoutMs: 1000 }).promotable(), false);
});

test('shadow report: a promotion is one line naming both models, the report that met the condition and the condition', () => {
  const line = formatPromotion({ type: 'promotion', stream: '*', model: 'open_nsfw_int8', modelVersion: '1', from: 'open_nsfw', fromVersion: '1', agreement: 0.995, frames: 66, promoteWhen: { agreement: 0.99, frames: 40 }, ts: Date.UTC(2026, 11, 3, 12) });
  assert.equal(line, 'promoted at 2026-12-03T12:00:00.000Z: open_nsfw_int8 v1 replaced open_nsfw v1 (agreement 99.5 % over 66 frames; promoteWhen 99.0 % over 40)');
});
