/** The Kafka connections a topology's components share, opened on first use. */
import kafkajs, { type Admin, type Kafka, type Producer } from 'kafkajs';
import type { KafkaConnections } from './registry.js';

export { ensureTopics } from '../core/topics.js';

export class SharedKafka implements KafkaConnections {
  private kafka: Kafka | undefined;
  private adminP: Promise<Admin> | undefined;
  private producerP: Promise<Producer> | undefined;

  constructor(private readonly config: { brokers: string[]; clientId: string }) {}

  client(): Kafka {
    this.kafka ??= new kafkajs.Kafka({ clientId: this.config.clientId, brokers: this.config.brokers, logLevel: kafkajs.logLevel.WARN });
    return this.kafka;
  }

  admin(): Promise<Admin> {
    this.adminP ??= (async () => {
      const admin = this.client().admin();
      await admin.connect();
      return admin;
    })();
    return this.adminP;
  }

  /** The idempotent producer every Kafka sink and the dead-letter path share. */
  producer(): Promise<Producer> {
    this.producerP ??= (async () => {
      const producer = this.client().producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await producer.connect();
      return producer;
    })();
    return this.producerP;
  }

  async close(): Promise<void> {
    const [producer, admin] = await Promise.all([this.producerP?.catch(() => undefined), this.adminP?.catch(() => undefined)]);
    await producer?.disconnect().catch(() => {});
    await admin?.disconnect().catch(() => {});
  }
}
