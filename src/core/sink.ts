/**
 * The output contract: what every sink implements, the records it is handed, and the capabilities
 * a sink may declare beyond delivery (optional members of Sink). The topology asks for a
 * capability by its member (`sinks.find((s) => s.alertHistory)`), never by a sink's type.
 */
import type { LabelRecord } from './frame.js';
import type { AlertRecord, PipelineEvent, SnapshotRecord } from './events.js';

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
export type SnapshotBatch = RecordBatch<SnapshotRecord>;

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
  /** Snapshots of firing alerts (clip/snapshots.ts); sinks without it do not carry them. */
  publishSnapshots?(batch: SnapshotBatch): Promise<void>;
  /** Sends alerts with their snapshots, asked for through BuildContext.snapshots (the webhook with `includeSnapshot`). */
  readonly sendsSnapshots?: boolean;
  close(): Promise<void>;
  /** Reads back the alerts it published: the alert engine restores open episodes from them at start. */
  readonly alertHistory?: AlertHistory;
  /** Has dashboard clients: the dashboard's stats, pipeline, hello and thumbnail messages go to them. */
  readonly dashboard?: DashboardClients;
}

/** A sink's record of the alerts it published. */
export interface AlertHistory {
  /**
   * Alert records of the last `lookbackMs`, oldest first per stream; empty when they cannot be
   * read (a restart then re-opens open episodes with new ids).
   */
  recentAlerts(lookbackMs: number): Promise<AlertRecord[]>;
}

/**
 * Sends one message of a stream to the client that asked, if it may see it; `null`: a message
 * about no stream and no stream's data (the `hello` greeting), sent to any client.
 */
export type ClientSend = (stream: string | null, text: string) => void;

/** A sink's dashboard clients (the WebSocket's): what the dashboard hub and the thumbnailer send through. */
export interface DashboardClients {
  /** Some client wants `stats` and `pipeline` messages (a dashboard is open). */
  readonly hasStatsClients: boolean;
  /** Called with a sender for each client that starts asking for stats (it gets a `hello`). */
  onStatsClient: ((send: ClientSend) => void) | undefined;
  /** A `stats` message of a stream, or (stream undefined) a `pipeline` message. */
  sendStats(stream: string | undefined, text: string): void;
  /** Some client wants thumbnails of this stream (cheap when none wants any). */
  wantsThumb(stream: string): boolean;
  sendThumb(stream: string, text: string): void;
}

/** Why a firing alert's snapshot is not there: see docs/contracts.md "Snapshots". */
export type SnapshotMissing = 'timeout' | 'failed' | 'skipped' | 'none';

export type SnapshotOutcome = { snapshot: SnapshotRecord; missing?: undefined } | { snapshot?: undefined; missing: SnapshotMissing };

/**
 * The snapshots of firing alerts, for a sink that sends one with its alert (the webhook): every
 * component's build gets it (BuildContext.snapshots), whether snapshots are made or not.
 */
export interface AlertSnapshots {
  /**
   * The snapshot of the firing alert `id`, waiting for it until `deadline` (Unix ms) at most;
   * `missing` says why there is none (`none` at once when none is being made for it).
   */
  snapshotOf(id: string, deadline: number): Promise<SnapshotOutcome>;
}
