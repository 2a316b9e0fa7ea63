import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundedQueue } from '../../src/core/queue.js';
import { Batcher } from '../../src/batch/batcher.js';
import type { Frame } from '../../src/core/frame.js';

const frame = (i: number) => ({ index: i }) as unknown as Frame;

test('a full batch is returned at once', async () => {
  const q = new BoundedQueue<Frame>(16);
  for (let i = 0; i < 10; i++) q.tryPush(frame(i));
  const b = new Batcher(q, 4, 10_000);
  const t0 = Date.now();
  const batch = await b.next();
  assert.deepEqual(batch!.map((f) => f.index), [0, 1, 2, 3]);
  assert.ok(Date.now() - t0 < 1000, 'must not wait when the batch is full');
});

test('a partial batch waits at most maxWaitMs and picks up frames arriving meanwhile', async () => {
  const q = new BoundedQueue<Frame>(16);
  q.tryPush(frame(0));
  const b = new Batcher(q, 8, 60);
  setTimeout(() => q.tryPush(frame(1)), 10);
  const t0 = Date.now();
  const batch = await b.next();
  const waited = Date.now() - t0;
  assert.deepEqual(batch!.map((f) => f.index), [0, 1]);
  assert.ok(waited >= 50 && waited < 1000, `waited ${waited} ms`);
});

test('next() resolves undefined once the queue is closed and drained', async () => {
  const q = new BoundedQueue<Frame>(4);
  q.tryPush(frame(0));
  q.close();
  const b = new Batcher(q, 4, 1000);
  assert.equal((await b.next())!.length, 1);
  assert.equal(await b.next(), undefined);
});
