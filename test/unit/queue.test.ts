import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedQueue } from '../../src/core/queue.js';

test('BoundedQueue keeps FIFO order across wrap-around', () => {
  const q = new BoundedQueue<number>(3);
  const out: number[] = [];
  for (let i = 0; i < 10; i++) {
    assert.equal(q.tryPush(i), true);
    if (q.length === 2) out.push(q.shift()!);
  }
  while (q.length) out.push(q.shift()!);
  assert.deepEqual(out, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

test('BoundedQueue refuses past capacity and push waits for room', async () => {
  const q = new BoundedQueue<string>(2);
  assert.ok(q.tryPush('a'));
  assert.ok(q.tryPush('b'));
  assert.equal(q.tryPush('c'), false);
  let pushed = false;
  const p = q.push('c').then((ok) => (pushed = ok));
  await new Promise((r) => setImmediate(r));
  assert.equal(pushed, false, 'push must wait while full');
  assert.equal(q.shift(), 'a');
  await p;
  assert.equal(pushed, true);
  assert.deepEqual([q.shift(), q.shift()], ['b', 'c']);
});

test('close wakes waiting producers with false and keeps items readable', async () => {
  const q = new BoundedQueue<number>(1);
  q.tryPush(1);
  const p = q.push(2);
  q.close();
  assert.equal(await p, false);
  assert.equal(q.shift(), 1);
  assert.equal(q.shift(), undefined);
  assert.equal(q.tryPush(3), false);
});

test('waitForItem resolves on push or after the timeout', async () => {
  const q = new BoundedQueue<number>(4);
  const t0 = Date.now();
  await q.waitForItem(30);
  assert.ok(Date.now() - t0 >= 25);
  const w = q.waitForItem(5000);
  q.tryPush(7);
  await w;
  assert.equal(q.length, 1);
});

test('capacity must be a positive integer', () => {
  assert.throws(() => new BoundedQueue(0), RangeError);
});
