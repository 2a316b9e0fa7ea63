import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DECODE_ONLY, KEEP, LOOK, SKIP, Sampler, samplingRules, samplingRuleSchema } from '../../src/decode/sampling.js';
import type { Frame } from '../../src/core/frame.js';

const W = 32;
const H = 24;
const solid = (r: number, g: number, b: number) => {
  const d = Buffer.alloc(W * H * 3);
  for (let p = 0; p < d.length; p += 3) (d[p] = r), (d[p + 1] = g), (d[p + 2] = b);
  return d;
};
const frame = (index: number, ptsMs: number, data = solid(0, 0, 0)) => ({ index, ptsMs, data }) as unknown as Frame;
const rule = (r: object) => samplingRuleSchema.parse(r);

test('rate mode keeps 5 of 30 fps, evenly', () => {
  const s = new Sampler(rule({ mode: 'rate', fps: 5 }), W, H);
  const kept: number[] = [];
  for (let i = 0; i < 60; i++) if (!s.decide(frame(i, (i * 1000) / 30), false)) kept.push(i);
  assert.deepEqual(kept, [0, 6, 12, 18, 24, 30, 36, 42, 48, 54]);
});

test('rate mode restarts its cadence after a gap instead of bursting', () => {
  const s = new Sampler(rule({ mode: 'rate', fps: 10 }), W, H);
  assert.equal(s.decide(frame(0, 0), false), undefined);
  assert.equal(s.decide(frame(1, 5000), false), undefined);
  assert.equal(s.decide(frame(2, 5040), false), 'sampled');
  assert.equal(s.decide(frame(3, 5100), false), undefined);
});

test('keyframes mode keeps keyframes only', () => {
  const s = new Sampler(rule({ mode: 'keyframes' }), W, H);
  assert.equal(s.decide(frame(0, 0), true), undefined);
  assert.equal(s.decide(frame(1, 40), false), 'sampled');
});

test('scene mode skips unchanged pictures and keeps changes, with a forced refresh', () => {
  const s = new Sampler(rule({ mode: 'scene', threshold: 0.05, maxSkipMs: 1000 }), W, H);
  assert.equal(s.decide(frame(0, 0, solid(200, 0, 0)), false), undefined, 'first frame');
  assert.equal(s.decide(frame(1, 40, solid(202, 1, 0)), false), 'unchanged', 'noise below threshold');
  assert.equal(s.decide(frame(2, 80, solid(0, 0, 200)), false), undefined, 'a cut');
  assert.equal(s.decide(frame(3, 120, solid(0, 0, 200)), false), 'unchanged');
  assert.equal(s.decide(frame(4, 1100, solid(0, 0, 200)), false), undefined, 'forced after maxSkipMs');
});

test('the first matching rule applies; default classifies every frame', () => {
  const rules = [rule({ streams: '^lobby-', mode: 'rate', fps: 1 }), rule({ mode: 'keyframes' })];
  assert.equal(samplingRules(rules)('lobby-3').mode, 'rate');
  assert.equal(samplingRules(rules)('gate-1').mode, 'keyframes');
  assert.equal(samplingRules([])('x').mode, 'all');
});

test('before decoding: keyframes mode decodes keyframes only; rate mode leaves undecoded only frames nothing references', () => {
  const key = new Sampler(rule({ mode: 'keyframes' }), W, H);
  assert.deepEqual([key.before(0, true, false), key.before(40, false, false), key.before(80, false, true)], [KEEP, SKIP, SKIP]);
  const rate = new Sampler(rule({ mode: 'rate', fps: 5 }), W, H);
  // 25 fps, keep every 5th: the others are skipped when disposable, decoded (not classified) when referenced.
  const got = Array.from({ length: 10 }, (_, i) => rate.before(i * 40, i === 0, i % 2 === 1));
  assert.deepEqual(got, [KEEP, SKIP, DECODE_ONLY, SKIP, DECODE_ONLY, KEEP, DECODE_ONLY, SKIP, DECODE_ONLY, SKIP]);
  assert.equal(new Sampler(rule({ mode: 'all' }), W, H).before(0, false, true), KEEP);
  assert.equal(new Sampler(rule({ mode: 'scene' }), W, H).before(0, false, true), LOOK, 'scene mode needs the pixels');
});
