/**
 * The processor's Kafka connections reconnect within OUTAGE_RETRY_MAX_MS of a broker's return
 * (issue #20). kafkajs's retrier is what waits: between attempts to reach the broker, and, when it
 * gives up, its error's `retryTime` is how long a crashed consumer waits before it restarts
 * (kafkajs consumer/index.js onCrash). With its defaults that restart came ~10 s after the last
 * attempt; with KAFKA_CLIENT_RETRY no wait is longer than OUTAGE_RETRY_MAX_MS.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { OUTAGE_RETRY_MAX_MS } from '../../src/core/retry.js';
import { KAFKA_CLIENT_RETRY } from '../../src/kafka/connections.js';

type Attempt = (bail: (e: Error) => void, retryCount: number, retryTime: number) => Promise<unknown>;
const createRetry = createRequire(import.meta.url)('kafkajs/src/retry') as (opts: object) => (fn: Attempt) => Promise<unknown>;

/** An attempt that always fails as an unreachable broker does; the waits kafkajs made, and its final error. */
async function outage(opts: object): Promise<{ waits: number[]; err: { name: string; retryTime: number } }> {
  const waits: number[] = [];
  const err = await createRetry(opts)(async (_bail, _count, retryTime) => {
    waits.push(retryTime);
    throw Object.assign(new Error('Connection error: connect ECONNREFUSED'), { retriable: true });
  }).then(
    () => assert.fail('an attempt succeeded'),
    (e: { name: string; retryTime: number }) => e,
  );
  return { waits, err };
}

test('every reconnect wait of the Kafka clients, and a crashed consumer\'s restart delay, is at most OUTAGE_RETRY_MAX_MS', async () => {
  const { waits, err } = await outage(KAFKA_CLIENT_RETRY);
  assert.equal(err.name, 'KafkaJSNumberOfRetriesExceeded');
  assert.ok(waits.length >= 5, `only ${waits.length} attempts`);
  for (const w of waits) assert.ok(w <= OUTAGE_RETRY_MAX_MS, `waited ${w} ms before an attempt`);
  // What the consumer waits before restarting after it gave up (its last retryTime).
  assert.ok(err.retryTime <= OUTAGE_RETRY_MAX_MS, `a crashed consumer would restart after ${err.retryTime} ms`);
});
