/**
 * TLS and SASL for every Kafka client of the process (source, sinks, admin; `framewire ingest`):
 * the topology's `kafka.ssl` / `kafka.sasl` become kafkajs options, and kafkajs's connection
 * failures become errors that say which of the two went wrong.
 */
import type { KafkaConfig, SASLOptions } from 'kafkajs';
import { z } from 'zod/v4';
import { FramewireError, type Stage } from '../core/errors.js';
import { readSecret, secretSchema } from '../config/secret.js';
import { readTls, tlsSchema } from '../config/tls.js';

export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

export const kafkaSaslSchema = z
  .strictObject({
    mechanism: z.enum(SASL_MECHANISMS).describe('SASL mechanism: `plain` (use it only over TLS), `scram-sha-256` or `scram-sha-512`.'),
    username: z.string().min(1).describe('SASL user name.'),
    password: secretSchema.describe('Where the password comes from: `{ env: NAME }` or `{ file: PATH }`; never inline.'),
  })
  .describe('SASL authentication with the brokers.');

export const kafkaSslSchema = tlsSchema.describe('TLS to the brokers (a listener of protocol SSL or SASL_SSL); `{}` for the system CAs.');

export type KafkaSecurityConfig = { ssl?: z.infer<typeof kafkaSslSchema>; sasl?: z.infer<typeof kafkaSaslSchema> };

/** kafkajs's `ssl` and `sasl` options for a topology's `kafka` block (reads the files and secrets). */
export function kafkaSecurityOptions(c: KafkaSecurityConfig, field = 'kafka', env: NodeJS.ProcessEnv = process.env): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (c.ssl) {
    const m = readTls(c.ssl, `${field}.ssl`, env);
    out.ssl = Object.keys(m).length === 0 ? true : { ...m };
  }
  if (c.sasl) {
    out.sasl = { mechanism: c.sasl.mechanism, username: c.sasl.username, password: readSecret(c.sasl.password, `${field}.sasl.password`, env) } as SASLOptions;
  }
  return out;
}

const TLS_PROBLEM = /certificate|self[- ]signed|SSL routines|TLS|handshake|altnames|unable to verify|wrong version number/i;

/**
 * A kafkajs connect failure as a FramewireError: refused credentials (KAFKA_AUTH_FAILED, not
 * retriable: trying again will not help), a failed TLS handshake (KAFKA_TLS_FAILED); undefined
 * for anything else.
 */
export function kafkaConnectError(err: unknown, brokers: readonly string[], stage: Stage): FramewireError | undefined {
  const e = err as { name?: string; message?: string; cause?: { message?: string } };
  const text = `${e?.message ?? String(err)}${e?.cause?.message ? ` (${e.cause.message})` : ''}`;
  if (e?.name === 'KafkaJSSASLAuthenticationError' || /SASL .*authentication failed|Authentication failed/i.test(text)) {
    return new FramewireError('KAFKA_AUTH_FAILED', stage, `Kafka ${brokers.join(',')} refused our SASL credentials: ${text}`, { retriable: false, cause: err });
  }
  // kafkajs gives up on a connection error after its retries and wraps it; the text is the same.
  if (/^KafkaJS(Connection|NonRetriable|NumberOfRetriesExceeded)/.test(e?.name ?? '') && /Connection error/.test(text) && TLS_PROBLEM.test(text)) {
    return new FramewireError('KAFKA_TLS_FAILED', stage, `TLS to Kafka ${brokers.join(',')} failed: ${text}`, { retriable: false, cause: err });
  }
  return undefined;
}
