/** `framewire clip`: which chunks an alert's records say its clip is cut from (pure). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planClip } from '../../src/clip/cli.js';
import type { AlertRecord } from '../../src/core/events.js';

const base: AlertRecord = { type: 'alert', id: 'r:cam:1', rule: 'r', stream: 'cam', session: 's1', state: 'firing', severity: 'warning', label: 'red', score: 0.9, fromFrame: 30, atFrame: 35, captureTs: 1, publishedTs: 2, partition: 3, offset: 14, fromOffset: 12, clipFrame: 24, clipOffset: 9 };

test('a resolved episode: from the keyframe chunk before fromFrame to the chunk its last frame began in', () => {
  const plan = planClip([base, { ...base, state: 'resolved', atFrame: 59, offset: 20 }]);
  assert.deepEqual(plan, { stream: 'cam', session: 's1', partition: 3, fromOffset: '9', toOffset: '20', clipFrame: 24, fromFrame: 30, lastFrame: 59, open: false });
});

test('an open episode ends at the frame it fired at, and says so', () => {
  const plan = planClip([base]);
  assert.ok(typeof plan !== 'string');
  assert.equal(plan.toOffset, '14');
  assert.equal(plan.lastFrame, 35);
  assert.equal(plan.open, true);
});

test('records without clip lineage, or a stale alert with no frame, have no clip (the reason given)', () => {
  const { clipFrame: _f, clipOffset: _o, ...old } = base;
  assert.match(String(planClip([old])), /no clip lineage/);
  assert.match(String(planClip([{ ...base, label: undefined, score: undefined, fromFrame: -1, atFrame: -1 }])), /stale alert/);
  assert.equal(planClip([]), 'no records');
});
