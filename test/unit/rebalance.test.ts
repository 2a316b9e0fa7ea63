/**
 * What a member does when partitions move (src/sources/kafka/rebalance.ts), against a stand-in
 * for the kafkajs consumer's events: commit on REBALANCING; on GROUP_JOIN release what was given
 * up, seek what was kept past what was handled, and hold what was gained until the resume points
 * are read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Consumer } from 'kafkajs';
import { Rebalance } from '../../src/sources/kafka/rebalance.js';
import { PartitionTracker } from '../../src/sources/kafka/checkpoint.js';
import { Metrics } from '../../src/telemetry/metrics.js';

const TOPIC = 'chunks';

function setup() {
  const handlers = new Map<string, (e: { payload: unknown }) => void>();
  const seeks: { partition: number; offset: string }[] = [];
  const consumer = {
    events: { REBALANCING: 'rebalancing', GROUP_JOIN: 'group_join' },
    on: (ev: string, fn: (e: { payload: unknown }) => void) => handlers.set(ev, fn),
    seek: (s: { topic: string; partition: number; offset: string }) => seeks.push({ partition: s.partition, offset: s.offset }),
  } as unknown as Consumer;
  const partitions = new Map<number, PartitionTracker>();
  const released: number[] = [];
  let commits = 0;
  let finishLoad!: () => void;
  const metrics = new Metrics();
  const r = new Rebalance(consumer, TOPIC, {
    partitions,
    release: (t) => released.push(t.partition),
    commit: async () => void commits++,
    loadResumePoints: () => new Promise<void>((res) => (finishLoad = res)),
    joined: () => undefined,
  }, metrics);
  const join = (ps: number[]) => handlers.get('group_join')!({ payload: { memberAssignment: { [TOPIC]: ps } } });
  const rebalancing = () => handlers.get('rebalancing')!({ payload: {} });
  return { r, partitions, released, seeks, join, rebalancing, commits: () => commits, finishLoad: () => finishLoad(), metrics };
}

test('a rebalance commits at once; given-up partitions are released and leave the commit, kept ones seek past what was handled', async () => {
  const s = setup();
  s.join([0, 1, 2]);
  s.finishLoad();
  for (const p of [0, 1, 2]) {
    const t = new PartitionTracker(TOPIC, p);
    t.received(String(10 * p + 4)); // records up to offset 10p+4 handled
    s.partitions.set(p, t);
  }
  s.rebalancing();
  assert.equal(s.commits(), 1, 'what is finished is committed before rejoining');
  s.join([1, 3]);
  assert.deepEqual(s.released.sort(), [0, 2]);
  assert.deepEqual([...s.partitions.keys()], [1], 'given-up partitions are no longer committed by this member');
  assert.deepEqual(s.seeks, [{ partition: 1, offset: '15' }], 'the kept partition goes on after its last record, not from the commit');
  assert.ok(s.r.accepts(1) && s.r.accepts(3) && !s.r.accepts(0) && !s.r.accepts(2));
  assert.equal((await s.metrics.registry.getSingleMetricAsString('framewire_partitions_assigned')).trim().split('\n').at(-1), 'framewire_partitions_assigned 2');
});

test('only gained partitions wait for the resume points; they go on once these are read', async () => {
  const s = setup();
  s.join([0]);
  s.finishLoad();
  await s.r.loaded;
  s.join([0, 1]);
  assert.equal(s.r.mustWait(0), false, 'a kept partition does not wait');
  assert.equal(s.r.mustWait(1), true, 'a gained partition waits for the previous owner\'s resume points');
  // A second join before the read finished: partition 1 still waits, 2 as well.
  s.join([0, 1, 2]);
  assert.ok(s.r.mustWait(1) && s.r.mustWait(2));
  s.finishLoad();
  await s.r.loaded;
  assert.ok(!s.r.mustWait(1) && !s.r.mustWait(2));
});

test('a tracker knows records it has seen (kafkajs fetches a kept partition again from the commit)', () => {
  const t = new PartitionTracker(TOPIC, 0);
  assert.equal(t.seen('0'), false);
  t.received('7');
  assert.equal(t.seen('7'), true);
  assert.equal(t.seen('8'), false);
  assert.equal(t.nextOffset, '8');
});
