/** The consumer-group knobs of the Kafka source: defaults, and errors that name the field. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTopology } from '../../src/config/load.js';
import { FramewireError } from '../../src/core/errors.js';
import type { KafkaSourceConfig } from '../../src/sources/kafka/config.js';

const topo = (source: string) => `
sources: [{ type: kafka${source} }]
models: [{ name: colour_probe }]
sinks: [{ type: kafka }]
`;

test("defaults move a crashed member's partitions after the broker's minimum session (6 s), heartbeats well inside it", () => {
  const s = parseTopology(topo(''), 'topo.yaml').sources[0] as KafkaSourceConfig;
  assert.equal(s.sessionTimeoutMs, 6000);
  assert.ok(s.heartbeatIntervalMs * 3 <= s.sessionTimeoutMs);
  assert.ok(s.rebalanceTimeoutMs > s.sessionTimeoutMs);
  assert.ok(s.fetchMaxWaitMs <= 1000, 'a member notices a rebalance between fetches');
});

test('a heartbeat longer than a third of the session is refused, naming the field', () => {
  assert.throws(
    () => parseTopology(topo(', sessionTimeoutMs: 6000, heartbeatIntervalMs: 2500'), 'topo.yaml'),
    (err: FramewireError) => err.code === 'TOPOLOGY_INVALID' && /sources\[0\]\.heartbeatIntervalMs: heartbeatIntervalMs must be at most a third of sessionTimeoutMs/.test(err.message),
  );
  assert.throws(() => parseTopology(topo(', sessionTimeoutMs: 500'), 'topo.yaml'), (err: FramewireError) => /sources\[0\]\.sessionTimeoutMs/.test(err.message));
});
