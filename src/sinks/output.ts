/**
 * The output stage: the one place records fan out to the sinks (Redpanda Connect's fan-out
 * broker is the model). It owns, per kind of record, how a delivery to several sinks is retried
 * and what a partial failure means:
 *  - `deliver` (labels and `dropped` events, which finish frames and so gate offset commits):
 *    every sink gets the batch, each retried on its own while its failure is retriable. A sink
 *    that has a batch is never sent it again, so a WebSocket client sees each label once while
 *    the Kafka sink rides out a broker outage. Resolves when every sink has it; `failed` when a
 *    sink refused it for good, `aborted` when shutdown gave up (frames stay unfinished).
 *  - `bestEffort` (change and stream-health events): each sink once, a failure logged per sink.
 *  - `alerts`: per sink, in order, off the pipeline's path, retried with backoff behind a
 *    bounded backlog (a sink more than MAX_BACKLOG records behind loses the oldest, counted).
 *  - `snapshot` (alert snapshots): each sink that carries them, a few attempts, gating nothing.
 */
import { log } from '../core/log.js';
import { OUTAGE_RETRY_BASE_MS, OUTAGE_RETRY_MAX_MS, isAbort, retry } from '../core/retry.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { AlertRecord, SnapshotRecord } from '../core/events.js';
import { RecordBatch, type EventBatch, type LabelBatch, type Sink } from '../core/sink.js';

export type Delivery = 'ok' | 'failed' | 'aborted';

/** Attempts per sink for a snapshot record (it gates nothing; its alert went out already). */
const SNAPSHOT_ATTEMPTS = 5;

export class OutputStage {
  readonly alerts: AlertPublisher;
  private readonly pending = new Set<Promise<void>>();

  /** `signal` aborts the retries of `deliver` (shutdown past its deadline). */
  constructor(readonly sinks: readonly Sink[], metrics: Metrics, private readonly signal?: AbortSignal) {
    this.alerts = new AlertPublisher(sinks, metrics);
  }

  /** Records that finish frames: every sink must have them (see above). `what` names them in logs. */
  async deliver(kind: 'labels' | 'events', batch: LabelBatch | EventBatch, what: string, context?: Record<string, unknown>): Promise<Delivery> {
    const results = await Promise.all(this.sinks.map((s) => this.toSink(s, kind, batch, what, context)));
    if (results.includes('aborted')) return 'aborted';
    return results.includes('failed') ? 'failed' : 'ok';
  }

  private async toSink(s: Sink, kind: 'labels' | 'events', batch: LabelBatch | EventBatch, what: string, context?: Record<string, unknown>): Promise<Delivery> {
    try {
      await retry(() => (kind === 'labels' ? s.publishLabels(batch as LabelBatch) : s.publishEvents(batch as EventBatch)), {
        attempts: Infinity,
        baseMs: OUTAGE_RETRY_BASE_MS,
        maxMs: OUTAGE_RETRY_MAX_MS,
        signal: this.signal,
        // Once per outage and sink, not per attempt.
        onRetry: (err, attempt) => {
          if (attempt === 0) log.warn(`publishing ${what} failed; retrying`, { ...context, sink: s.name, err });
        },
      });
      return 'ok';
    } catch (err) {
      if (isAbort(err)) return 'aborted';
      log.error(`publishing ${what} failed and cannot be retried`, { ...context, sink: s.name, err, records: batch.records.length });
      return 'failed';
    }
  }

  /** Events that gate nothing: each sink once; `settled()` waits for the sends under way. */
  bestEffort(batch: EventBatch, what: string): void {
    const p: Promise<void> = Promise.all(this.sinks.map((s) => s.publishEvents(batch).catch((err: unknown) => log.warn(`publishing ${what} failed`, { sink: s.name, err })))).then(() => {
      this.pending.delete(p);
    });
    this.pending.add(p);
  }

  /**
   * A snapshot record (clip/snapshots.ts) to every sink that carries them, each retried a few
   * times on its own; gates nothing, a failure is logged once per sink.
   */
  snapshot(record: SnapshotRecord): void {
    const batch = new RecordBatch([record]);
    const sinks = this.sinks.filter((s) => s.publishSnapshots);
    if (sinks.length === 0) return;
    const p: Promise<void> = Promise.all(
      sinks.map((s) =>
        retry(() => s.publishSnapshots!(batch), { attempts: SNAPSHOT_ATTEMPTS, baseMs: OUTAGE_RETRY_BASE_MS, maxMs: OUTAGE_RETRY_MAX_MS, signal: this.signal }).catch((err: unknown) =>
          log.once('warn', `snapshot:${s.name}`, 'publishing an alert snapshot failed', { sink: s.name, id: record.id, err }),
        ),
      ),
    ).then(() => {
      this.pending.delete(p);
    });
    this.pending.add(p);
  }

  /** Best-effort sends under way have settled, and alerts are delivered (or `alertTimeoutMs` passed). */
  async settled(alertTimeoutMs = 5000): Promise<void> {
    await Promise.all([...this.pending]);
    await this.alerts.flush(alertTimeoutMs);
  }
}

const MAX_BACKLOG = 10_000;

interface Lane {
  sink: Sink;
  backlog: RecordBatch<AlertRecord>[];
  size: number;
  running: boolean;
}

/** Alerts to every sink that carries them, each sink in order on its own lane. */
export class AlertPublisher {
  private readonly lanes: Lane[];
  private idle: (() => void)[] = [];

  constructor(sinks: readonly Sink[], private readonly metrics: Metrics) {
    this.lanes = sinks.filter((s) => s.publishAlerts).map((sink) => ({ sink, backlog: [], size: 0, running: false }));
  }

  publish(records: AlertRecord[]): void {
    if (records.length === 0) return;
    const now = Date.now();
    for (const r of records) {
      r.publishedTs = now;
      this.metrics.alerts.inc({ state: r.state });
    }
    // Serialised once, the same bytes to every sink.
    const batch = new RecordBatch(records);
    for (const lane of this.lanes) {
      lane.backlog.push(batch);
      lane.size += records.length;
      while (lane.size > MAX_BACKLOG && lane.backlog.length > 1) {
        const lost = lane.backlog.splice(1, 1)[0]!; // the head may be in flight
        lane.size -= lost.records.length;
        this.metrics.alertsDropped.inc({ sink: lane.sink.name }, lost.records.length);
      }
      if (!lane.running) void this.drain(lane);
    }
  }

  private async drain(lane: Lane): Promise<void> {
    lane.running = true;
    while (lane.backlog.length > 0) {
      const batch = lane.backlog[0]!;
      for (let attempt = 0; ; attempt++) {
        try {
          await lane.sink.publishAlerts!(batch);
          break;
        } catch (err) {
          log.warn('publishing alerts failed; retrying', { sink: lane.sink.name, err, attempt });
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(5000, 100 * 2 ** attempt)));
        }
      }
      lane.backlog.shift();
      lane.size -= batch.records.length;
    }
    lane.running = false;
    if (this.lanes.every((l) => !l.running)) for (const w of this.idle.splice(0)) w();
  }

  /** Resolves when every sink has what was published so far (or after `timeoutMs`). */
  async flush(timeoutMs = 5000): Promise<void> {
    if (this.lanes.every((l) => !l.running)) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise<void>((r) => this.idle.push(r)), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }
}

