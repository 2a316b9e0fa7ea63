/**
 * Reads a topic from a point in time (or its start) up to its end as it is when the read begins,
 * with a throwaway consumer group deleted afterwards: the alerts restore at start-up and
 * `framewire explain` read the records framewire published this way.
 */
import { randomBytes } from 'node:crypto';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';

export interface TopicReadOptions {
  /** Unix ms: start at each partition's first record at or after it; default: the start. */
  sinceMs?: number;
  /** Gives up (complete: false) after this long. */
  timeoutMs: number;
  /** Prefix of the throwaway consumer group's id (it names who reads, e.g. in broker logs). */
  groupPrefix: string;
}

/** Calls `each` for every record from the start point to the end, in order per partition; `complete` is false after a timeout. */
export async function readTopicToEnd(kafka: Kafka, admin: Admin, topic: string, o: TopicReadOptions, each: (partition: number, message: KafkaMessage) => void): Promise<{ complete: boolean }> {
  const groupId = `${o.groupPrefix}-${randomBytes(4).toString('hex')}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    const starts = o.sinceMs === undefined ? ends.map((e) => ({ partition: e.partition, offset: e.low })) : await admin.fetchTopicOffsetsByTimestamp(topic, o.sinceMs);
    const remaining = new Map<number, bigint>();
    for (const e of ends) {
      const start = BigInt(starts.find((s) => s.partition === e.partition)?.offset ?? e.high);
      if (BigInt(e.high) > start && start >= 0n) remaining.set(e.partition, BigInt(e.high));
    }
    if (remaining.size === 0) return { complete: true };
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const end = remaining.get(partition);
        if (end === undefined) return;
        each(partition, message);
        if (BigInt(message.offset) + 1n >= end) {
          remaining.delete(partition);
          if (remaining.size === 0) done();
        }
      },
    });
    for (const s of starts) if (remaining.has(s.partition)) consumer.seek({ topic, partition: s.partition, offset: s.offset });
    let timer: NodeJS.Timeout | undefined;
    const complete = await Promise.race([finished.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), o.timeoutMs)))]);
    clearTimeout(timer);
    return { complete };
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
}

/**
 * Reads one partition from `fromOffset` on, in order, until `each` returns true (enough), the
 * partition's end as it is when the read begins, or `timeoutMs`. Resolves with how it ended;
 * `missing` when `fromOffset` is no longer on the topic (retention deleted it) or not yet there.
 */
export async function readPartitionFrom(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  partition: number,
  fromOffset: string,
  o: Omit<TopicReadOptions, 'sinceMs'>,
  each: (message: KafkaMessage) => boolean,
): Promise<'enough' | 'end' | 'timeout' | 'missing'> {
  const ends = await admin.fetchTopicOffsets(topic);
  const p = ends.find((e) => e.partition === partition);
  if (!p || BigInt(fromOffset) < BigInt(p.low) || BigInt(fromOffset) >= BigInt(p.high)) return 'missing';
  const end = BigInt(p.high);
  const groupId = `${o.groupPrefix}-${randomBytes(4).toString('hex')}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
  try {
    let done!: (how: 'enough' | 'end') => void;
    const finished = new Promise<'enough' | 'end'>((r) => (done = r));
    let over = false;
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition: got, message }) => {
        if (over || got !== partition || BigInt(message.offset) < BigInt(fromOffset)) return;
        if (each(message)) {
          over = true;
          return done('enough');
        }
        if (BigInt(message.offset) + 1n >= end) {
          over = true;
          done('end');
        }
      },
    });
    consumer.seek({ topic, partition, offset: fromOffset });
    let timer: NodeJS.Timeout | undefined;
    const how = await Promise.race([finished, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), o.timeoutMs)))]);
    clearTimeout(timer);
    return how;
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
}
