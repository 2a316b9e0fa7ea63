/** The Kafka connections a topology's components share, opened on first use. */
import kafkajs, { type Admin, type Kafka, type KafkaConfig, type Producer } from 'kafkajs';
import { kafkaConnectError, kafkaSecurityOptions, type KafkaSecurityConfig } from './security.js';
import { processorKafkaLogCreator } from './log.js';
import { OUTAGE_RETRY_MAX_MS } from '../core/retry.js';
import type { KafkaConnections } from '../core/component.js';

/**
 * kafkajs's reconnect backoff for every connection of the topology (consumer, producer, admin).
 * Its default (300 ms doubling up to 30 s, 5 retries) gives up after ~9 s, and a consumer that
 * gave up during a broker outage waits its last backoff (~9 s) before it restarts: it came back
 * 2-7 s after the broker in the combined-outage e2e. Capped at OUTAGE_RETRY_MAX_MS, the consumer
 * restarts and a send goes out within about a second of the broker being back (issue #20). During
 * a long outage the consumer now gives up and restarts every ~3.5 s (each logged).
 */
export const KAFKA_CLIENT_RETRY = { initialRetryTime: 100, maxRetryTime: OUTAGE_RETRY_MAX_MS } as const;

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
    this.kafka ??= new kafkajs.Kafka({
      clientId: this.config.clientId,
      brokers: this.config.brokers,
      logLevel: kafkajs.logLevel.WARN,
      logCreator: processorKafkaLogCreator,
      retry: { ...KAFKA_CLIENT_RETRY },
      ...this.security,
    });
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
    })().catch((err: unknown) => {
      this.adminP = undefined; // a broker not up yet: the next call tries again
      throw err;
    });
    return this.adminP;
  }

  /** The idempotent producer every Kafka sink and the dead-letter path share. */
  producer(): Promise<Producer> {
    this.producerP ??= (async () => {
      const producer = this.client().producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await producer.connect();
      return producer;
    })().catch((err: unknown) => {
      this.producerP = undefined;
      throw err;
    });
    return this.producerP;
  }

  async close(): Promise<void> {
    const [producer, admin] = await Promise.all([this.producerP?.catch(() => undefined), this.adminP?.catch(() => undefined)]);
    await producer?.disconnect().catch(() => {});
    await admin?.disconnect().catch(() => {});
  }
}
