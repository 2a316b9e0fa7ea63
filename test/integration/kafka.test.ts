import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { ensureStack, BROKERS, randomName } from '../helpers/stack.js';
import { ensureTopics } from '../../src/kafka/topics.js';

before(() => ensureStack());

test('produce/consume round trip through the local Kafka with headers, idempotent producer, manual commit', async () => {
  const kafka = new kafkajs.Kafka({ clientId: 'it', brokers: BROKERS, logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = randomName('it-roundtrip');
  await ensureTopics(admin, [{ topic, numPartitions: 2 }]);
  await ensureTopics(admin, [{ topic, numPartitions: 2 }]); // idempotent
  const meta = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.equal(meta.topics[0]!.partitions.length, 2);

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const sent = Array.from({ length: 20 }, (_, i) => ({
    key: `cam-${i % 3}`,
    value: Buffer.from([i, 255 - i, 0x47]),
    headers: { 'fw-stream': `cam-${i % 3}`, 'fw-seq': String(Math.floor(i / 3)), 'fw-format': 'mpegts' },
  }));
  await producer.send({ topic, acks: -1, messages: sent });

  const group = randomName('it-group');
  const consumer = kafka.consumer({ groupId: group });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got: { key: string; value: Buffer; headers: Record<string, string>; partition: number; offset: string }[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of 20 records within 20 s`)), 20_000);
    void consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        got.push({ key: message.key!.toString(), value: message.value!, headers, partition, offset: message.offset });
        if (got.length === 20) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  // Per key, order and bytes and headers survive.
  for (const key of ['cam-0', 'cam-1', 'cam-2']) {
    const want = sent.filter((m) => m.key === key);
    const have = got.filter((m) => m.key === key);
    assert.deepEqual(have.map((m) => [...m.value]), want.map((m) => [...m.value]));
    assert.deepEqual(have.map((m) => m.headers), want.map((m) => m.headers));
    assert.equal(new Set(have.map((m) => m.partition)).size, 1, 'one key stays in one partition');
  }
  // Offsets committed with metadata come back (the processor keeps resume points there).
  const p0 = got[0]!;
  await consumer.commitOffsets([{ topic, partition: p0.partition, offset: String(Number(p0.offset) + 1), metadata: '{"v":1,"resume":[]}' }]);
  await consumer.disconnect();
  const offsets = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  const committed = offsets[0]!.partitions.find((p) => p.partition === p0.partition)!;
  assert.equal(committed.offset, String(Number(p0.offset) + 1));
  assert.equal(committed.metadata, '{"v":1,"resume":[]}');
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
});
