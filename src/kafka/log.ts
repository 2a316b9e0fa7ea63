/**
 * What kafkajs logs, and where it goes.
 *
 * A broker that has just started, or is just creating __consumer_offsets / __transaction_state,
 * answers FindCoordinator and InitProducerId with GROUP_LOAD_IN_PROGRESS (14, "the coordinator is
 * loading") or GROUP_COORDINATOR_NOT_AVAILABLE (15) for a second or two. kafkajs retries those
 * requests itself, but its connection first logs each such response at ERROR ("[Connection]
 * Response GroupCoordinator(key: 10, version: 2)", error "The group coordinator is not
 * available"), so every fresh `npm start` printed errors that were not. Exactly those lines go to
 * our debug level (FRAMEWIRE_LOG_LEVEL=debug shows them); every other kafkajs line is logged as
 * before, including the same codes when kafkajs gives up on them (a consumer crash, a failed
 * connect), which the caller reports.
 */
import { logLevel, type LogEntry, type logCreator } from 'kafkajs';
import { log } from '../core/log.js';

/**
 * kafkajs 2.2.4's messages for the retriable codes 14 and 15 (src/protocol/error.js); the
 * connection logs `error: e.message`. A unit test checks them against kafkajs's table.
 */
export const COORDINATOR_LOADING_MESSAGES: ReadonlySet<string> = new Set([
  "The coordinator is loading and hence can't process requests for this group",
  'The group coordinator is not available',
]);

/** A response line of kafkajs's connection saying the coordinator is loading or not available yet. */
export function isCoordinatorLoading(entry: LogEntry): boolean {
  const error: unknown = entry.log.error;
  return (
    entry.namespace === 'Connection' &&
    entry.log.message.startsWith('Response ') &&
    typeof error === 'string' &&
    COORDINATOR_LOADING_MESSAGES.has(error)
  );
}

function logDebug(entry: LogEntry): void {
  log.debug(`kafkajs ${entry.namespace}: ${entry.log.message}: ${String(entry.log.error)} (retried)`, {
    broker: entry.log.broker as unknown,
    clientId: entry.log.clientId as unknown,
  });
}

/**
 * The processor's kafkajs logger: kafkajs's own line (its default console logger: JSON with
 * level, timestamp, logger, message, and the entry's fields), except the coordinator-loading
 * responses above, which go to our debug level.
 */
export const processorKafkaLogCreator: logCreator = () => (entry) => {
  if (isCoordinatorLoading(entry)) return logDebug(entry);
  const { namespace, level, label, log: content } = entry;
  const line = JSON.stringify({ level: label, ...content, message: `${namespace ? `[${namespace}] ` : ''}${content.message}` });
  if (level === logLevel.ERROR) console.error(line);
  else if (level === logLevel.WARN) console.warn(line);
  else if (level === logLevel.INFO) console.info(line);
  else console.log(line);
};

/**
 * `framewire ingest`'s kafkajs logger: warnings and errors through our logger, each distinct one
 * once (the sender's retries would repeat them through an outage); coordinator-loading responses
 * at debug.
 */
export const ingestKafkaLogCreator: logCreator = () => (entry) => {
  if (isCoordinatorLoading(entry)) return logDebug(entry);
  const msg = `kafkajs ${entry.namespace}: ${entry.log.message}`;
  log.once(entry.level === logLevel.ERROR ? 'error' : 'warn', msg, msg, { broker: entry.log.broker as unknown, error: entry.log.error as unknown });
};
