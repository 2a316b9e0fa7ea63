import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, type BatcherOptions, type SchedulerDrop } from '../../src/batch/batcher.js';
import { LatencyEstimator } from '../../src/batch/estimator.js';
import type { Frame } from '../../src/core/frame.js';

/** A frame of `stream` with the given deadline (Unix ms on the fake clock). */
const frame = (stream: string, index: number, deadlineTs: number) =>
  ({ stream, session: 's', index, deadlineTs, captureTs: deadlineTs - 250, decodedAt: 0 }) as unknown as Frame;

function setup(over: Partial<BatcherOptions> = {}, latencyMs = 20) {
  let now = 1_000_000;
  const dropped: [string, number, SchedulerDrop][] = [];
  const estimator = new LatencyEstimator(latencyMs);
  const b = new Batcher({
    maxBatch: 4,
    maxWaitMs: 50,
    mode: 'live',
    streamQueueFrames: 8,
    queueFrames: 64,
    marginMs: 5,
    // No probes unless a test asks for them.
    probeMs: Infinity,
    estimator,
    drop: (f, reason) => dropped.push([f.stream, f.index, reason]),
    now: () => now,
    ...over,
  });
  return { b, dropped, estimator, clock: { get: () => now, advance: (ms: number) => (now += ms) } };
}

test('batches take the earliest deadlines across streams (EDF)', async () => {
  const { b, clock } = setup();
  const t = clock.get();
  await b.push(frame('a', 0, t + 300));
  await b.push(frame('a', 1, t + 340));
  await b.push(frame('b', 0, t + 200));
  await b.push(frame('c', 0, t + 310));
  await b.push(frame('b', 1, t + 240));
  assert.deepEqual(b.plan(t), { take: 4 }, 'a full batch goes at once');
  assert.deepEqual(b.take(4).map((f) => `${f.stream}${f.index}`).sort(), ['a0', 'b0', 'b1', 'c0'], 'the four earliest deadlines');
  assert.equal(b.length, 1);
});

test('a frame that cannot make its deadline even alone is dropped before inference (live)', async () => {
  const { b, dropped, clock } = setup({}, 20);
  const t = clock.get();
  await b.push(frame('a', 0, t + 10)); // 20 ms inference + 5 ms margin > 10 ms left
  await b.push(frame('a', 1, t + 200));
  const p = b.plan(t);
  assert.deepEqual(dropped, [['a', 0, 'deadline']]);
  assert.ok('waitMs' in p);
  assert.equal(b.length, 1);
});

test('a live batch is only as large as still finishes before its earliest deadline', async () => {
  const { b, estimator, clock } = setup({ maxBatch: 8 });
  for (let i = 0; i < 30; i++) {
    estimator.observe(1, 12);
    estimator.observe(8, 82); // 10 ms per frame + 2 ms
  }
  const t = clock.get();
  for (let i = 0; i < 8; i++) await b.push(frame(`s${i}`, 0, t + 60 + i));
  // 60 ms left minus 5 ms margin: est(n) = 2 + 10n fits n = 5, not the full 8.
  assert.deepEqual(b.plan(t), { take: 5 });
  assert.deepEqual(b.take(5).map((f) => f.stream), ['s0', 's1', 's2', 's3', 's4']);
});

test('the projected server backlog is re-anchored at each completion, so it cannot run away', async () => {
  const { b, estimator, clock } = setup({ maxBatch: 1 });
  for (let i = 0; i < 10; i++) estimator.observe(1, 100); // pessimistic: real requests take 10 ms
  const t = clock.get();
  for (let i = 0; i < 20; i++) {
    await b.push(frame('a', i, t + 10_000));
    assert.equal(b.take(1).length, 1);
    clock.advance(10);
    b.settled();
  }
  // Without re-anchoring the backlog would now reach 2 s past the clock; a frame due in 150 ms
  // would look infeasible and be dropped.
  await b.push(frame('a', 99, clock.get() + 150));
  assert.deepEqual(b.plan(clock.get()), { take: 1 });
});

test('the wait for more frames is cut short by the earliest deadline', async () => {
  const { b, clock } = setup({ maxWaitMs: 100 }, 20);
  const t = clock.get();
  await b.push(frame('a', 0, t + 60));
  // Latest start for a batch of 2: 60 - est(2) - 5 ms margin; well before the 100 ms max wait.
  const p = b.plan(t) as { waitMs: number };
  assert.ok(p.waitMs > 0 && p.waitMs < 60, `waits ${p.waitMs} ms`);
  clock.advance(p.waitMs);
  assert.deepEqual(b.plan(clock.get()), { take: 1 });
});

test('with distant deadlines the batch waits up to maxWaitMs, then goes partial', async () => {
  const { b, clock } = setup({ maxWaitMs: 30 }, 20);
  const t = clock.get();
  await b.push(frame('a', 0, t + 10_000));
  assert.deepEqual(b.plan(t), { waitMs: 30 });
  clock.advance(10);
  await b.push(frame('b', 0, t + 10_000));
  assert.deepEqual(b.plan(clock.get()), { waitMs: 20 }, 'the wait counts from the oldest waiting frame');
  clock.advance(20);
  assert.deepEqual(b.plan(clock.get()), { take: 2 });
});

test('one busy stream cannot starve the others: a full stream queue drops its own oldest (overload)', async () => {
  const { b, dropped, clock } = setup({ streamQueueFrames: 3 });
  const t = clock.get();
  for (let i = 0; i < 10; i++) await b.push(frame('busy', i, t + 1000 + i));
  await b.push(frame('quiet', 0, t + 1005));
  assert.deepEqual(dropped.map(([s, i, r]) => `${s}${i}:${r}`), ['busy0:overload', 'busy1:overload', 'busy2:overload', 'busy3:overload', 'busy4:overload', 'busy5:overload', 'busy6:overload']);
  const batch = b.take(4).map((f) => `${f.stream}${f.index}`);
  assert.ok(batch.includes('quiet0'), `quiet stream served: ${batch}`);
});

/**
 * Rounds of overload: each round 'early' and 'late' push 3 frames each ('early' always with the
 * earlier deadlines), one batch of 3 goes, and the rest expire before the next round.
 */
async function overloadRounds(b: Batcher, clock: { get(): number; advance(ms: number): number }, rounds: number) {
  const served = { early: 0, late: 0 };
  for (let round = 0; round < rounds; round++) {
    const now = clock.get();
    for (let i = 0; i < 3; i++) {
      await b.push(frame('early', round * 3 + i, now + 60 + i));
      await b.push(frame('late', round * 3 + i, now + 70 + i));
    }
    for (const f of b.take(3)) served[f.stream as 'early' | 'late']++;
    b.settled();
    clock.advance(100);
    b.plan(clock.get());
    assert.equal(b.length, 0, 'the rest expired');
  }
  return served;
}

test('under overload the streams share what can make it: the least-served stream goes first', async () => {
  const { b, dropped, clock } = setup({ maxBatch: 3 }, 20);
  // Pure EDF with equal per-batch shares would give 'early' 2 of every 3.
  const served = await overloadRounds(b, clock, 20);
  assert.equal(dropped.length, 60);
  assert.ok(Math.abs(served.early - served.late) <= 2, `early ${served.early}, late ${served.late}`);
});

test('fairShares false: earliest deadline first only, within equal per-batch shares', async () => {
  const { b, clock } = setup({ maxBatch: 3, fairShares: false }, 20);
  assert.deepEqual(await overloadRounds(b, clock, 10), { early: 20, late: 10 }, 'two of each three to the earlier deadlines');
});

test('a stream that was idle does not bank priority over the active ones', async () => {
  const { b, clock } = setup({ maxBatch: 2 });
  const t = clock.get();
  for (let i = 0; i < 10; i++) {
    await b.push(frame('a', i, t + 500 + i));
    await b.push(frame('b', i, t + 500 + i));
    b.take(2);
    b.settled();
  }
  // 'c' was idle while a and b were served 10 frames each; one frame per batch from here.
  for (let i = 0; i < 6; i++) {
    await b.push(frame('c', i, t + 400 + i));
    await b.push(frame('a', 10 + i, t + 600 + i));
  }
  const order = Array.from({ length: 6 }, () => {
    const [f] = b.take(1);
    b.settled();
    return f!.stream;
  });
  assert.ok(order.filter((s) => s === 'a').length >= 2, `c took over: ${order.join(' ')}`);
});

test('a frame that could wait for the next batch never displaces one that cannot', async () => {
  const { b, clock } = setup({ maxBatch: 2 }, 20);
  const t = clock.get();
  // 'a' has been served a lot, so fairness alone would pick 'b'; but a0 must go now or never.
  for (let i = 0; i < 5; i++) {
    await b.push(frame('a', 100 + i, t + 1000));
    b.take(1);
    b.settled();
  }
  await b.push(frame('a', 0, t + 42)); // urgent: 20 ms for this batch + 20 for the next + 5 margin > 42
  await b.push(frame('b', 0, t + 500));
  await b.push(frame('b', 1, t + 510));
  assert.deepEqual(b.take(1).map((f) => `${f.stream}${f.index}`), ['a0']);
});

test('equal deadlines are served round-robin across streams', async () => {
  const { b, clock } = setup({ maxBatch: 2 });
  const t = clock.get();
  for (let i = 0; i < 2; i++) for (const s of ['a', 'b', 'c']) await b.push(frame(s, i, t + 500));
  const order = [...b.take(2), ...b.take(2), ...b.take(2)].map((f) => f.stream);
  assert.deepEqual(order.slice(0, 3).sort(), ['a', 'b', 'c']);
});

test('replay mode drops nothing and makes producers wait while full', async () => {
  const { b, dropped, clock } = setup({ mode: 'replay', streamQueueFrames: 2 });
  const t = clock.get();
  await b.push(frame('a', 0, t - 5000)); // long past its deadline: replay keeps it
  await b.push(frame('a', 1, t - 4000));
  let third = false;
  const pushed = b.push(frame('a', 2, t));
  assert.ok(pushed instanceof Promise, 'a full queue in replay mode makes the producer wait');
  const p = pushed.then(() => (third = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(third, false, 'push waits while the stream queue is full');
  assert.deepEqual(b.plan(t), { waitMs: 50 });
  assert.deepEqual(b.take(1).map((f) => f.index), [0]);
  await p;
  assert.equal(third, true);
  assert.deepEqual(dropped, []);
});

test('next() drains what is left after close, then ends', async () => {
  const { b, clock } = setup();
  await b.push(frame('a', 0, clock.get() + 10_000));
  b.close();
  assert.equal((await b.next())!.length, 1);
  assert.equal(await b.next(), undefined);
});

test('live: after a quiet spell, a frame the estimate calls infeasible goes alone as a probe', async () => {
  const { b, dropped, estimator, clock } = setup({ probeMs: 500 }, 20);
  for (let i = 0; i < 10; i++) estimator.observe(1, 300); // a bad spell: every frame looks infeasible
  const t = clock.get();
  await b.push(frame('a', 0, t + 150));
  await b.push(frame('a', 1, t + 160));
  await b.push(frame('b', 0, t + 3)); // past saving even in reality: dropped, never probed
  assert.deepEqual(b.plan(t), { take: 1 }, 'nothing sent for 500 ms: probe');
  assert.deepEqual(dropped, [['b', 0, 'deadline']]);
  assert.deepEqual(b.take(1).map((f) => `${f.stream}${f.index}`), ['a0']);
  b.settled();
  // Just sent: the estimate rules again until the next quiet spell.
  b.plan(t + 1);
  assert.deepEqual(dropped.map(([s, i]) => `${s}${i}`), ['b0', 'a1']);
});

test('the latency estimate forgets observations older than its horizon', () => {
  let now = 0;
  const e = new LatencyEstimator(50, 64, 5000, () => now);
  for (let i = 0; i < 40; i++) e.observe(1, 300);
  assert.ok(e.estimate(1) >= 299);
  now += 6000;
  e.observe(1, 12); // the first request after the spell
  assert.ok(Math.abs(e.estimate(1) - 12) < 0.5, `estimate ${e.estimate(1)} still remembers the spell`);
});

test('the latency estimate is padded by the spread of the observations', () => {
  const steady = new LatencyEstimator();
  const noisy = new LatencyEstimator();
  for (let i = 0; i < 32; i++) {
    steady.observe(4, 40);
    noisy.observe(4, i % 2 ? 30 : 50);
  }
  assert.ok(Math.abs(steady.estimate(4) - 40) < 0.01);
  // Planned for its bad cases: the slow half of the requests (50 ms), not their mean (40 ms).
  assert.ok(Math.abs(noisy.estimate(4) - 50) < 0.01, `noisy estimate ${noisy.estimate(4)}`);
});

test('one request held up does not inflate the estimate (a quantile of the excess, not the spread)', () => {
  const e = new LatencyEstimator();
  for (let i = 0; i < 59; i++) e.observe(4, 10 + (i % 3));
  e.observe(4, 300); // the machine busy for a moment
  assert.ok(e.estimate(4) < 30, `one outlier moved the estimate to ${e.estimate(4)} ms`);
  for (let i = 0; i < 10; i++) e.observe(4, 300); // a bad spell: now it counts
  assert.ok(e.estimate(4) > 250, `a sustained spell is planned for (${e.estimate(4)} ms)`);
});

test('the latency estimate follows observations and grows with batch size', () => {
  const e = new LatencyEstimator(50);
  assert.equal(e.estimate(1), 50);
  assert.equal(e.estimate(8), 400, 'unobserved: pessimistic per frame, so the first batches stay small');
  for (let i = 0; i < 20; i++) {
    e.observe(1, 12);
    e.observe(8, 26);
    e.observe(32, 74);
  }
  assert.ok(Math.abs(e.estimate(1) - 12) < 1.5, String(e.estimate(1)));
  assert.ok(Math.abs(e.estimate(32) - 74) < 1.5, String(e.estimate(32)));
  assert.ok(e.estimate(16) > e.estimate(8));
});

test("a critical stream's frames go first and are not held to an equal share of the batch", async () => {
  const { b, clock } = setup();
  const t = clock.get();
  const ranked = (stream: string, index: number, rank: number) => ({ ...frame(stream, index, t + 300 + index), rank }) as Frame;
  for (let i = 0; i < 3; i++) await b.push(ranked('normal-a', i, 1));
  for (let i = 0; i < 3; i++) await b.push(ranked('normal-b', i, 1));
  for (let i = 0; i < 3; i++) await b.push(ranked('critical', i, 0));
  // 4 of 9 fit: the critical stream's 3, then one other (an equal share would give it 2).
  const batch = b.take(4);
  assert.deepEqual(batch.filter((f) => f.stream === 'critical').map((f) => f.index), [0, 1, 2]);
  assert.equal(batch.length, 4);
  // Without ranks (every stream normal) the shares stay equal.
  const plain = setup();
  const t2 = plain.clock.get();
  for (const s of ['x', 'y', 'z']) for (let i = 0; i < 3; i++) await plain.b.push(frame(s, i, t2 + 300 + i));
  const counts = new Map<string, number>();
  for (const f of plain.b.take(4)) counts.set(f.stream, (counts.get(f.stream) ?? 0) + 1);
  assert.ok(Math.max(...counts.values()) <= 2);
});
