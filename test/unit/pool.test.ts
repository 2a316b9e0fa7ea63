import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool } from '../../src/core/pool.js';

test('a pool recycles buffers of its size and keeps at most its byte cap free', () => {
  const pool = new BufferPool(1000, 4500);
  assert.equal(pool.maxFree, 4);
  const bufs = Array.from({ length: 10 }, () => pool.take());
  assert.equal(new Set(bufs).size, 10, 'an empty pool allocates');
  for (const b of bufs) pool.give(b);
  assert.equal(pool.freeCount, 4, 'a burst of 10 leaves only 4 behind');
  const again = pool.take();
  assert.ok(bufs.includes(again), 'a free buffer is reused');
  pool.give(Buffer.alloc(999));
  assert.equal(pool.freeCount, 3, 'a buffer of another size is not taken in');
});

test('a pool of large buffers still keeps two', () => {
  assert.equal(new BufferPool(64 * 1024 * 1024).maxFree, 2);
});
