import type { Producer, Message } from 'kafkajs';
import { FramewireError } from '../../core/errors.js';
import type { AlertBatch, AlertHistory, EventBatch, LabelBatch, Sink, SnapshotBatch } from '../../core/sink.js';
import type { KafkaConnections } from '../../core/component.js';
import type { KafkaSinkConfig } from './config.js';
import { kafkaRetriable } from '../../kafka/errors.js';
import { readRecentAlerts } from './alert-history.js';

export class KafkaSink implements Sink {
  readonly name = 'kafka';
  /** The alerts topic, read back from `lookbackMs` ago to its end. */
  readonly alertHistory: AlertHistory;

  constructor(private readonly producer: Producer, private readonly config: KafkaSinkConfig, kafka: KafkaConnections) {
    this.alertHistory = { recentAlerts: async (lookbackMs) => readRecentAlerts(kafka.client(), await kafka.admin(), config.alertsTopic, lookbackMs) };
  }

  async publishLabels(batch: LabelBatch): Promise<void> {
    await this.send(this.config.topic, messagesOf(batch));
  }

  async publishEvents(batch: EventBatch): Promise<void> {
    await this.send(this.config.eventsTopic, messagesOf(batch));
  }

  async publishAlerts(batch: AlertBatch): Promise<void> {
    await this.send(this.config.alertsTopic, messagesOf(batch));
  }

  /** Keyed by alert id: a consumer finds an alert's snapshot by the id it has. */
  async publishSnapshots(batch: SnapshotBatch): Promise<void> {
    const json = batch.json;
    await this.send(this.config.snapshotsTopic, batch.records.map((r, i) => ({ key: r.id, value: json[i]! })));
  }

  private async send(topic: string, messages: Message[]): Promise<void> {
    try {
      await this.producer.send({ topic, acks: -1, messages });
    } catch (err) {
      throw new FramewireError('SINK_PUBLISH_FAILED', 'sink', `publishing ${messages.length} records to ${topic}: ${(err as Error).message}`, {
        retriable: kafkaRetriable(err),
        cause: err,
      });
    }
  }

  async close(): Promise<void> {
    // The producer is shared and closed by the topology.
  }
}

/** Keyed by stream (one stream stays in one partition, in order); the batch's shared JSON text. */
function messagesOf(batch: LabelBatch | EventBatch | AlertBatch): Message[] {
  const { records, traceparents } = batch;
  const json = batch.json;
  const messages: Message[] = new Array(records.length);
  for (let i = 0; i < records.length; i++) {
    const tp = traceparents[i];
    messages[i] = { key: records[i]!.stream, value: json[i]!, headers: tp ? { traceparent: tp } : undefined };
  }
  return messages;
}
