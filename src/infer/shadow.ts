/**
 * Shadow models (issue #19): a lane may name a second model that sees a sample of the primary's
 * batches, with no effect on the primary's labels, deadlines or commits. A sampled batch's input
 * tensor, already packed for the primary, is sent to the shadow once the primary has answered;
 * the shadow's top labels are compared with the primary's frame by frame and kept in a rolling
 * report (ShadowReport): top-1 agreement, a confusion matrix over the top labels, the mean
 * |Δscore| of the primary's top label, and both models' latency.
 *
 * Shadow requests are the first work dropped under load: in live mode a sampled batch is skipped
 * (counted, `framewire_shadow_frames_total{outcome="skipped"}`) while a shadow request is still
 * in flight or the primary has requests waiting; in replay mode nothing is late, so it waits for
 * the shadow's slot instead and every sampled batch is compared.
 */
import { performance } from 'node:perf_hooks';
import type { Label } from '../core/frame.js';
import type { ShadowSummary } from '../core/events.js';

export type { ShadowSummary } from '../core/events.js';
import { FramewireError } from '../core/errors.js';
import { log } from '../core/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { inputShape, parseClassification, type ModelSpec } from './triton/model.js';
import type { TritonPool } from './triton/pool.js';

/** Labels the confusion matrix keeps apart; the others count as `other`. */
const CONFUSION_LABELS = 8;

export interface ShadowSample {
  stream: string;
  primary: Label[];
  shadow: Label[];
  primaryMs: number;
  shadowMs: number;
}

/** The rolling comparison of one lane's primary and shadow: the latest `window` frames. */
export class ShadowReport {
  private readonly ring: (ShadowSample & { agree: boolean; delta: number })[] = [];
  private next = 0;
  /** Frames in the window whose top-1 labels agree (kept as frames come and go: `agreement` is O(1)). */
  private agreeing = 0;
  skipped = 0;
  failed = 0;

  constructor(private readonly window = 5000) {}

  add(s: ShadowSample): void {
    const p = s.primary[0];
    const top = p?.label ?? '';
    const agree = top === (s.shadow[0]?.label ?? '');
    const shadowScore = s.shadow.find((l) => l.label === top)?.score ?? 0;
    const entry = { ...s, agree, delta: Math.abs((p?.score ?? 0) - shadowScore) };
    if (this.ring.length < this.window) this.ring.push(entry);
    else {
      if (this.ring[this.next]!.agree) this.agreeing--;
      this.ring[this.next] = entry;
    }
    if (agree) this.agreeing++;
    this.next = (this.next + 1) % this.window;
  }

  get frames(): number {
    return this.ring.length;
  }

  /** Top-1 agreement over the window, 0-1 (0 before the first frame). */
  get agreement(): number {
    return this.ring.length ? this.agreeing / this.ring.length : 0;
  }

  summary(names: { model: string; modelVersion: string; shadow: string; shadowVersion: string }): ShadowSummary {
    const n = this.ring.length;
    let agree = 0;
    let delta = 0;
    let pMs = 0;
    let sMs = 0;
    const tops = new Map<string, number>();
    const streams = new Map<string, { frames: number; agree: number }>();
    for (const e of this.ring) {
      if (e.agree) agree++;
      delta += e.delta;
      pMs += e.primaryMs;
      sMs += e.shadowMs;
      const top = e.primary[0]?.label ?? '';
      tops.set(top, (tops.get(top) ?? 0) + 1);
      let st = streams.get(e.stream);
      if (!st) streams.set(e.stream, (st = { frames: 0, agree: 0 }));
      st.frames++;
      if (e.agree) st.agree++;
    }
    const kept = new Set([...tops].sort((a, b) => b[1] - a[1]).slice(0, CONFUSION_LABELS).map(([l]) => l));
    const name = (l: string | undefined) => (l !== undefined && kept.has(l) ? l : 'other');
    const confusion: Record<string, Record<string, number>> = {};
    for (const e of this.ring) {
      const row = (confusion[name(e.primary[0]?.label)] ??= {});
      const col = name(e.shadow[0]?.label);
      row[col] = (row[col] ?? 0) + 1;
    }
    const per: Record<string, { frames: number; agreement: number }> = {};
    for (const [s, v] of streams) per[s] = { frames: v.frames, agreement: v.agree / v.frames };
    return {
      type: 'shadow',
      stream: '*',
      ...names,
      frames: n,
      agreement: n ? agree / n : 0,
      meanAbsDelta: n ? delta / n : 0,
      confusion,
      latencyMs: { primary: n ? pMs / n : 0, shadow: n ? sMs / n : 0 },
      streams: per,
      skipped: this.skipped,
      failed: this.failed,
      ts: Date.now(),
    };
  }
}

export interface ShadowOptions {
  primary: ModelSpec;
  shadow: ModelSpec;
  /** Share of the primary's frames also sent to the shadow, in whole batches. */
  sample: number;
  /** Live mode: skip a sampled batch under load instead of waiting for the shadow. */
  live: boolean;
  pool: TritonPool;
  metrics: Metrics;
  timeoutMs: number;
  window?: number;
  /**
   * Automatic promotion (`shadow.promoteWhen`): once the report holds at least `frames` frames
   * with agreement at or above `agreement`, `promote` is called, once (a failed promotion may be
   * tried again with `retryPromotion`).
   */
  promoteWhen?: { agreement: number; frames: number };
  promote?: () => void;
}

/** One lane's shadow: decides which batches go, sends them, and keeps the report. */
export class ShadowRunner {
  readonly report: ShadowReport;
  private credit = 0;
  private inFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];
  private shadowVersion = '';
  private readonly k: number;

  constructor(private readonly o: ShadowOptions) {
    this.report = new ShadowReport(o.window);
    this.k = Math.min(3, o.shadow.classes);
  }

  get spec(): ModelSpec {
    return this.o.shadow;
  }

  /** The primary this shadow is compared with (after a switch to another model it stops). */
  get primaryName(): string {
    return this.o.primary.name;
  }

  /** Stops reporting (replaced by a reload). */
  stopped = false;

  /** Whether this batch of `n` frames is sampled (whole batches, `sample` of the frames on average). */
  sampled(n: number): boolean {
    this.credit += n * this.o.sample;
    if (this.credit < n) return false;
    this.credit -= n;
    return true;
  }

  /**
   * After the primary answered a sampled batch: sends the same input (`data`: exactly the `n`
   * items packed for the primary) to the shadow and compares. `busy`: the primary has requests waiting. The
   * returned promise settles when `data` may be reused; it never rejects.
   */
  async compare(data: Buffer, n: number, streams: readonly string[], primary: Label[][], primaryMs: number, busy: boolean): Promise<void> {
    const m = this.o.metrics.shadowFrames;
    if (this.o.live) {
      if (this.inFlight > 0 || busy) {
        this.report.skipped += n;
        m.inc({ model: this.o.primary.name, outcome: 'skipped' }, n);
        return;
      }
    } else {
      while (this.inFlight > 0) await new Promise<void>((r) => this.slotWaiters.push(r));
    }
    this.inFlight++;
    const spec = this.o.shadow;
    try {
      const t0 = performance.now();
      const res = await this.o.pool.inferAside(
        {
          model: spec.name,
          version: spec.requestVersion,
          id: `shadow-${t0.toFixed(3)}`,
          inputName: spec.inputName,
          datatype: spec.inputDatatype,
          shape: inputShape(spec, n),
          data,
          outputs: [{ name: spec.outputName, parameters: { classification: { int64_param: this.k } } }],
        },
        this.o.timeoutMs,
      );
      const shadowMs = performance.now() - t0;
      const raw = res.raw_output_contents[0];
      if (!raw) throw new FramewireError('INFER_FAILED', 'infer', `shadow model ${spec.name} returned no output`);
      this.shadowVersion = res.model_version || spec.version;
      const labels = parseClassification(raw, n, this.k);
      for (let i = 0; i < n; i++) this.report.add({ stream: streams[i]!, primary: primary[i]!, shadow: labels[i]!, primaryMs, shadowMs });
      m.inc({ model: this.o.primary.name, outcome: 'compared' }, n);
      this.o.metrics.shadowInferSeconds.observe({ model: spec.name }, shadowMs / 1000);
      if (this.promotable()) {
        this.promoting = true;
        this.o.promote?.();
      }
    } catch (err) {
      this.report.failed += n;
      m.inc({ model: this.o.primary.name, outcome: 'failed' }, n);
      log.once('warn', `shadow-failed:${spec.name}`, 'shadow inference failed; the primary is not affected', { model: this.o.primary.name, shadow: spec.name, err });
    } finally {
      this.inFlight--;
      this.slotWaiters.shift()?.();
    }
  }

  /** The condition for promoting this shadow by itself; undefined: manual only. */
  get promoteWhen(): { agreement: number; frames: number } | undefined {
    return this.o.promoteWhen;
  }

  /** A promotion was asked for and not given up on (see `retryPromotion`). */
  private promoting = false;

  /** Whether the report meets `promoteWhen` and no promotion is under way. */
  promotable(): boolean {
    const w = this.o.promoteWhen;
    return !!w && !this.promoting && !this.stopped && this.report.frames >= w.frames && this.report.agreement >= w.agreement;
  }

  /** A promotion that could not be applied (the model not ready, say): the next comparison that meets the condition asks again. */
  retryPromotion(): void {
    this.promoting = false;
  }

  summary(primaryVersion: string): ShadowSummary {
    return this.report.summary({ model: this.o.primary.name, modelVersion: primaryVersion, shadow: this.o.shadow.name, shadowVersion: this.shadowVersion || this.o.shadow.version });
  }
}
