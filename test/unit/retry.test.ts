import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FramewireError } from '../../src/core/errors.js';
import { backoffMs, isAbort, isRetriableError, retry, sleep } from '../../src/core/retry.js';

const transient = () => new FramewireError('SINK_PUBLISH_FAILED', 'sink', 'broker away', { retriable: true });
const final = () => new FramewireError('INFER_INVALID_ARGUMENT', 'infer', 'bad request', { retriable: false });

test('backoff is full jitter: uniform below min(max, base·2^attempt)', () => {
  assert.equal(backoffMs(0, 100, 5000, () => 0.999999) < 100, true);
  assert.equal(Math.round(backoffMs(3, 100, 5000, () => 0.5)), 400);
  assert.equal(Math.round(backoffMs(10, 100, 5000, () => 0.5)), 2500, 'capped at maxMs');
  assert.equal(backoffMs(5, 100, 5000, () => 0), 0, 'the lower end is 0, not a floor');
  // With Math.random the waits spread over the whole window.
  const waits = Array.from({ length: 2000 }, () => backoffMs(2, 100, 5000));
  assert.ok(Math.max(...waits) <= 400 && Math.min(...waits) >= 0);
  assert.ok(waits.filter((w) => w < 200).length > 800 && waits.filter((w) => w >= 200).length > 800, 'uniform, not clustered');
});

test('retries retriable errors until success, waiting the jittered backoff', async () => {
  const waits: number[] = [];
  let calls = 0;
  const t0 = Date.now();
  const v = await retry(
    async (attempt) => {
      calls++;
      assert.equal(attempt, calls - 1);
      if (calls < 4) throw transient();
      return 'ok';
    },
    { attempts: 10, baseMs: 20, maxMs: 1000, random: () => 1, onRetry: (_e, _a, w) => waits.push(w) },
  );
  assert.equal(v, 'ok');
  assert.equal(calls, 4);
  assert.deepEqual(waits, [20, 40, 80]);
  assert.ok(Date.now() - t0 >= 130, 'it really waited');
});

test('a non-retriable error is thrown at once; attempts bound the loop', async () => {
  let calls = 0;
  await assert.rejects(retry(async () => { calls++; throw final(); }, { attempts: 5, baseMs: 1, maxMs: 1 }), /bad request/);
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(retry(async () => { calls++; throw transient(); }, { attempts: 3, baseMs: 1, maxMs: 1 }), /broker away/);
  assert.equal(calls, 3);
  // Plain errors are final unless they say otherwise (kafkajs errors carry `retriable`).
  assert.equal(isRetriableError(new Error('x')), false);
  assert.equal(isRetriableError(Object.assign(new Error('x'), { retriable: true })), true);
  calls = 0;
  await assert.rejects(retry(async () => { calls++; throw new Error('plain'); }, { attempts: 3, baseMs: 1, maxMs: 1, retriable: () => true }));
  assert.equal(calls, 3, 'a custom classifier is used');
});

test('abort ends a wait at once and an attempt under way, with an AbortError', async () => {
  const ac = new AbortController();
  let calls = 0;
  const t0 = Date.now();
  const p = retry(async () => { calls++; throw transient(); }, { attempts: Infinity, baseMs: 10_000, maxMs: 10_000, random: () => 1, signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  await assert.rejects(p, (e) => isAbort(e));
  assert.ok(Date.now() - t0 < 1000, 'the 10 s wait was cut short');
  assert.equal(calls, 1);

  // An attempt that never settles (a send to a dead broker) is abandoned too.
  const ac2 = new AbortController();
  const hang = retry(() => new Promise<never>(() => {}), { attempts: Infinity, baseMs: 1, maxMs: 1, signal: ac2.signal });
  setTimeout(() => ac2.abort(), 20);
  await assert.rejects(hang, (e) => isAbort(e));

  // Already aborted: fn is never called.
  let called = false;
  await assert.rejects(retry(async () => { called = true; }, { attempts: 3, baseMs: 1, maxMs: 1, signal: AbortSignal.abort() }), (e) => isAbort(e));
  assert.equal(called, false);
  await assert.rejects(sleep(10_000, AbortSignal.abort()), (e) => isAbort(e));
});
