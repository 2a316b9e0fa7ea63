/**
 * Reads the open episodes of a previous run back from the alerts topic. (Alerts are delivered by
 * the output stage, sinks/output.ts.)
 */
import { randomBytes } from 'node:crypto';
import type { Kafka, Admin } from 'kafkajs';
import { log } from '../core/log.js';
import type { AlertRecord } from './types.js';

/**
 * Alert records of the last `lookbackMs` on the alerts topic, oldest first per partition (a
 * stream stays in one partition), read up to the end as it is now; empty on any failure.
 */
export async function readRecentAlerts(kafka: Kafka, admin: Admin, topic: string, lookbackMs: number, timeoutMs = 15_000): Promise<AlertRecord[]> {
  const out: AlertRecord[] = [];
  const groupId = `framewire-alerts-restore-${randomBytes(4).toString('hex')}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
  try {
    const [starts, ends] = await Promise.all([admin.fetchTopicOffsetsByTimestamp(topic, Date.now() - lookbackMs), admin.fetchTopicOffsets(topic)]);
    const remaining = new Map<number, bigint>();
    for (const e of ends) {
      const start = BigInt(starts.find((s) => s.partition === e.partition)?.offset ?? e.high);
      if (BigInt(e.high) > start && start >= 0n) remaining.set(e.partition, BigInt(e.high));
    }
    if (remaining.size === 0) return out;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const end = remaining.get(partition);
        if (end === undefined) return;
        try {
          const v = JSON.parse(message.value?.toString('utf8') ?? '') as AlertRecord;
          if (v && v.type === 'alert' && typeof v.id === 'string') out.push(v);
        } catch {
          /* not ours */
        }
        if (BigInt(message.offset) + 1n >= end) {
          remaining.delete(partition);
          if (remaining.size === 0) done();
        }
      },
    });
    for (const s of starts) if (remaining.has(s.partition)) consumer.seek({ topic, partition: s.partition, offset: s.offset });
    let timer: NodeJS.Timeout | undefined;
    const complete = await Promise.race([finished.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    if (!complete) log.warn('reading recent alerts timed out; open episodes may be re-opened with new ids', { topic, timeoutMs });
  } catch (err) {
    log.warn('could not read recent alerts; open episodes may be re-opened with new ids', { topic, err });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  return out;
}
