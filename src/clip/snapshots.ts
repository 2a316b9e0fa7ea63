/**
 * Alert snapshots, off the data path (issue #19): each firing alert record that names its frame's
 * chunks is queued here as it is published; one job at a time reads the chunks back (the source's
 * chunk history), decodes the frame with a short-lived ffmpeg (./snapshot.ts) and publishes a
 * `snapshot` record (the Kafka sinks' snapshots topic). Nothing here runs per frame; the queue is
 * bounded (`queueSize`: beyond it a firing alert gets no snapshot, counted as `skipped`); a
 * failure is logged once per kind of problem, counted, and never touches the alert itself.
 *
 * A sink that sends the snapshot with its alert (the webhook) asks `snapshotOf(id, deadline)`:
 * the outcome of the last alerts offered is kept, so a sink behind its backlog still finds it.
 */
import { FramewireError } from '../core/errors.js';
import { log } from '../core/log.js';
import type { AlertRecord, SnapshotRecord } from '../core/events.js';
import type { AlertSnapshots, SnapshotMissing, SnapshotOutcome } from '../core/sink.js';
import type { ChunkHistory } from '../core/source.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { SnapshotsConfig } from './config.js';
import { decodeSnapshot, planSnapshot } from './snapshot.js';

/** Outcomes kept for `snapshotOf` (snapshots of ~20-60 KB each: a few MB at most). */
const KEPT_OUTCOMES = 64;

interface Entry {
  alert: AlertRecord;
  offeredAt: number;
  outcome: SnapshotOutcome | undefined;
  waiters: (() => void)[];
}

export interface SnapshotterOptions {
  config: SnapshotsConfig;
  metrics: Metrics;
  ffmpegPath: string;
  /** Publishes a snapshot record to the sinks that carry them. */
  publish(record: SnapshotRecord): void;
}

export class Snapshotter implements AlertSnapshots {
  /** The first source that can read its chunks back; set once sources are built (none: no snapshots). */
  history: ChunkHistory | undefined;
  /** Some sink carries or sends snapshots; set once sinks are built (none: none are made). */
  wanted = true;
  private readonly entries = new Map<string, Entry>();
  private readonly queue: Entry[] = [];
  private running = false;
  private closed = false;
  private readonly abort = new AbortController();

  constructor(private readonly o: SnapshotterOptions) {}

  /** Whether snapshots are being made (enabled, wanted by a sink, and a source can read its chunks back). */
  get active(): boolean {
    return this.o.config.enabled && this.wanted && this.history !== undefined && !this.closed;
  }

  /** Alert rules are set: the chunk history gets ready ahead of the first snapshot. */
  warm(): void {
    if (this.active) this.history!.warm?.();
  }

  /** Alert records about to be published: each firing one is queued for its snapshot. Never waits. */
  offer(records: readonly AlertRecord[]): void {
    if (!this.active) return;
    for (const a of records) {
      if (a.state !== 'firing' || this.entries.has(a.id)) continue; // a re-sent firing record (after a restart) has one already
      const e: Entry = { alert: a, offeredAt: Date.now(), outcome: undefined, waiters: [] };
      this.keep(e);
      if (typeof planSnapshot(a) === 'string') {
        this.settle(e, { missing: 'none' });
      } else if (this.queue.length >= this.o.config.queueSize) {
        this.o.metrics.snapshots.inc({ outcome: 'skipped' });
        log.once('warn', 'snapshots:queue-full', 'alert snapshots: queue full; firing alerts get none meanwhile (framewire_snapshots_total{outcome="skipped"})', { queueSize: this.o.config.queueSize });
        this.settle(e, { missing: 'skipped' });
      } else {
        this.queue.push(e);
        // Takes the first one off the queue at once: `queueSize` counts those waiting.
        if (!this.running) void this.run();
      }
    }
    this.o.metrics.snapshotQueue.set(this.queue.length);
  }

  async snapshotOf(id: string, deadline: number): Promise<SnapshotOutcome> {
    const e = this.entries.get(id);
    if (!e) return { missing: 'none' };
    if (e.outcome) return e.outcome;
    const wait = deadline - Date.now();
    if (wait <= 0) return { missing: 'timeout' };
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      e.waiters.push(resolve);
      timer = setTimeout(resolve, wait);
    });
    clearTimeout(timer);
    return e.outcome ?? { missing: 'timeout' };
  }

  private keep(e: Entry): void {
    this.entries.set(e.alert.id, e);
    // Oldest settled outcomes go first; those still queued or running stay.
    for (const [id, old] of this.entries) {
      if (this.entries.size <= KEPT_OUTCOMES) break;
      if (old.outcome) this.entries.delete(id);
    }
  }

  private settle(e: Entry, outcome: SnapshotOutcome): void {
    e.outcome = outcome;
    for (const w of e.waiters.splice(0)) w();
  }

  private async run(): Promise<void> {
    this.running = true;
    while (!this.closed && this.queue.length > 0) {
      const e = this.queue.shift()!;
      this.o.metrics.snapshotQueue.set(this.queue.length);
      const outcome = await this.make(e);
      this.settle(e, outcome);
    }
    this.running = false;
  }

  private async make(e: Entry): Promise<SnapshotOutcome> {
    const a = e.alert;
    const plan = planSnapshot(a);
    if (typeof plan === 'string' || !this.history) return { missing: 'none' };
    const { timeoutMs } = this.o.config;
    const until = e.offeredAt + timeoutMs;
    const t0 = Date.now();
    try {
      const read = await this.history.readSession({ ...plan.query, timeoutMs });
      const t1 = Date.now();
      if (typeof read === 'string') return this.failed(a, read);
      if (this.closed) return { missing: 'failed' };
      const bytes = Buffer.concat(read.chunks.map((c) => c.value));
      const left = Math.max(100, until - Date.now());
      const done = await decodeSnapshot(bytes, plan.index, { ffmpegPath: this.o.ffmpegPath, maxWidth: this.o.config.maxWidth, quality: this.o.config.quality, timeoutMs: left, signal: this.abort.signal });
      if (typeof done === 'string') return this.failed(a, `decoding frame ${a.atFrame} (frame ${plan.index} after keyframe ${plan.keyFrame}, ${read.chunks.length} chunks): ${done}`);
      const record: SnapshotRecord = {
        type: 'snapshot',
        id: a.id,
        rule: a.rule,
        stream: a.stream,
        session: a.session,
        frame: a.atFrame,
        captureTs: a.captureTs,
        width: done.width,
        height: done.height,
        contentType: 'image/jpeg',
        jpeg: done.jpeg.toString('base64'),
        publishedTs: Date.now(),
      };
      this.o.metrics.snapshots.inc({ outcome: 'made' });
      this.o.metrics.snapshotCpuSeconds.inc(done.cpuSeconds);
      this.o.metrics.snapshotSeconds.observe((record.publishedTs - e.offeredAt) / 1000);
      this.o.publish(record);
      log.debug('alert snapshot made', { id: a.id, frame: a.atFrame, keyFrame: plan.keyFrame, chunks: read.chunks.length, waitedMs: t0 - e.offeredAt, readMs: t1 - t0, decodeMs: record.publishedTs - t1, cpuMs: Math.round(done.cpuSeconds * 1000), bytes: done.jpeg.length });
      return { snapshot: record };
    } catch (err) {
      return this.failed(a, (err as Error).message);
    }
  }

  private failed(a: AlertRecord, why: string): SnapshotOutcome {
    const missing: SnapshotMissing = 'failed';
    if (this.closed) return { missing };
    this.o.metrics.snapshots.inc({ outcome: 'failed' });
    const err = new FramewireError('SNAPSHOT_FAILED', 'postprocess', `alert ${a.id}: ${why}`);
    // Once per kind of problem (the text before the first number): a topic whose retention took the chunks fails every time.
    log.once('warn', `snapshots:${why.replace(/\d.*$/, '')}`, 'alert snapshot failed; the alert went out without it', { id: a.id, code: err.code, err });
    return { missing };
  }

  /**
   * Stops: the job under way is abandoned (its ffmpeg killed; a read of chunks ends by its own
   * timeout, not waited for), queued ones get none. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.queue.length = 0;
    for (const e of this.entries.values()) if (!e.outcome) this.settle(e, { missing: 'failed' });
  }
}
