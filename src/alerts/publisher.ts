/**
 * Delivers alert records to every sink that carries them (Kafka's alerts topic, the WebSocket,
 * webhooks), in order per sink, off the pipeline's path: a failed delivery is retried with
 * backoff while later records wait behind it; a sink more than MAX_BACKLOG records behind loses
 * the oldest (counted). Also reads the open episodes of a previous run back from the alerts topic.
 */
import { randomBytes } from 'node:crypto';
import type { Kafka, Admin } from 'kafkajs';
import { log } from '../core/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { RecordBatch, type Sink } from '../sinks/types.js';
import type { AlertRecord } from './types.js';

const MAX_BACKLOG = 10_000;

interface Lane {
  sink: Sink;
  backlog: RecordBatch<AlertRecord>[];
  size: number;
  running: boolean;
}

export class AlertPublisher {
  private readonly lanes: Lane[];
  private idle: (() => void)[] = [];

  constructor(sinks: Sink[], private readonly metrics: Metrics) {
    this.lanes = sinks.filter((s) => s.publishAlerts).map((sink) => ({ sink, backlog: [], size: 0, running: false }));
  }

  publish(records: AlertRecord[]): void {
    if (records.length === 0) return;
    const now = Date.now();
    for (const r of records) {
      r.publishedTs = now;
      this.metrics.alerts.inc({ state: r.state });
    }
    // Serialised once, the same bytes to every sink.
    const batch = new RecordBatch(records);
    for (const lane of this.lanes) {
      lane.backlog.push(batch);
      lane.size += records.length;
      while (lane.size > MAX_BACKLOG && lane.backlog.length > 1) {
        const lost = lane.backlog.splice(1, 1)[0]!; // the head may be in flight
        lane.size -= lost.records.length;
        this.metrics.alertsDropped.inc({ sink: lane.sink.name }, lost.records.length);
      }
      if (!lane.running) void this.drain(lane);
    }
  }

  private async drain(lane: Lane): Promise<void> {
    lane.running = true;
    while (lane.backlog.length > 0) {
      const batch = lane.backlog[0]!;
      for (let attempt = 0; ; attempt++) {
        try {
          await lane.sink.publishAlerts!(batch);
          break;
        } catch (err) {
          log.warn('publishing alerts failed; retrying', { sink: lane.sink.name, err, attempt });
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(5000, 100 * 2 ** attempt)));
        }
      }
      lane.backlog.shift();
      lane.size -= batch.records.length;
    }
    lane.running = false;
    if (this.lanes.every((l) => !l.running)) for (const w of this.idle.splice(0)) w();
  }

  /** Resolves when every sink has what was published so far (or after `timeoutMs`). */
  async flush(timeoutMs = 5000): Promise<void> {
    if (this.lanes.every((l) => !l.running)) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((r) => this.idle.push(r)), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }
}

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
