/**
 * The Kafka sink's `alertHistory` capability (core/sink.ts): the alert records it published
 * lately, read back from its alerts topic, so the alert engine re-opens a previous run's open
 * episodes under their ids. (Alerts are delivered by the output stage, sinks/output.ts.)
 */
import type { Kafka, Admin } from 'kafkajs';
import { log } from '../../core/log.js';
import { readTopicToEnd } from '../../kafka/topic-reader.js';
import type { AlertRecord } from '../../core/events.js';

/**
 * Alert records of the last `lookbackMs` on the alerts topic, oldest first per partition (a
 * stream stays in one partition), read up to the end as it is now; empty on any failure.
 */
export async function readRecentAlerts(kafka: Kafka, admin: Admin, topic: string, lookbackMs: number, timeoutMs = 15_000): Promise<AlertRecord[]> {
  const out: AlertRecord[] = [];
  try {
    const { complete } = await readTopicToEnd(kafka, admin, topic, { sinceMs: Date.now() - lookbackMs, timeoutMs, groupPrefix: 'framewire-alerts-restore' }, (_partition, message) => {
      try {
        const v = JSON.parse(message.value?.toString('utf8') ?? '') as AlertRecord;
        if (v && v.type === 'alert' && typeof v.id === 'string') out.push(v);
      } catch {
        /* not ours */
      }
    });
    if (!complete) log.warn('reading recent alerts timed out; open episodes may be re-opened with new ids', { topic, timeoutMs });
  } catch (err) {
    log.warn('could not read recent alerts; open episodes may be re-opened with new ids', { topic, err });
  }
  return out;
}
