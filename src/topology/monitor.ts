/**
 * What operators watch, wired beside the data path: stream health (`stream` events), alert rules
 * (`alert` records), and the dashboard's WebSocket feed (stats, pipeline, thumbnails) and page.
 * The pipeline calls a handful of hooks (chunk, session ended, frame decoded, dropped, published,
 * change events); each only updates numbers in place or queues work for a timer.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DropReason, Frame, LabelRecord } from '../core/frame.js';
import { log } from '../core/log.js';
import type { Topology } from '../config/topology.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { HttpEndpoint } from '../telemetry/http.js';
import { RecordBatch, type DashboardClients, type Sink } from '../core/sink.js';
import type { Source } from '../core/source.js';
import type { AlertPublisher, OutputStage } from '../sinks/output.js';
import type { AlertRecord, ChangeEvent, PipelineEvent, StreamEvent } from '../core/events.js';
import type { Route } from '../decode/sessions.js';
import { HealthTracker } from '../health/tracker.js';
import { AlertEngine } from '../alerts/engine.js';
import { DashboardHub } from '../dashboard/hub.js';
import { DashboardFiles } from '../dashboard/static.js';
import { Thumbnailer } from '../dashboard/thumbs.js';
import type { Snapshotter } from '../clip/snapshots.js';

/** Open episodes are looked for this far back in the sink's alert history at start. */
const RESTORE_LOOKBACK_MS = 60 * 60 * 1000;
const TICK_MS = 200;

export interface MonitorOptions {
  topology: Topology;
  output: OutputStage;
  metrics: Metrics;
  /** The built sinks: the first with an alert history restores open episodes, the first with dashboard clients gets the dashboard. */
  sinks: readonly Sink[];
  models: string[];
  /** Snapshots of firing alerts: offered each alert record before it is published. */
  snapshots?: Snapshotter;
  /** Whether a stream's decoder is running (undefined: no open session). */
  decoding(stream: string): boolean | undefined;
  /** The decode stage's input clock (wall time less backpressure waits): stalls are measured on it. */
  inputClock?(): number;
}

export class Monitor {
  readonly health: HealthTracker;
  readonly engine: AlertEngine;
  private readonly publisher: AlertPublisher;
  private readonly dashboard: DashboardClients | undefined;
  private readonly thumbs: Thumbnailer | undefined;
  private hub: DashboardHub | undefined;
  private readonly files: DashboardFiles | undefined;
  private pendingEvents: StreamEvent[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: MonitorOptions) {
    this.engine = new AlertEngine(o.topology.alerts);
    this.publisher = o.output.alerts;
    this.health = new HealthTracker({ config: o.topology.health, emit: (e) => this.streamEvent(e), decoding: o.decoding, inputClock: o.inputClock && (() => o.inputClock!()) });
    this.dashboard = o.sinks.find((s) => s.dashboard)?.dashboard;
    this.thumbs = this.dashboard ? new Thumbnailer(this.dashboard, o.metrics) : undefined;
    this.files = this.dashboard ? new DashboardFiles() : undefined;
  }

  /**
   * Reads the previous run's open episodes (so they keep their ids); then the timers start.
   * `sources` are the built sources (the first that can say its lag gives the dashboard's).
   */
  async start(sources: readonly Source[]): Promise<void> {
    const history = this.o.sinks.find((s) => s.alertHistory)?.alertHistory;
    if (this.engine.enabled && history) {
      const recent = await history.recentAlerts(RESTORE_LOOKBACK_MS);
      this.engine.restore(recent);
      if (recent.length) log.info('alert episodes read back from the alerts topic', { records: recent.length, open: this.engine.active().length });
    }
    if (this.engine.enabled) this.o.snapshots?.warm();
    if (this.dashboard) {
      const lag = sources.find((s) => s.consumerLag)?.consumerLag;
      this.hub = new DashboardHub({ name: this.o.topology.name, models: this.o.models, ws: this.dashboard, health: this.health, alerts: this.engine, metrics: this.o.metrics, lag });
      this.hub.start();
    }
    this.tickTimer = setInterval(() => {
      this.health.tick();
      this.publishAlerts(this.engine.tick());
    }, TICK_MS);
    this.tickTimer.unref();
  }

  // ---- hooks on the data path

  readonly chunk = (stream: string, session: string): void => this.health.chunk(stream, session);
  readonly sessionEnded = (stream: string, session: string, how: string): void => this.health.ended(stream, session, how);
  readonly dropped = (stream: string, reason: DropReason, count: number): void => this.health.dropped(stream, reason, count);

  /** A stream's route, its frames seen on their way (one closure per session, not per frame). */
  route(r: Route): Route {
    const { model, width, height } = r;
    const push = r.push;
    return { ...r, push: (f: Frame) => (this.frame(f, model, width, height), push(f)) };
  }

  /** A decoded frame on its way to its model (before batching: its pixels are still here). */
  frame(f: Frame, model: string, width: number, height: number): void {
    this.health.decoded(f.stream, model);
    this.thumbs?.offer(f, width, height);
  }

  /** Label records once delivered (in frame order per stream). */
  published(records: LabelRecord[]): void {
    this.health.labelled(records);
    if (this.engine.enabled) this.publishAlerts(this.engine.labels(records));
  }

  changes(events: ChangeEvent[]): void {
    for (const e of events) this.health.changed(e.stream, e.session, e.to);
  }

  /** GET / and the dashboard's files, on the processor's HTTP listener. */
  addRoutes(http: HttpEndpoint): void {
    const files = this.files;
    if (!files) return;
    // The page (/) needs the token like the WebSocket; its script and style carry no data.
    for (const path of files.paths()) http.route(path, (req: IncomingMessage, res: ServerResponse) => files.handle(path, req, res), { public: path.startsWith('/dashboard/') });
  }

  // ---- stream events: batched for the sinks, evaluated by the stale rules at once

  private streamEvent(e: StreamEvent): void {
    this.o.metrics.streamEvents.inc({ state: e.state });
    const alerts: AlertRecord[] = this.engine.streamEvent(e);
    if (e.state === 'ended') this.thumbs?.forget(e.stream);
    this.pendingEvents.push(e);
    this.flushTimer ??= setTimeout(() => this.flushEvents(), 20);
    this.publishAlerts(alerts);
  }

  /** Snapshots are queued first, so a sink that waits for one (the webhook) finds it expected. */
  private publishAlerts(records: AlertRecord[]): void {
    if (records.length === 0) return;
    this.o.snapshots?.offer(records);
    this.publisher.publish(records);
  }

  private flushEvents(): void {
    this.flushTimer = undefined;
    const events: PipelineEvent[] = this.pendingEvents;
    this.pendingEvents = [];
    if (events.length === 0) return;
    // Best effort, like change events: they do not gate offsets.
    this.o.output.bestEffort(new RecordBatch(events), 'stream events');
  }

  /** Stops the timers, sends what is pending. Before the sinks close. */
  async close(): Promise<void> {
    clearInterval(this.tickTimer);
    this.o.snapshots?.close();
    this.hub?.stop();
    clearTimeout(this.flushTimer);
    this.flushEvents();
    await this.o.output.settled();
  }
}
