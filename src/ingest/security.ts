/**
 * `framewire ingest`'s Kafka TLS and SASL flags (and their environment variables), turned into
 * the same kafkajs options the processor builds from a topology's `kafka.ssl` / `kafka.sasl`.
 */
import type { KafkaConfig } from 'kafkajs';
import { kafkaSecurityOptions, SASL_MECHANISMS, type KafkaSecurityConfig, type SaslMechanism } from '../config/kafka-security.js';

/** parseArgs option specs, merged into the command's. */
export const SECURITY_OPTIONS = {
  'kafka-tls': { type: 'boolean' },
  'kafka-ca': { type: 'string' },
  'kafka-cert': { type: 'string' },
  'kafka-key': { type: 'string' },
  'sasl-mechanism': { type: 'string' },
  'sasl-username': { type: 'string' },
  'sasl-password-file': { type: 'string' },
} as const;

export const SECURITY_USAGE = `  --kafka-tls    TLS to the brokers (env FRAMEWIRE_KAFKA_TLS=1; implied by --kafka-ca/--kafka-cert)
  --kafka-ca F   PEM file of the brokers' CA (env FRAMEWIRE_KAFKA_CA; default: the system's)
  --kafka-cert F, --kafka-key F   client certificate and key for mutual TLS
                 (env FRAMEWIRE_KAFKA_CERT, FRAMEWIRE_KAFKA_KEY)
  --sasl-mechanism M   plain, scram-sha-256 or scram-sha-512 (env FRAMEWIRE_KAFKA_SASL_MECHANISM)
  --sasl-username U    (env FRAMEWIRE_KAFKA_SASL_USERNAME)
  --sasl-password-file F   file holding the password; else env FRAMEWIRE_KAFKA_SASL_PASSWORD
                 (a password is never taken on the command line: ps shows it)
`;

type Values = { [K in keyof typeof SECURITY_OPTIONS]?: (typeof SECURITY_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

/** kafkajs ssl/sasl options, or a usage error message. Files and secrets are read here. */
export function ingestKafkaSecurity(v: Values, env: NodeJS.ProcessEnv = process.env): Pick<KafkaConfig, 'ssl' | 'sasl'> | string {
  const ca = v['kafka-ca'] ?? (env.FRAMEWIRE_KAFKA_CA || undefined);
  const cert = v['kafka-cert'] ?? (env.FRAMEWIRE_KAFKA_CERT || undefined);
  const key = v['kafka-key'] ?? (env.FRAMEWIRE_KAFKA_KEY || undefined);
  const tls = v['kafka-tls'] === true || env.FRAMEWIRE_KAFKA_TLS === '1' || ca !== undefined || cert !== undefined || key !== undefined;
  if ((cert === undefined) !== (key === undefined)) return '--kafka-cert and --kafka-key go together';
  const c: KafkaSecurityConfig = {};
  if (tls) c.ssl = { ca, cert, key };
  const mechanism = v['sasl-mechanism'] ?? (env.FRAMEWIRE_KAFKA_SASL_MECHANISM || undefined);
  if (mechanism !== undefined) {
    if (!SASL_MECHANISMS.includes(mechanism as SaslMechanism)) return `--sasl-mechanism must be one of ${SASL_MECHANISMS.join(', ')}`;
    const username = v['sasl-username'] ?? (env.FRAMEWIRE_KAFKA_SASL_USERNAME || undefined);
    if (!username) return '--sasl-mechanism needs --sasl-username (or FRAMEWIRE_KAFKA_SASL_USERNAME)';
    const file = v['sasl-password-file'];
    c.sasl = { mechanism: mechanism as SaslMechanism, username, password: file ? { file } : { env: 'FRAMEWIRE_KAFKA_SASL_PASSWORD' } };
  } else if (v['sasl-username'] || v['sasl-password-file']) {
    return '--sasl-username and --sasl-password-file need --sasl-mechanism';
  }
  try {
    return kafkaSecurityOptions(c, 'ingest', env);
  } catch (err) {
    return (err as Error).message.replace(/^ingest\.sasl\.password: /, 'SASL password: ');
  }
}
