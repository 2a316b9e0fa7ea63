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

/**
 * The codes Node gives a TLS client's failure (kafkajs's KafkaJSConnectionError keeps the socket
 * error's `code`): OpenSSL's (ERR_SSL_*: not a TLS listener, a handshake alert), Node's
 * (ERR_TLS_*: host name not in the certificate, handshake timeout) and OpenSSL's certificate
 * verification results.
 */
const TLS_CODE_PREFIXES = ['ERR_SSL_', 'ERR_TLS_'];
const CERTIFICATE_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);
/**
 * A TLS client whose server closed the connection during the handshake (a plaintext listener
 * does, on our ClientHello) gets Node's plain ECONNRESET: this fixed text of Node's (lib/_tls_wrap.js)
 * is the only thing that tells it from any other reset.
 */
const TLS_HANDSHAKE_RESET = 'before secure TLS connection was established';

interface KafkaJSErrorLike {
  name?: string;
  /** KafkaJSProtocolError: the broker's error code by name (e.g. SASL_AUTHENTICATION_FAILED). */
  type?: string;
  /** KafkaJSConnectionError: the socket error's code. */
  code?: string;
  message?: string;
  cause?: unknown;
}

/** The error and its causes: kafkajs wraps the failure of its last attempt (KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded). */
function* causes(err: unknown): Generator<KafkaJSErrorLike> {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 4; e = (e as KafkaJSErrorLike).cause, depth++) yield e as KafkaJSErrorLike;
}

function refusedCredentials(e: KafkaJSErrorLike): boolean {
  return e.name === 'KafkaJSSASLAuthenticationError' || e.type === 'SASL_AUTHENTICATION_FAILED';
}

function failedTls(e: KafkaJSErrorLike): boolean {
  if (e.name !== 'KafkaJSConnectionError' || typeof e.code !== 'string') return false;
  const code = e.code;
  if (TLS_CODE_PREFIXES.some((p) => code.startsWith(p)) || CERTIFICATE_CODES.has(code)) return true;
  return code === 'ECONNRESET' && (e.message ?? '').endsWith(TLS_HANDSHAKE_RESET);
}

/**
 * A kafkajs connect failure as a FramewireError: refused credentials (KAFKA_AUTH_FAILED, not
 * retriable: trying again will not help), a failed TLS handshake (KAFKA_TLS_FAILED); undefined
 * for anything else. Told by kafkajs's error classes and types and the socket error's code.
 */
export function kafkaConnectError(err: unknown, brokers: readonly string[], stage: Stage): FramewireError | undefined {
  const e = err as KafkaJSErrorLike | undefined;
  const text = `${e?.message ?? String(err)}${(e?.cause as KafkaJSErrorLike | undefined)?.message ? ` (${(e!.cause as KafkaJSErrorLike).message})` : ''}`;
  const chain = [...causes(err)];
  if (chain.some(refusedCredentials)) {
    return new FramewireError('KAFKA_AUTH_FAILED', stage, `Kafka ${brokers.join(',')} refused our SASL credentials: ${text}`, { retriable: false, cause: err });
  }
  if (chain.some(failedTls)) {
    return new FramewireError('KAFKA_TLS_FAILED', stage, `TLS to Kafka ${brokers.join(',')} failed: ${text}`, { retriable: false, cause: err });
  }
  return undefined;
}
