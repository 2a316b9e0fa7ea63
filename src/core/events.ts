/**
 * The records framewire publishes besides labels (docs/contracts.md "Events" and "Alerts"). The
 * stages that produce them (decode, postprocess, health, alerts) and the sinks that carry them meet
 * here, so neither imports the other.
 */
import type { DroppedEvent } from './frame.js';

/** A `change` event: the stream's smoothed label changed (postprocess/smoothing.ts). */
export interface ChangeEvent {
  type: 'change';
  stream: string;
  session: string;
  model: string;
  from: string;
  to: string;
  atFrame: number;
  captureTs: number;
  /** Lineage (new in 0.4), of `atFrame`'s label record: its chunk, model version, topology hash. */
  modelVersion?: string;
  partition?: number;
  offset?: number;
  topologyHash?: string;
}

/**
 * A `stream` event: health (`started`, `stalled`, `resumed`, `ended`; health/tracker.ts) or the
 * decoder quarantine (`quarantined` until `untilTs`, then `released`; decode/sessions.ts).
 */
export interface StreamEvent {
  type: 'stream';
  stream: string;
  session: string;
  state: 'started' | 'stalled' | 'resumed' | 'ended' | 'quarantined' | 'released';
  ts: number;
  /** `ended` only: `eos`, `idle` or `replaced` (a new session of the stream began). */
  how?: string;
  /** `quarantined` only: until when (Unix ms) the stream's chunks are dead-lettered. */
  untilTs?: number;
}

/** Everything published on the events topic and the WebSocket; `dropped` is the one the accounting relies on. */
/** A lane's shadow-model agreement report (src/infer/shadow.ts; docs/contracts.md, "Events"). */
export interface ShadowSummary {
  type: 'shadow';
  /** The events topic's records carry a stream; a report is of the whole lane. */
  stream: '*';
  model: string;
  modelVersion: string;
  shadow: string;
  shadowVersion: string;
  /** Frames compared in the report's window (the latest `window`). */
  frames: number;
  /** Share of them whose top-1 label is the same, 0–1. */
  agreement: number;
  /** Mean |primary score − shadow score| of the primary's top label. */
  meanAbsDelta: number;
  /** confusion[primary top-1][shadow top-1] = frames. */
  confusion: Record<string, Record<string, number>>;
  /** Mean request latency per frame's batch, ms. */
  latencyMs: { primary: number; shadow: number };
  /** Per stream in the window: frames compared and agreement. */
  streams: Record<string, { frames: number; agreement: number }>;
  /** Frames sampled but not compared: skipped under load, or the shadow failed (since start). */
  skipped: number;
  failed: number;
  ts: number;
}

/**
 * A lane promoted its shadow by itself (`models[].shadow.promoteWhen`): from the next batch on,
 * `model` labels the lane's frames and `from` is its shadow. `agreement` and `frames` are the
 * report that met the condition.
 */
export interface PromotionEvent {
  type: 'promotion';
  stream: '*';
  model: string;
  modelVersion: string;
  from: string;
  fromVersion: string;
  agreement: number;
  frames: number;
  /** The condition it met. */
  promoteWhen: { agreement: number; frames: number };
  ts: number;
}

/**
 * A stream's classified rate changed under load (batch/degrade.ts; docs/contracts.md, "Events",
 * new in 0.4): from now on at most `rate` frames per second of it are classified, the rest
 * reported `sampled` with `"degraded": true`; `restored`: back to every frame its rule keeps.
 */
export interface DegradedEvent {
  type: 'degraded';
  stream: string;
  session: string;
  priority: 'critical' | 'normal' | 'background';
  /** Frames per second classified now (`fullRate` when restored). */
  rate: number;
  /** The stream's own frame rate, as measured. */
  fullRate: number;
  /** rate / fullRate, 0–1. */
  share: number;
  restored: boolean;
  /** demand: the estimated load was above degrade.highWater; backlog: frames piled up waiting for inference; drops: frames missed their deadlines; load-fell: restored. */
  reason: 'demand' | 'backlog' | 'drops' | 'load-fell';
  /** The estimated load (share of the machine) that decided it. */
  load: number;
  ts: number;
}

export type PipelineEvent = DroppedEvent | ChangeEvent | StreamEvent | ShadowSummary | PromotionEvent | DegradedEvent;

/** The `alert` record (docs/contracts.md "Alerts"), on the alerts topic, the WebSocket and webhooks. */
export interface AlertRecord {
  type: 'alert';
  /** `<rule>:<stream>:<capture time of the episode's first frame>` (stale rules: the time it was found stalled). */
  id: string;
  rule: string;
  stream: string;
  session: string;
  state: 'firing' | 'resolved';
  severity: string;
  /** Label rules only. */
  label?: string;
  /** Label rules: the score at `atFrame` (firing) or the episode's highest (resolved). */
  score?: number;
  /** First frame of the episode (stale rules: the last frame labelled before the stall, -1 if none). */
  fromFrame: number;
  /** Firing: the frame at which it fired. Resolved: the episode's last matching frame. */
  atFrame: number;
  /** Label rules: capture time of `atFrame`. Stale rules: when the state changed (wall clock). */
  captureTs: number;
  /** Label rules, resolved: the frame (and its capture time) that confirmed `clearMs` without a match. */
  clearedFrame?: number;
  clearedTs?: number;
  /** Why an episode resolved: `cleared` (clearMs without a match), `resumed` (chunks again), `ended` (session ended). */
  reason?: 'cleared' | 'resumed' | 'ended';
  publishedTs: number;
  /** Lineage (new in 0.4), from `atFrame`'s label record: its chunk (partition, offset), model, version, topology hash; `fromOffset`: the chunk `fromFrame` began in. */
  partition?: number;
  offset?: number;
  fromOffset?: number;
  /** Where a clip of the episode starts (`framewire clip`): the keyframe decoding `fromFrame` starts from, and the chunk it began in. */
  clipFrame?: number;
  clipOffset?: number;
  /** The keyframe decoding `atFrame` starts from, and the chunk it began in (as on `atFrame`'s label record): where its snapshot is decoded from. */
  keyFrame?: number;
  keyOffset?: number;
  model?: string;
  modelVersion?: string;
  topologyHash?: string;
}

/**
 * A JPEG of a firing alert's `atFrame` (docs/contracts.md "Snapshots"), decoded again from the
 * chunk topic; on the snapshots topic keyed by alert id, and in a webhook's firing POST.
 */
export interface SnapshotRecord {
  type: 'snapshot';
  /** The alert's id. */
  id: string;
  rule: string;
  stream: string;
  session: string;
  /** The alert's `atFrame`, and its capture time. */
  frame: number;
  captureTs: number;
  width: number;
  height: number;
  contentType: 'image/jpeg';
  /** Base64. */
  jpeg: string;
  publishedTs: number;
}
