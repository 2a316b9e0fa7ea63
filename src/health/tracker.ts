/**
 * Per-stream health: when its last chunk came and its last frame was decoded, frames labelled and
 * dropped (by reason) and capture→publish latency over the last 10 s, the current and smoothed
 * labels. Emits `stream` events (docs/contracts.md): `started` at a session's first chunk,
 * `stalled` when no chunk came for `staleMs` while the session is open, `resumed` when chunks
 * come again, `ended` at `fw-eos` or the idle timeout. Ended streams are forgotten after
 * `retentionMs`; the hooks called per chunk and per frame only update numbers in place.
 */
import type { DropReason, LabelRecord } from '../core/frame.js';
import type { StreamEvent } from '../core/events.js';
import type { HealthConfig } from './config.js';

export const DROP_REASONS: readonly DropReason[] = ['deadline', 'overload', 'sampled', 'unchanged', 'decoder-reset', 'infer-failed', 'shutdown'];
const REASON_INDEX = new Map<string, number>(DROP_REASONS.map((r, i) => [r, i]));
const WINDOW_S = 10;
/** One bucket per second: the 10 complete seconds before the current one, and the current one. */
const BUCKETS = WINDOW_S + 1;
/** Latency samples kept per stream: 10 s at up to ~50 fps. */
const SAMPLES = 512;
const MAX_STREAMS = 10_000;

export type HealthState = 'live' | 'stalled' | 'ended';

/** The per-stream figures the dashboard shows (the `stats` WebSocket message, docs/contracts.md). */
export interface StreamStats {
  type: 'stats';
  stream: string;
  session: string;
  model: string | undefined;
  health: HealthState;
  /** ms since the last chunk, the last decoded frame (undefined: none yet). */
  sinceChunkMs: number;
  sinceFrameMs: number | undefined;
  decoder: 'running' | 'stopped' | 'none';
  labelledPerSec: number;
  droppedPerSec: Partial<Record<DropReason, number>>;
  /** capture→publish over the last 10 s, ms (undefined: nothing labelled). */
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  top: { label: string; score: number; frame: number; captureTs: number } | undefined;
  smoothed: string | undefined;
  ts: number;
}

class StreamHealth {
  session = '';
  model: string | undefined;
  state: HealthState = 'live';
  startedAt = 0;
  lastChunkAt = 0;
  /** lastChunkAt on the input clock. */
  lastChunkInput = 0;
  lastFrameAt = 0;
  endedAt = 0;
  readonly bucketSec = new Float64Array(BUCKETS).fill(-1);
  readonly labelled = new Uint32Array(BUCKETS);
  readonly dropped = new Uint32Array(BUCKETS * DROP_REASONS.length);
  readonly latency = new Float32Array(SAMPLES);
  readonly latencyAt = new Float64Array(SAMPLES);
  latencyNext = 0;
  topLabel: string | undefined;
  topScore = 0;
  topFrame = -1;
  topCapture = 0;
  smoothed: string | undefined;

  constructor(readonly stream: string) {}

  /** The bucket of second `sec`, cleared when it last held an older second. */
  bucket(sec: number): number {
    const i = sec % BUCKETS;
    if (this.bucketSec[i] !== sec) {
      this.bucketSec[i] = sec;
      this.labelled[i] = 0;
      this.dropped.fill(0, i * DROP_REASONS.length, (i + 1) * DROP_REASONS.length);
    }
    return i;
  }

  newSession(session: string, now: number): void {
    this.session = session;
    this.state = 'live';
    this.startedAt = now;
    this.endedAt = 0;
    this.topLabel = undefined;
    this.topFrame = -1;
    this.smoothed = undefined;
  }
}

export interface HealthTrackerOptions {
  config: HealthConfig;
  /** Called with each `stream` event as it happens. */
  emit(event: StreamEvent): void;
  /** Whether the stream's decoder is running (undefined: no open session in the decode stage). */
  decoding?(stream: string): boolean | undefined;
  now?: () => number;
  /**
   * The clock stalls are measured on: wall time less the time the input itself was held up
   * (replay backpressure), when chunks could not come however well the camera sent them.
   */
  inputClock?: () => number;
}

export class HealthTracker {
  private readonly streams = new Map<string, StreamHealth>();
  private readonly now: () => number;
  private readonly input: () => number;
  private readonly scratch = new Float32Array(SAMPLES);

  constructor(private readonly o: HealthTrackerOptions) {
    this.now = o.now ?? Date.now;
    this.input = o.inputClock ?? this.now;
  }

  get size(): number {
    return this.streams.size;
  }

  /** A chunk of the stream's session arrived (per chunk: a map lookup and a few stores). */
  chunk(stream: string, session: string): void {
    const now = this.now();
    let s = this.streams.get(stream);
    if (!s) {
      if (this.streams.size >= MAX_STREAMS) this.forgetOldest();
      s = new StreamHealth(stream);
      this.streams.set(stream, s);
    }
    if (s.session !== session || s.state === 'ended') {
      if (s.session !== '' && s.session !== session && s.state !== 'ended') this.end(s, 'replaced', now);
      s.newSession(session, now);
      s.lastChunkAt = now;
      s.lastChunkInput = this.input();
      this.o.emit({ type: 'stream', stream, session, state: 'started', ts: now });
      return;
    }
    s.lastChunkAt = now;
    s.lastChunkInput = this.input();
    if (s.state === 'stalled') {
      s.state = 'live';
      this.o.emit({ type: 'stream', stream, session, state: 'resumed', ts: now });
    }
  }

  /** The decode stage ended the session (`eos`, `idle`, `replaced`). */
  ended(stream: string, session: string, how: string): void {
    const s = this.streams.get(stream);
    if (s && s.session === session && s.state !== 'ended') this.end(s, how, this.now());
  }

  /** A frame was decoded and handed on to its model (per frame: one store). */
  decoded(stream: string, model: string): void {
    const s = this.streams.get(stream);
    if (!s) return;
    s.lastFrameAt = this.now();
    s.model = model;
  }

  /** Delivered label records. */
  labelled(records: readonly LabelRecord[]): void {
    const now = this.now();
    const sec = Math.floor(now / 1000);
    let s: StreamHealth | undefined;
    for (const r of records) {
      if (!s || s.stream !== r.stream) s = this.streams.get(r.stream);
      if (!s || s.session !== r.session) continue;
      s.labelled[s.bucket(sec)]!++;
      const k = s.latencyNext;
      s.latency[k] = r.publishedTs - r.captureTs;
      s.latencyAt[k] = now;
      s.latencyNext = (k + 1) % SAMPLES;
      const top = r.labels[0];
      if (top && r.frame > s.topFrame) {
        s.topLabel = top.label;
        s.topScore = top.score;
        s.topFrame = r.frame;
        s.topCapture = r.captureTs;
        s.smoothed ??= top.label;
        s.model = r.model;
      }
    }
  }

  /** Frames reported dropped. */
  dropped(stream: string, reason: DropReason, count: number): void {
    const s = this.streams.get(stream);
    if (!s) return;
    const i = s.bucket(Math.floor(this.now() / 1000));
    s.dropped[i * DROP_REASONS.length + (REASON_INDEX.get(reason) ?? 0)]! += count;
  }

  /** The smoothed label of a stream changed (a `change` event). */
  changed(stream: string, session: string, to: string): void {
    const s = this.streams.get(stream);
    if (s && s.session === session) s.smoothed = to;
  }

  /** Stall detection and retention (a few times a second). */
  tick(): void {
    const now = this.now();
    const input = this.input();
    for (const s of this.streams.values()) {
      if (s.state === 'live' && input - s.lastChunkInput >= this.o.config.staleMs) {
        s.state = 'stalled';
        this.o.emit({ type: 'stream', stream: s.stream, session: s.session, state: 'stalled', ts: now });
      } else if (s.state === 'ended' && now - s.endedAt >= this.o.config.retentionMs) {
        this.streams.delete(s.stream);
      }
    }
  }

  /** The figures of every known stream (the dashboard's `stats` messages, about once a second). */
  stats(): StreamStats[] {
    const now = this.now();
    const out: StreamStats[] = [];
    for (const s of this.streams.values()) out.push(this.statsOf(s, now));
    return out;
  }

  private statsOf(s: StreamHealth, now: number): StreamStats {
    const sec = Math.floor(now / 1000);
    // Rates over the last 10 complete seconds, or over the session's age when it is younger.
    const span = Math.max(1, Math.min(WINDOW_S, (sec * 1000 - s.startedAt) / 1000));
    let labelled = 0;
    const dropped: Partial<Record<DropReason, number>> = {};
    for (let i = 0; i < BUCKETS; i++) {
      const b = s.bucketSec[i]!;
      if (b < sec - WINDOW_S || b >= sec) continue;
      labelled += s.labelled[i]!;
      for (let r = 0; r < DROP_REASONS.length; r++) {
        const n = s.dropped[i * DROP_REASONS.length + r]!;
        if (n) dropped[DROP_REASONS[r]!] = (dropped[DROP_REASONS[r]!] ?? 0) + n;
      }
    }
    for (const k of Object.keys(dropped) as DropReason[]) dropped[k] = round1(dropped[k]! / span);
    let n = 0;
    for (let k = 0; k < SAMPLES; k++) if (s.latencyAt[k]! > now - WINDOW_S * 1000) this.scratch[n++] = s.latency[k]!;
    const lat = this.scratch.subarray(0, n).sort();
    const decoding = this.o.decoding?.(s.stream);
    return {
      type: 'stats',
      stream: s.stream,
      session: s.session,
      model: s.model,
      health: s.state,
      sinceChunkMs: now - s.lastChunkAt,
      sinceFrameMs: s.lastFrameAt ? now - s.lastFrameAt : undefined,
      decoder: decoding === undefined ? 'none' : decoding ? 'running' : 'stopped',
      labelledPerSec: round1(labelled / span),
      droppedPerSec: dropped,
      p50Ms: n ? Math.round(lat[Math.floor(0.5 * (n - 1))]!) : undefined,
      p99Ms: n ? Math.round(lat[Math.floor(0.99 * (n - 1))]!) : undefined,
      top: s.topLabel === undefined ? undefined : { label: s.topLabel, score: round3(s.topScore), frame: s.topFrame, captureTs: s.topCapture },
      smoothed: s.smoothed,
      ts: now,
    };
  }

  private end(s: StreamHealth, how: string, now: number): void {
    s.state = 'ended';
    s.endedAt = now;
    this.o.emit({ type: 'stream', stream: s.stream, session: s.session, state: 'ended', ts: now, how });
  }

  private forgetOldest(): void {
    for (const s of this.streams.values()) {
      if (s.state === 'ended') {
        this.streams.delete(s.stream);
        return;
      }
    }
    this.streams.delete(this.streams.keys().next().value!);
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;
const round3 = (x: number): number => Math.round(x * 1000) / 1000;
