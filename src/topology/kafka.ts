/** The Kafka connections a topology's components share, opened on first use, and topic creation. */
import kafkajs, { type Admin, type Kafka, type KafkaConfig, type Producer } from 'kafkajs';
import { kafkaConnectError, kafkaSecurityOptions, type KafkaSecurityConfig } from '../config/kafka-security.js';
import type { KafkaConnections, TopicSpec } from './registry.js';

/** Creates the topics that are missing (idempotent; a concurrent creator is not an error). */
export async function ensureTopics(admin: Admin, topics: TopicSpec[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({ topics: missing.map((t) => ({ ...t, replicationFactor: -1 })), waitForLeaders: true });
  } catch (err) {
    if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw err;
  }
}

export class SharedKafka implements KafkaConnections {
  private kafka: Kafka | undefined;
  private adminP: Promise<Admin> | undefined;
  private producerP: Promise<Producer> | undefined;

  /** TLS/SASL (kafka.ssl, kafka.sasl), read when constructed so a missing secret fails at once. */
  private readonly security: Pick<KafkaConfig, 'ssl' | 'sasl'>;

  constructor(private readonly config: { brokers: string[]; clientId: string } & KafkaSecurityConfig) {
    this.security = kafkaSecurityOptions(config);
  }

  client(): Kafka {
    this.kafka ??= new kafkajs.Kafka({ clientId: this.config.clientId, brokers: this.config.brokers, logLevel: kafkajs.logLevel.WARN, ...this.security });
    return this.kafka;
  }

  admin(): Promise<Admin> {
    this.adminP ??= (async () => {
      const admin = this.client().admin();
      // The first connection: refused credentials or a failed handshake are said as such.
      await admin.connect().catch((err: unknown) => {
        throw kafkaConnectError(err, this.config.brokers, 'source') ?? err;
      });
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
