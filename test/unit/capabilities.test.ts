/**
 * Capabilities a component declares (core/sink.ts, core/source.ts) and the topology asking for
 * them by member: the Kafka source's lag, the monitor's alert restore and dashboard wiring.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupLag } from '../../src/sources/kafka/lag.js';

/** An admin that answers offset requests from fixed tables and records what it was asked. */
function fakeAdmin(committed: Record<number, string>, ends: Record<number, [low: string, high: string]>) {
  const asked: string[] = [];
  return {
    asked,
    async fetchOffsets({ groupId, topics }: { groupId: string; topics: string[] }) {
      asked.push(`offsets ${groupId} ${topics.join(',')}`);
      return [{ topic: topics[0]!, partitions: Object.entries(committed).map(([p, offset]) => ({ partition: Number(p), offset, metadata: null })) }];
    },
    async fetchTopicOffsets(topic: string) {
      asked.push(`ends ${topic}`);
      return Object.entries(ends).map(([p, [low, high]]) => ({ partition: Number(p), low, high, offset: high }));
    },
  };
}

test("the Kafka source's lag: committed offsets against the ends; an uncommitted partition counts all it holds", async () => {
  // p0: committed 40 of 100 → 60; p1: never committed (-1), holds 10..30 → 20; p2: committed past the end → 0.
  const admin = fakeAdmin({ 0: '40', 1: '-1', 2: '55' }, { 0: ['0', '100'], 1: ['10', '30'], 2: ['0', '50'] });
  assert.equal(await groupLag(admin as never, 'g1', 'video.chunks'), 80);
  assert.deepEqual(admin.asked.sort(), ['ends video.chunks', 'offsets g1 video.chunks']);
  // A partition missing from the group's commit counts all it holds too.
  assert.equal(await groupLag(fakeAdmin({}, { 0: ['5', '9'] }) as never, 'g1', 't'), 4);
});

test('the lag rejects when the broker cannot be asked (the dashboard then keeps it unknown)', async () => {
  const down = { fetchOffsets: () => Promise.reject(new Error('broker down')), fetchTopicOffsets: () => Promise.resolve([]) };
  await assert.rejects(groupLag(down as never, 'g', 't'), /broker down/);
});
