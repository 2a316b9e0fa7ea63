/**
 * The degrade controller (batch/degrade.ts) on the live pipeline: every `priority.degrade.intervalMs`
 * (live mode, even with degradation off: the load figures are metrics, read by `framewire plan`)
 * it reads each open session's frame rate and decoder cost, each lane's inference cost per frame
 * (its latency estimate at its recent batch size) and queue, and the `deadline` / `overload`
 * drops since the last tick; applies the rates it decides to the sessions' samplers, and
 * announces each change as a `degraded` event (best effort, like stream events). Live mode only.
 */
import { availableParallelism } from 'node:os';
import type { DropReason } from '../core/frame.js';
import type { DegradedEvent } from '../core/events.js';
import { RecordBatch } from '../core/sink.js';
import { log } from '../core/log.js';
import { DegradeController, PRIORITIES, laneCapacityFps, type DegradeConfig, type LaneCost, type Priority, type StreamLoad } from '../batch/degrade.js';
import type { DecodeStage } from '../decode/sessions.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { OutputStage } from '../sinks/output.js';
import type { Lane } from './lanes.js';

export interface DegradeLoopOptions {
  config: DegradeConfig;
  decode: DecodeStage;
  lanes: Lane[];
  output: OutputStage;
  metrics: Metrics;
  now?: () => number;
}

export class DegradeLoop {
  readonly controller: DegradeController;
  private lateDrops = 0;
  private criticalLateDrops = 0;
  /** Streams past their warm-up at the last tick, and their priority: only their late drops count. */
  private warm = new Map<string, Priority>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  private readonly cores: number;
  /** The process's CPU time at the last tick, and when that was. */
  private cpu = process.cpuUsage();
  private lastTick = Date.now();

  constructor(private readonly o: DegradeLoopOptions) {
    this.cores = o.config.cores ?? availableParallelism();
    this.controller = new DegradeController({ ...o.config, cores: this.cores });
    this.now = o.now ?? Date.now;
  }

  /** Told of every drop (DropPublisher.onDrop): late ones are the controller's feedback. */
  readonly dropped = (stream: string, reason: DropReason, count: number): void => {
    if (reason !== 'deadline' && reason !== 'overload') return;
    const p = this.warm.get(stream);
    if (p === undefined) return;
    this.lateDrops += count;
    if (p === 'critical') this.criticalLateDrops += count;
  };

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.o.config.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  tick(): void {
    const { decode, lanes, metrics } = this.o;
    let backlogMs = 0;
    const costs: LaneCost[] = [];
    for (const l of lanes) {
      if (l.estimator.samples === 0) continue;
      const est = l.estimator;
      costs.push({ model: l.spec.name, maxBatch: l.batcher.maxBatch, estimate: (n) => est.estimate(n) });
      // The queue goes out in full batches.
      const n = Math.min(l.batcher.maxBatch, Math.max(1, l.batcher.length));
      backlogMs += l.batcher.length > 0 ? (l.batcher.length / n) * est.estimate(n) : 0;
    }
    const streams: StreamLoad[] = [];
    const now = this.now();
    const warm = new Map<string, Priority>();
    for (const s of decode.sessions()) {
      // A session's first frames miss their deadlines while its decoder starts: not overload.
      if (now - s.openedAt >= this.o.config.warmupMs) warm.set(s.stream, s.route.priority);
      streams.push({ stream: s.stream, session: s.session, priority: s.route.priority, fps: s.fps, decodeMs: s.decodeMs, gopMs: s.gopMs, inferMs: Number.NaN, model: s.route.model });
    }
    this.warm = warm;
    const { lateDrops, criticalLateDrops } = this;
    this.lateDrops = this.criticalLateDrops = 0;
    const signals = { now, streams, lanes: costs, backlogMs, lateDrops, criticalLateDrops };
    const changes = this.o.config.enabled ? this.controller.tick(signals) : (this.controller.measure(signals), []);
    metrics.degradeLoad.set(this.controller.load);
    metrics.degradeDecodeLoad.set(this.controller.decodeLoad);
    metrics.degradeInferLoad.set(this.controller.inferLoad);
    metrics.degradeCores.set(this.cores);
    metrics.degradeFullLoad.set(this.controller.fullLoad(signals));
    for (const c of costs) metrics.laneCapacity.set({ model: c.model }, laneCapacityFps(c));
    let fps = 0;
    let cpu = 0;
    let measured = 0;
    for (const st of streams) {
      if (st.fps > 0) fps += st.fps;
      if (st.decodeMs > 0) (cpu += st.decodeMs), measured++;
    }
    metrics.streamsFps.set(fps);
    const used = process.cpuUsage(this.cpu);
    this.cpu = process.cpuUsage();
    const cpuMs = (used.user + used.system) / 1000;
    const seconds = (now - this.lastTick) / 1000;
    this.lastTick = now;
    if (fps > 0 && seconds > 0) metrics.processCpuPerFrame.set(cpuMs / seconds / fps);
    metrics.decodeCpuPerFrame.set(measured ? cpu / measured : 0);
    if (changes.length > 0) {
      const ts = Date.now();
      const events: DegradedEvent[] = [];
      for (const c of changes) {
        decode.setRateCap(c.stream, c.restored ? undefined : c.rate);
        metrics.degradeChanges.inc({ priority: c.priority, direction: c.restored || c.reason === 'load-fell' ? 'up' : 'down' });
        events.push({ type: 'degraded', stream: c.stream, session: c.session, priority: c.priority, rate: c.rate, fullRate: c.fullRate, share: c.share, restored: c.restored, reason: c.reason, load: c.load, ts });
      }
      log.info(changes[0]!.reason === 'load-fell' ? 'load fell: sampling rates restored' : 'load above capacity: lowering the sampling rate of the lowest-priority streams', {
        streams: changes.length,
        load: this.controller.load,
        decodeLoad: this.controller.decodeLoad,
        inferLoad: this.controller.inferLoad,
        lateDrops,
        levels: Object.fromEntries(PRIORITIES.map((p) => [p, this.controller.levelOf(p)])),
      });
      this.o.output.bestEffort(new RecordBatch(events), 'degraded events');
    }
    const degraded = { critical: 0, normal: 0, background: 0 };
    const shares = { critical: 0, normal: 0, background: 0 };
    const active = { critical: 0, normal: 0, background: 0 };
    for (const st of streams) {
      const rate = this.controller.rateOf(st.stream);
      active[st.priority]++;
      if (rate === undefined) shares[st.priority] += 1;
      else {
        degraded[st.priority]++;
        shares[st.priority] += st.fps > 0 ? Math.min(1, rate / st.fps) : 1;
      }
    }
    for (const p of PRIORITIES) {
      metrics.degradedStreams.set({ priority: p }, degraded[p]);
      metrics.degradeShare.set({ priority: p }, active[p] ? shares[p] / active[p] : 1);
    }
  }
}
