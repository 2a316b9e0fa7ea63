/**
 * `framewire ingest`'s Kafka TLS and SASL flags (and their environment variables), turned into
 * the same kafkajs options the processor builds from a topology's `kafka.ssl` / `kafka.sasl`.
 */
import type { Command } from 'commander';
import type { KafkaConfig } from 'kafkajs';
import { kafkaSecurityOptions, SASL_MECHANISMS, type KafkaSecurityConfig, type SaslMechanism } from '../kafka/security.js';

/** The flags as commander names them. */
export interface KafkaSecurityFlags {
  kafkaTls?: boolean;
  kafkaCa?: string;
  kafkaCert?: string;
  kafkaKey?: string;
  saslMechanism?: string;
  saslUsername?: string;
  saslPasswordFile?: string;
}

/** The local stack's broker: the default of every command that talks to Kafka. */
export const DEFAULT_BROKERS = '127.0.0.1:9092';

/**
 * A command that reads framewire's topics (`explain`, `shadow report`, `clip`): --brokers,
 * --since-ms (`since` describes it, with the command's default), --timeout-ms and TLS/SASL,
 * checked by `topicReaderOptions`.
 */
export function addTopicReaderOptions(cmd: Command, since: string): Command {
  cmd
    .option('--brokers <list>', `comma-separated Kafka brokers (env FRAMEWIRE_BROKERS, default ${DEFAULT_BROKERS})`)
    .option('--since-ms <ms>', since)
    .option('--timeout-ms <ms>', 'give up reading after this long (default 30000)');
  return addKafkaSecurityOptions(cmd);
}

export function addKafkaSecurityOptions(cmd: Command): Command {
  return cmd
    .option('--kafka-tls', 'TLS to the brokers (env FRAMEWIRE_KAFKA_TLS=1; implied by --kafka-ca/--kafka-cert)')
    .option('--kafka-ca <file>', "PEM file of the brokers' CA (env FRAMEWIRE_KAFKA_CA; default: the system's CAs)")
    .option('--kafka-cert <file>', 'client certificate for mutual TLS, with --kafka-key (env FRAMEWIRE_KAFKA_CERT)')
    .option('--kafka-key <file>', 'private key of --kafka-cert (env FRAMEWIRE_KAFKA_KEY)')
    .option('--sasl-mechanism <m>', `SASL: ${SASL_MECHANISMS.join(', ')} (env FRAMEWIRE_KAFKA_SASL_MECHANISM)`)
    .option('--sasl-username <user>', 'SASL user (env FRAMEWIRE_KAFKA_SASL_USERNAME)')
    .option('--sasl-password-file <file>', 'file holding the SASL password; else env FRAMEWIRE_KAFKA_SASL_PASSWORD (never on the command line: ps shows it)');
}

/** kafkajs ssl/sasl options, or a usage error message. Files and secrets are read here. */
export function ingestKafkaSecurity(v: KafkaSecurityFlags, env: NodeJS.ProcessEnv = process.env): Pick<KafkaConfig, 'ssl' | 'sasl'> | string {
  const ca = v.kafkaCa ?? (env.FRAMEWIRE_KAFKA_CA || undefined);
  const cert = v.kafkaCert ?? (env.FRAMEWIRE_KAFKA_CERT || undefined);
  const key = v.kafkaKey ?? (env.FRAMEWIRE_KAFKA_KEY || undefined);
  const tls = v.kafkaTls === true || env.FRAMEWIRE_KAFKA_TLS === '1' || ca !== undefined || cert !== undefined || key !== undefined;
  if ((cert === undefined) !== (key === undefined)) return '--kafka-cert and --kafka-key go together';
  const c: KafkaSecurityConfig = {};
  if (tls) c.ssl = { ca, cert, key };
  const mechanism = v.saslMechanism ?? (env.FRAMEWIRE_KAFKA_SASL_MECHANISM || undefined);
  if (mechanism !== undefined) {
    if (!SASL_MECHANISMS.includes(mechanism as SaslMechanism)) return `--sasl-mechanism must be one of ${SASL_MECHANISMS.join(', ')}`;
    const username = v.saslUsername ?? (env.FRAMEWIRE_KAFKA_SASL_USERNAME || undefined);
    if (!username) return '--sasl-mechanism needs --sasl-username (or FRAMEWIRE_KAFKA_SASL_USERNAME)';
    const file = v.saslPasswordFile;
    c.sasl = { mechanism: mechanism as SaslMechanism, username, password: file ? { file } : { env: 'FRAMEWIRE_KAFKA_SASL_PASSWORD' } };
  } else if (v.saslUsername || v.saslPasswordFile) {
    return '--sasl-username and --sasl-password-file need --sasl-mechanism';
  }
  try {
    return kafkaSecurityOptions(c, 'ingest', env);
  } catch (err) {
    return (err as Error).message.replace(/^ingest\.sasl\.password: /, 'SASL password: ');
  }
}

/** The Kafka flags of a command that reads framewire's topics (`explain`, `shadow report`). */
export interface TopicReaderFlags extends KafkaSecurityFlags {
  brokers?: string;
  sinceMs?: string;
  timeoutMs?: string;
}

/**
 * Checks and resolves a reading command's Kafka flags: brokers (flag, FRAMEWIRE_BROKERS, or the
 * local stack's), TLS/SASL, and the --since-ms/--timeout-ms numbers. A string: the usage error.
 */
export function topicReaderOptions(v: TopicReaderFlags, env: NodeJS.ProcessEnv = process.env): string | { brokers: string[]; security: Pick<KafkaConfig, 'ssl' | 'sasl'> } {
  for (const [flag, x] of [['--since-ms', v.sinceMs], ['--timeout-ms', v.timeoutMs]] as const) {
    if (x !== undefined && !/^[1-9]\d*$/.test(x)) return `${flag} must be a positive whole number of milliseconds, got '${x}'`;
  }
  const brokers = (v.brokers ?? (env.FRAMEWIRE_BROKERS || DEFAULT_BROKERS)).split(',').map((b) => b.trim()).filter(Boolean);
  if (brokers.length === 0) return '--brokers names no broker';
  const security = ingestKafkaSecurity(v, env);
  if (typeof security === 'string') return security;
  return { brokers, security };
}
