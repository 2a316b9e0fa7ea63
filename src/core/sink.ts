/** The output contract: what every sink implements, and the records it is handed. */
import type { LabelRecord } from './frame.js';
import type { AlertRecord, PipelineEvent } from './events.js';

/**
 * Records on their way to the sinks with their JSON text, made once, on first use, and shared:
 * every sink sends the same bytes (a record names its own `type`, so the text needs no wrapper),
 * and a batch no sink needs as text (a WebSocket without clients) is never serialised.
 */
export class RecordBatch<R extends { readonly type: string; readonly stream: string }> {
  private texts: string[] | undefined;

  /** traceparents[i] belongs to records[i] (may be undefined). */
  constructor(readonly records: readonly R[], readonly traceparents: readonly (string | undefined)[] = []) {}

  get json(): readonly string[] {
    if (!this.texts) {
      const texts = new Array<string>(this.records.length);
      for (let i = 0; i < texts.length; i++) texts[i] = JSON.stringify(this.records[i]);
      this.texts = texts;
    }
    return this.texts;
  }
}

export type LabelBatch = RecordBatch<LabelRecord>;
export type EventBatch = RecordBatch<PipelineEvent>;
export type AlertBatch = RecordBatch<AlertRecord>;

/**
 * A destination for labels and events. `publishLabels` resolves once the records are durably
 * delivered (for Kafka: acknowledged by all in-sync replicas); only then are frames finished.
 */
export interface Sink {
  readonly name: string;
  publishLabels(batch: LabelBatch): Promise<void>;
  publishEvents(batch: EventBatch): Promise<void>;
  /** Alert records (src/alerts); sinks without it do not carry alerts. */
  publishAlerts?(batch: AlertBatch): Promise<void>;
  close(): Promise<void>;
}
