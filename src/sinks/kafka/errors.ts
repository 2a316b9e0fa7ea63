/**
 * Which kafkajs failures are worth another attempt. kafkajs marks its own errors `retriable`, but
 * after its internal retries it throws KafkaJSNumberOfRetriesExceeded (not retriable) even when
 * the broker is merely unreachable; for our loops (which back off longer and can be aborted) a
 * connection problem stays retriable however long it lasts.
 */
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
  const e = err as { name?: string; retriable?: boolean } | null;
  if (!e || typeof e !== 'object') return false;
  return e.retriable === true || (e.name !== undefined && TRANSIENT.has(e.name));
}
