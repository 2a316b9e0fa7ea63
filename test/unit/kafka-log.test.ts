/**
 * kafkajs log lines (src/kafka/log.ts): the coordinator-loading responses a fresh broker
 * gives are not errors for the user; every other line is printed as kafkajs's own logger would.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { logLevel, type LogEntry } from 'kafkajs';
import { COORDINATOR_LOADING_MESSAGES, ingestKafkaLogCreator, isCoordinatorLoading, processorKafkaLogCreator } from '../../src/kafka/log.js';

const require = createRequire(import.meta.url);

function entry(level: logLevel, namespace: string, message: string, extra: Record<string, unknown> = {}): LogEntry {
  const label = ({ [logLevel.ERROR]: 'ERROR', [logLevel.WARN]: 'WARN', [logLevel.INFO]: 'INFO', [logLevel.DEBUG]: 'DEBUG' } as Record<number, string>)[level]!;
  return { namespace, level, label, log: { timestamp: '2026-01-01T00:00:00.000Z', logger: 'kafkajs', message, ...extra } };
}

/** What the console and stderr get while `fn` runs. */
function captured(fn: () => void): string {
  const out: string[] = [];
  const saved = { error: console.error, warn: console.warn, info: console.info, log: console.log, write: process.stderr.write };
  for (const k of ['error', 'warn', 'info', 'log'] as const) console[k] = (line: string) => void out.push(`${k}: ${line}`);
  process.stderr.write = ((chunk: string) => (out.push(`stderr: ${String(chunk).trimEnd()}`), true)) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    Object.assign(console, { error: saved.error, warn: saved.warn, info: saved.info, log: saved.log });
    process.stderr.write = saved.write;
  }
  return out.join('\n');
}

// What a fresh broker made every `npm start` print (both seen in one start of the processor).
const loading = entry(logLevel.ERROR, 'Connection', 'Response InitProducerId(key: 22, version: 1)', {
  broker: '127.0.0.1:9092', clientId: 'framewire-local', error: "The coordinator is loading and hence can't process requests for this group", correlationId: 2, size: 20,
});
const notAvailable = entry(logLevel.ERROR, 'Connection', 'Response GroupCoordinator(key: 10, version: 2)', {
  broker: '127.0.0.1:9092', clientId: 'framewire-local', error: 'The group coordinator is not available', correlationId: 12, size: 55,
});

test("the downgraded messages are kafkajs's own for the retriable codes 14 and 15", () => {
  const { errorCodes } = require('kafkajs/src/protocol/error.js') as { errorCodes: { code: number; type: string; retriable: boolean; message: string }[] };
  const ours = errorCodes.filter((e) => COORDINATOR_LOADING_MESSAGES.has(e.message));
  assert.deepEqual(ours.map((e) => [e.code, e.type, e.retriable]).sort(), [[14, 'GROUP_LOAD_IN_PROGRESS', true], [15, 'GROUP_COORDINATOR_NOT_AVAILABLE', true]]);
  assert.equal(COORDINATOR_LOADING_MESSAGES.size, 2);
});

test('only connection responses saying the coordinator is loading or not available are downgraded', () => {
  assert.equal(isCoordinatorLoading(loading), true);
  assert.equal(isCoordinatorLoading(notAvailable), true);
  // Same code, but kafkajs gave up (the consumer crashed): an error for the user.
  assert.equal(isCoordinatorLoading(entry(logLevel.ERROR, 'Consumer', 'Crash: KafkaJSNumberOfRetriesExceeded: The group coordinator is not available', { error: 'The group coordinator is not available' })), false);
  // Other errors of the same request stay.
  assert.equal(isCoordinatorLoading(entry(logLevel.ERROR, 'Connection', 'Response GroupCoordinator(key: 10, version: 2)', { error: 'This is not the correct coordinator for this group' })), false);
  assert.equal(isCoordinatorLoading(entry(logLevel.ERROR, 'Connection', 'Connection error: connect ECONNREFUSED 127.0.0.1:9092')), false);
});

test("the processor's logger: nothing at the default level for coordinator loading; other lines as kafkajs prints them", () => {
  const ours = processorKafkaLogCreator(logLevel.WARN);
  assert.equal(captured(() => (ours(loading), ours(notAvailable))), '', 'FRAMEWIRE_LOG_LEVEL is info in tests: debug lines are not written');

  const kafkajsOwn = (require('kafkajs/src/loggers/console.js') as () => (e: LogEntry) => void)();
  for (const e of [
    entry(logLevel.ERROR, 'Connection', 'Response Produce(key: 0, version: 7)', { broker: 'b:9092', error: 'The server experienced an unexpected error when processing the request' }),
    entry(logLevel.WARN, 'BrokerPool', 'Failed to connect to seed broker, trying another broker from the list', { retryCount: 1 }),
    entry(logLevel.INFO, '', 'no namespace'),
  ]) {
    const line = captured(() => ours(e));
    assert.notEqual(line, '');
    assert.equal(line, captured(() => kafkajsOwn(e)));
  }
});

test("ingest's logger: coordinator loading not at warn/error; other lines once, with their error", () => {
  const ours = ingestKafkaLogCreator(logLevel.WARN);
  assert.equal(captured(() => (ours(loading), ours(notAvailable))), '');
  const failed = entry(logLevel.ERROR, 'Connection', `Response Produce(key: 0, version: 7) ${Math.random()}`, { broker: 'b:9092', error: 'boom' });
  const out = captured(() => (ours(failed), ours(failed)));
  const lines = out.split('\n');
  assert.equal(lines.length, 1, out);
  const rec = JSON.parse(lines[0]!.replace(/^stderr: /, '')) as Record<string, unknown>;
  assert.equal(rec.level, 'error');
  assert.equal(rec.msg, `kafkajs Connection: ${failed.log.message}`);
  assert.equal(rec.broker, 'b:9092');
  assert.equal(rec.error, 'boom');
});
