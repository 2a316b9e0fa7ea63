/**
 * Reads a topic from a point in time (or its start) up to its end as it is when the read begins,
 * with a throwaway consumer group deleted afterwards: the alerts restore at start-up and
 * `framewire explain` read the records framewire published this way; `framewire clip` and the
 * alert snapshots read a stream session's chunks back (`readSessionChunks`).
 */
import { randomBytes } from 'node:crypto';
import type { Admin, Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { SessionChunks, SessionChunksQuery } from '../core/source.js';

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

/** Reads one partition from an offset until `each` says enough (readPartitionFrom's contract). */
export type PartitionRead = (partition: number, fromOffset: string, timeoutMs: number, each: (message: KafkaMessage) => boolean) => Promise<ReadEnd>;

export type ReadEnd = 'enough' | 'end' | 'timeout' | 'missing';

/** One-shot reads, each with its own throwaway consumer group (a command line that reads once). */
export function oneShotReads(kafka: Kafka, admin: Admin, topic: string, groupPrefix: string): PartitionRead {
  return (partition, fromOffset, timeoutMs, each) => readPartitionFrom(kafka, admin, topic, partition, fromOffset, { timeoutMs, groupPrefix }, each);
}

/**
 * Reads of one topic's partitions by one long-lived consumer, for a processor that reads back
 * again and again (alert snapshots): its own group (random id, so it is the only member and owns
 * every partition), joined once on the first read, every partition paused between reads; a read
 * seeks its partition and resumes it until done. A throwaway group per read would wait out the
 * broker's `group.initial.rebalance.delay.ms` (3 s by default) every time. One read at a time;
 * nothing is committed; `close` leaves and deletes the group.
 */
export class PartitionReader {
  private consumer: Consumer | undefined;
  private started: Promise<void> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private job: { partition: number; from: bigint; end: bigint; each: (m: KafkaMessage) => boolean; done: (how: 'enough' | 'end') => void } | undefined;
  private closed = false;
  readonly groupId: string;

  constructor(private readonly kafka: Kafka, private readonly admin: Admin, private readonly topic: string, groupPrefix: string) {
    this.groupId = `${groupPrefix}-${randomBytes(4).toString('hex')}`;
  }

  /** PartitionRead, serialised. */
  readonly read: PartitionRead = (partition, fromOffset, timeoutMs, each) => {
    const run = this.queue.then(() => this.readOne(partition, fromOffset, timeoutMs, each));
    this.queue = run.catch(() => undefined);
    return run;
  };

  /** Joins ahead of the first read (in the background; a failure is retried by the read). */
  warm(): void {
    if (!this.closed) this.start().catch(() => undefined);
  }

  private start(): Promise<void> {
    this.started ??= (async () => {
      // Paused, the fetch loop only sleeps this long between looks: a read starts within it.
      const consumer = this.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 50, allowAutoTopicCreation: false });
      this.consumer = consumer;
      const joined = new Promise<void>((r) => consumer.on(consumer.events.GROUP_JOIN, () => r()));
      // A consumer kafkajs will not restart is replaced on the next read.
      consumer.on(consumer.events.CRASH, (e) => {
        if (e.payload.restart || this.consumer !== consumer) return;
        this.started = undefined;
        this.consumer = undefined;
        void consumer.disconnect().catch(() => undefined);
      });
      await consumer.connect();
      await consumer.subscribe({ topic: this.topic, fromBeginning: false });
      await consumer.run({ autoCommit: false, eachMessage: async ({ partition, message }) => this.message(partition, message) });
      // Topic-wide, so a partition resumed for a read and paused again leaves the others paused.
      consumer.pause([{ topic: this.topic }]);
      await joined;
    })().catch((err: unknown) => {
      // The next read tries again with a new consumer.
      const c = this.consumer;
      this.started = undefined;
      this.consumer = undefined;
      void c?.disconnect().catch(() => undefined);
      throw err;
    });
    return this.started;
  }

  private message(partition: number, m: KafkaMessage): void {
    const j = this.job;
    if (!j || partition !== j.partition || BigInt(m.offset) < j.from) return;
    if (j.each(m)) {
      this.job = undefined;
      return j.done('enough');
    }
    if (BigInt(m.offset) + 1n >= j.end) {
      this.job = undefined;
      j.done('end');
    }
  }

  private async readOne(partition: number, fromOffset: string, timeoutMs: number, each: (m: KafkaMessage) => boolean): Promise<ReadEnd> {
    if (this.closed) return 'timeout';
    const ends = await this.admin.fetchTopicOffsets(this.topic);
    const p = ends.find((e) => e.partition === partition);
    if (!p || BigInt(fromOffset) < BigInt(p.low) || BigInt(fromOffset) >= BigInt(p.high)) return 'missing';
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), timeoutMs)));
    try {
      if ((await Promise.race([this.start().then(() => 'started' as const), timeout])) === 'timeout') return 'timeout';
      const finished = new Promise<'enough' | 'end'>((done) => (this.job = { partition, from: BigInt(fromOffset), end: BigInt(p.high), each, done }));
      this.consumer!.seek({ topic: this.topic, partition, offset: fromOffset });
      this.consumer!.resume([{ topic: this.topic, partitions: [partition] }]);
      return await Promise.race([finished, timeout]);
    } finally {
      clearTimeout(timer);
      this.job = undefined;
      this.consumer?.pause([{ topic: this.topic }]);
    }
  }

  /** Leaves and deletes the group. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.started) return;
    // Not waiting for a join under way: disconnect ends it.
    await this.consumer?.disconnect().catch(() => undefined);
    await this.admin.deleteGroups([this.groupId]).catch(() => undefined);
  }
}

const headerOf = (m: KafkaMessage, name: string): string | undefined => {
  const v = m.headers?.[name];
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
};

/**
 * A stream session's chunks from `fromOffset` (a keyframe's chunk) through `toOffset`'s and
 * `tailChunks` more of the session (or its `fw-eos` record, or the partition's end as it is now),
 * checked consecutive in `fw-seq`: `framewire clip` and the alert snapshots read them this way.
 * A string says why they cannot be had, naming the topic.
 */
export async function readSessionChunks(read: PartitionRead, topic: string, q: SessionChunksQuery): Promise<SessionChunks | string> {
  const chunks: SessionChunks['chunks'] = [];
  let after = -1;
  const how = await read(q.partition, q.fromOffset, q.timeoutMs, (m) => {
    if (m.key?.toString('utf8') !== q.stream || headerOf(m, 'fw-session') !== q.session || !m.value) return false;
    chunks.push({ seq: Number(headerOf(m, 'fw-seq')), offset: m.offset, value: m.value });
    if (BigInt(m.offset) >= BigInt(q.toOffset)) after++;
    return after >= q.tailChunks || headerOf(m, 'fw-eos') !== undefined;
  });
  if (how === 'missing') return `the first chunk (partition ${q.partition}, offset ${q.fromOffset}) is no longer on '${topic}': the topic's retention deleted it`;
  if (how === 'timeout') return `reading '${topic}' timed out after ${q.timeoutMs} ms`;
  if (chunks.length === 0 || BigInt(chunks.at(-1)!.offset) < BigInt(q.toOffset)) return `the chunks of stream '${q.stream}' session ${q.session} up to offset ${q.toOffset} are not all on '${topic}'`;
  for (let i = 1; i < chunks.length; i++) {
    if (chunks[i]!.seq !== chunks[i - 1]!.seq + 1) return `chunk fw-seq ${chunks[i - 1]!.seq + 1} of session ${q.session} is missing between offsets ${chunks[i - 1]!.offset} and ${chunks[i]!.offset}`;
  }
  return { chunks };
}
