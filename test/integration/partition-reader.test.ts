/**
 * The long-lived partition reader (kafka/topic-reader.ts) against the local Kafka: reads seek a
 * partition and resume it, one at a time, while every other partition stays paused; each read
 * gets exactly its partition's records from its offset, as the one-shot reader does; a session's
 * chunks are picked out of a partition shared with another stream; a deleted offset is `missing`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { ensureStack, BROKERS, randomName } from '../helpers/stack.js';
import { ensureTopics } from '../../src/kafka/topics.js';
import { PartitionReader, oneShotReads, readSessionChunks, type PartitionRead } from '../../src/kafka/topic-reader.js';
import { deleteTopics } from '../helpers/topics.js';

const kafka = new kafkajs.Kafka({ clientId: 'it-reader', brokers: BROKERS, logLevel: kafkajs.logLevel.NOTHING });
const admin = kafka.admin();
const topic = randomName('it-readback');
let reader: PartitionReader;

before(async () => {
  ensureStack();
  await admin.connect();
  await ensureTopics(admin, [{ topic, numPartitions: 3 }]);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // Per partition 30 records: two streams interleaved, seq counting per stream, the last of s-a's session with fw-eos.
  for (let p = 0; p < 3; p++) {
    const messages = Array.from({ length: 30 }, (_, i) => {
      const stream = i % 2 ? 's-b' : 's-a';
      const seq = Math.floor(i / 2);
      const headers: Record<string, string> = { 'fw-session': `${stream}-${p}`, 'fw-seq': String(seq) };
      if (stream === 's-a' && seq === 14) headers['fw-eos'] = '1';
      return { partition: p, key: stream, value: Buffer.from(`p${p}:${stream}:${seq}`), headers };
    });
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();
  reader = new PartitionReader(kafka, admin, topic, randomName('it-readback-group'));
});

after(async () => {
  await reader?.close();
  await admin.disconnect();
  await deleteTopics([topic]);
});

async function collect(read: PartitionRead, partition: number, from: string, count: number): Promise<{ how: string; got: string[] }> {
  const got: string[] = [];
  const how = await read(partition, from, 20_000, (m) => (got.push(`${m.offset}=${m.value!.toString()}`), got.length >= count));
  return { how, got };
}

test('reads of several partitions, in any order and again, each get exactly their records from their offset', { timeout: 60_000 }, async () => {
  const once = oneShotReads(kafka, admin, topic, randomName('it-oneshot'));
  for (const [p, from, count] of [[1, '4', 5], [0, '0', 3], [2, '27', 10], [1, '0', 2], [1, '10', 6]] as const) {
    const mine = await collect(reader.read, p, from, count);
    const ref = await collect(once, p, from, count);
    assert.deepEqual(mine, ref, `partition ${p} from ${from}`);
    assert.equal(mine.got[0]!.split('=')[0], from);
    assert.ok(mine.got.every((g) => g.includes(`=p${p}:`)), `only partition ${p}: ${mine.got.join(' ')}`);
  }
  // Past the records there: the read ends at the partition's end.
  assert.deepEqual((await collect(reader.read, 2, '27', 10)).how, 'end');
  // Reads asked for together run one after the other.
  const both = await Promise.all([collect(reader.read, 0, '20', 4), collect(reader.read, 2, '20', 4)]);
  assert.deepEqual(both.map((b) => b.got.map((g) => g.split('=')[1])), [
    ['p0:s-a:10', 'p0:s-b:10', 'p0:s-a:11', 'p0:s-b:11'],
    ['p2:s-a:10', 'p2:s-b:10', 'p2:s-a:11', 'p2:s-b:11'],
  ]);
  // An offset not on the partition (deleted by retention, or not yet written).
  assert.equal((await collect(reader.read, 0, '500', 1)).how, 'missing');
});

test("a session's chunks through one past the wanted chunk, out of a partition shared with another stream", { timeout: 30_000 }, async () => {
  const q = { stream: 's-b', session: 's-b-1', partition: 1, fromOffset: '5', toOffset: '11', tailChunks: 1, timeoutMs: 10_000 };
  const got = await readSessionChunks(reader.read, topic, q);
  assert.ok(typeof got !== 'string', String(got));
  // s-b's records are the odd offsets: 5, 7, 9, 11 and one more (13).
  assert.deepEqual(got.chunks.map((c) => [c.offset, c.seq, c.value.toString()]), [5, 7, 9, 11, 13].map((o) => [String(o), (o - 1) / 2, `p1:s-b:${(o - 1) / 2}`]));
  // s-a's session ends at fw-eos (offset 28): no chunk after it is waited for.
  const eos = await readSessionChunks(reader.read, topic, { ...q, stream: 's-a', session: 's-a-1', fromOffset: '24', toOffset: '28', tailChunks: 3 });
  assert.ok(typeof eos !== 'string', String(eos));
  assert.deepEqual(eos.chunks.map((c) => c.offset), ['24', '26', '28']);
  assert.match(String(await readSessionChunks(reader.read, topic, { ...q, fromOffset: '900', toOffset: '901' })), /no longer on '.*': the topic's retention deleted it/);
});
