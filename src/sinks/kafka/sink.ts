import type { Producer, Message } from 'kafkajs';
import { FramewireError } from '../../core/errors.js';
import type { LabelRecord } from '../../core/frame.js';
import type { AlertRecord } from '../../alerts/types.js';
import type { PipelineEvent, Sink } from '../types.js';
import type { KafkaSinkConfig } from './config.js';

export class KafkaSink implements Sink {
  readonly name = 'kafka';
  constructor(private readonly producer: Producer, private readonly config: KafkaSinkConfig) {}

  async publishLabels(records: LabelRecord[], traceparents: (string | undefined)[]): Promise<void> {
    const messages: Message[] = new Array(records.length);
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const tp = traceparents[i];
      messages[i] = { key: r.stream, value: JSON.stringify(r), headers: tp ? { traceparent: tp } : undefined };
    }
    await this.send(this.config.topic, messages);
  }

  async publishEvents(events: PipelineEvent[]): Promise<void> {
    await this.send(
      this.config.eventsTopic,
      events.map((e) => ({ key: e.stream, value: JSON.stringify(e) })),
    );
  }

  async publishAlerts(alerts: AlertRecord[]): Promise<void> {
    await this.send(
      this.config.alertsTopic,
      alerts.map((a) => ({ key: a.stream, value: JSON.stringify(a) })),
    );
  }

  private async send(topic: string, messages: Message[]): Promise<void> {
    try {
      await this.producer.send({ topic, acks: -1, messages });
    } catch (err) {
      throw new FramewireError('SINK_PUBLISH_FAILED', 'sink', `publishing ${messages.length} records to ${topic}: ${(err as Error).message}`, {
        retriable: (err as { retriable?: boolean }).retriable ?? true,
        cause: err,
      });
    }
  }

  async close(): Promise<void> {
    // The producer is shared and closed by the topology.
  }
}
