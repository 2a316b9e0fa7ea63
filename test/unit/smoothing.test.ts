import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Smoother, smoothingSchema } from '../../src/postprocess/smoothing.js';
import type { LabelRecord } from '../../src/core/frame.js';

const rec = (frame: number, label: string, score = 0.9, stream = 'cam-1'): LabelRecord => ({
  type: 'label',
  stream,
  session: 's',
  frame,
  ptsMs: frame * 40,
  captureTs: 1000 + frame * 40,
  model: 'm',
  modelVersion: '1',
  labels: [{ label, score }, { label: 'other', score: 1 - score }],
  publishedTs: 0,
});

const run = (cfg: object, labels: string[]) =>
  new Smoother(smoothingSchema.parse(cfg)).observe(labels.map((l, i) => rec(i, l))).map((e) => `${e.from}>${e.to}@${e.atFrame}`);

test('majority smoothing with hysteresis ignores a flicker and reports a real change once', () => {
  const seq = ['red', 'red', 'red', 'blue', 'red', 'red', 'blue', 'blue', 'blue', 'blue', 'blue', 'blue'];
  assert.deepEqual(run({ method: 'majority', window: 3, hysteresis: 2 }, seq), ['red>blue@8']);
});

test('hysteresis 1 reports as soon as the window majority flips', () => {
  assert.deepEqual(run({ method: 'majority', window: 1, hysteresis: 1 }, ['a', 'b', 'a']), ['a>b@1', 'b>a@2']);
});

test('ema smoothing follows a sustained change', () => {
  const seq = [...Array(10).fill('red'), ...Array(10).fill('blue')];
  const ev = run({ method: 'ema', alpha: 0.5, hysteresis: 2 }, seq);
  assert.equal(ev.length, 1);
  assert.match(ev[0]!, /^red>blue@1[0-3]$/);
});

test('streams are independent and off means no events', () => {
  const s = new Smoother(smoothingSchema.parse({ method: 'majority', window: 1, hysteresis: 1 }));
  const ev = s.observe([rec(0, 'a', 0.9, 'x'), rec(0, 'b', 0.9, 'y'), rec(1, 'a', 0.9, 'y'), rec(1, 'a', 0.9, 'x')]);
  assert.deepEqual(ev.map((e) => `${e.stream}:${e.from}>${e.to}`), ['y:b>a']);
  assert.deepEqual(run({ method: 'off' }, ['a', 'b', 'c']), []);
});
