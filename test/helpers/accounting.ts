/** Checking label records and dropped events against what was sent: every frame accounted for, exactly once. */
import assert from 'node:assert/strict';
import type { ColourVideo } from './colours.js';

/** The label record (docs/contracts.md), as the processor writes it. */
export type { LabelRecord } from '../../src/core/frame.js';
import type { LabelRecord } from '../../src/core/frame.js';

export interface StreamCheck {
  /** Label records of the session, in arrival order. */
  received: number;
  /** Frame indices 0..N-1 with no label. */
  missing: number[];
  /** Frame indices outside 0..N-1. */
  unexpected: number[];
  /** Frames whose top label is wrong, away from a colour change. */
  wrong: { frame: number; got: string; want: string }[];
  /** Frames near a colour change whose top label is not the expected one (tolerated). */
  toleratedNearChange: { frame: number; got: string; want: string }[];
  /** Places where a record's frame index is not greater than the one before it. */
  orderViolations: { at: number; prev: number; frame: number }[];
  duplicates: number;
}

/**
 * Compares one session's label records (arrival order) with the video's expected colours.
 * Frames within `tolerance` frames either side of a colour change (the `tolerance` frames before
 * the change and the `tolerance` frames from it) may carry the neighbouring colour.
 */
export function checkLabels(records: LabelRecord[], video: ColourVideo, tolerance = 2): StreamCheck {
  const near = new Set<number>();
  for (const b of video.changes) for (let i = b - tolerance; i < b + tolerance; i++) near.add(i);
  const seen = new Set<number>();
  const res: StreamCheck = { received: records.length, missing: [], unexpected: [], wrong: [], toleratedNearChange: [], orderViolations: [], duplicates: 0 };
  let prev = -1;
  for (const [at, r] of records.entries()) {
    if (r.frame <= prev) res.orderViolations.push({ at, prev, frame: r.frame });
    prev = Math.max(prev, r.frame);
    if (seen.has(r.frame)) res.duplicates++;
    seen.add(r.frame);
    if (!Number.isInteger(r.frame) || r.frame < 0 || r.frame >= video.frames) {
      res.unexpected.push(r.frame);
      continue;
    }
    const got = r.labels?.[0]?.label ?? '<none>';
    const want = video.expected[r.frame]!;
    if (got === want) continue;
    (near.has(r.frame) ? res.toleratedNearChange : res.wrong).push({ frame: r.frame, got, want });
  }
  for (let i = 0; i < video.frames; i++) if (!seen.has(i)) res.missing.push(i);
  return res;
}

/** Label records of one stream (and session, when given), in arrival order. */
export function labelsOf(records: LabelRecord[], stream: string, session?: string): LabelRecord[] {
  return records.filter((r) => r.stream === stream && (session === undefined || r.session === session));
}

/** True when every frame 0..frames-1 of the stream session has at least one label record. */
export function hasAllFrames(records: LabelRecord[], stream: string, session: string, frames: number): boolean {
  const seen = new Set<number>();
  for (const r of records) if (r.stream === stream && r.session === session && r.frame >= 0 && r.frame < frames) seen.add(r.frame);
  return seen.size === frames;
}

/** A `dropped` event as published on the events topic (docs/contracts.md). */
export interface DroppedRecord {
  type: string;
  stream: string;
  session: string;
  fromFrame: number;
  toFrame: number;
  reason: string;
  count: number;
}

/**
 * Asserts that every frame 0..frames-1 of the stream session is covered exactly once: by a label
 * record or by a `dropped` event (other events and other streams are ignored), and that nothing
 * names a frame outside that range.
 */
export function assertCoveredOnce(labels: LabelRecord[], events: DroppedRecord[], stream: string, session: string, frames: number): void {
  const count = new Uint8Array(frames);
  const outside: number[] = [];
  const add = (i: number) => (Number.isInteger(i) && i >= 0 && i < frames ? count[i]!++ : outside.push(i));
  for (const r of labels) if (r.stream === stream && r.session === session) add(r.frame);
  for (const e of events) if (e.type === 'dropped' && e.stream === stream && e.session === session) for (let i = e.fromFrame; i <= e.toFrame; i++) add(i);
  const missing: number[] = [];
  const twice: number[] = [];
  count.forEach((c, i) => (c === 0 ? missing.push(i) : c > 1 ? twice.push(i) : undefined));
  assert.deepEqual(outside, [], `${stream}: labels or drops for frames that do not exist (the session has ${frames}): ${ranges(outside)}`);
  assert.deepEqual(missing, [], `${stream}: frames neither labelled nor dropped: ${ranges(missing)}`);
  assert.deepEqual(twice, [], `${stream}: frames counted twice: ${ranges(twice)}`);
}

/** A compact description of index lists: "0-4,7,9-12". */
export function ranges(indices: number[]): string {
  const s = [...new Set(indices)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j]! + 1) j++;
    out.push(i === j ? `${s[i]}` : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** The frames of one session that have a label record or are covered by a `dropped` event. */
export function framesCovered(labels: LabelRecord[], events: DroppedRecord[], stream: string, session: string): Set<number> {
  const seen = new Set<number>();
  for (const r of labels) if (r.stream === stream && r.session === session) seen.add(r.frame);
  for (const e of events) if (e.type === 'dropped' && e.stream === stream && e.session === session) for (let i = e.fromFrame; i <= e.toFrame; i++) seen.add(i);
  return seen;
}

/** Label records plus frames reported in `dropped` events: what a wait for a quiet topic counts. */
export function recordsAndDrops(labels: { records: readonly unknown[] }, events: { json<T>(): T[] }): number {
  return labels.records.length + events.json<DroppedRecord>().reduce((n, e) => n + (e.type === 'dropped' ? e.count : 0), 0);
}
