import type { LabelRecord } from '../core/frame.js';
import type { AlertRecord } from '../alerts/types.js';

/**
 * Events published on the events topic and the WebSocket (`dropped`, `change`, …), serialised as
 * JSON; `dropped` (core/frame.ts) is the one the accounting relies on.
 */
export interface PipelineEvent {
  readonly type: string;
  readonly stream: string;
}

/**
 * A destination for labels and events. `publishLabels` resolves once the records are durably
 * delivered (for Kafka: acknowledged by all in-sync replicas); only then are frames finished.
 */
export interface Sink {
  readonly name: string;
  /** traceparents[i] belongs to records[i] (may be undefined). */
  publishLabels(records: LabelRecord[], traceparents: (string | undefined)[]): Promise<void>;
  publishEvents(events: PipelineEvent[]): Promise<void>;
  /** Alert records (src/alerts); sinks without it do not carry alerts. */
  publishAlerts?(alerts: AlertRecord[]): Promise<void>;
  close(): Promise<void>;
}
