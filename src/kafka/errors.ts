/**
 * Which kafkajs failures are worth another attempt. kafkajs marks its own errors `retriable`, but
 * after its internal retries it throws KafkaJSNumberOfRetriesExceeded (not retriable) even when
 * the broker is merely unreachable; for our loops (which back off longer and can be aborted) a
 * connection problem stays retriable however long it lasts.
 */
import { FramewireError } from '../core/errors.js';
import { kafkaConnectError } from './security.js';

const TRANSIENT = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSNumberOfRetriesExceeded',
  'KafkaJSBrokerNotFound',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSLockTimeout',
  'KafkaJSStaleTopicMetadataAssignment',
]);

export function kafkaRetriable(err: unknown): boolean {
  // Our own verdict stands (a FramewireError wrapping a connection error may say: not retriable).
  if (err instanceof FramewireError) return err.retriable;
  // Refused credentials or a failed TLS handshake: waiting will not help.
  if (kafkaConnectError(err, [], 'sink')) return false;
  // kafkajs wraps the failure of its last attempt (KafkaJSNonRetriableError, cause: the connection error).
  for (let e = err as { name?: string; retriable?: boolean; cause?: unknown } | null, depth = 0; e && typeof e === 'object' && depth < 4; e = e.cause as typeof e, depth++) {
    if (e.retriable === true || (e.name !== undefined && TRANSIENT.has(e.name))) return true;
  }
  return false;
}
