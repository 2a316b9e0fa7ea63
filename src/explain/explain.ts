/**
 * `framewire explain`'s logic, apart from Kafka: from the label records and `dropped` events of a
 * stream, what became of one frame, and the lines that say where its label came from (the
 * lineage fields of docs/contracts.md).
 */
import type { DroppedEvent, LabelRecord } from '../core/frame.js';

export type Explanation =
  | { kind: 'label'; record: LabelRecord; copies: number; sessions: string[] }
  | { kind: 'dropped'; record: DroppedEvent; sessions: string[] }
  | { kind: 'none'; sessions: string[] };

/**
 * The frame's record: in `session`, or else in the stream's latest session that has the frame.
 * Records read in topic order (a stream stays in one partition), so the last one is the latest;
 * a frame published again after a restart counts its copies.
 */
export function explainFrame(labels: readonly LabelRecord[], dropped: readonly DroppedEvent[], stream: string, frame: number, session?: string): Explanation {
  const sessions: string[] = [];
  const seen = (s: string): void => {
    if (!sessions.includes(s)) sessions.push(s);
  };
  let label: LabelRecord | undefined;
  let copies = 0;
  for (const r of labels) {
    if (r.stream !== stream || r.frame !== frame) continue;
    seen(r.session);
    if (session !== undefined && r.session !== session) continue;
    if (label && label.session !== r.session) copies = 0;
    label = r;
    copies++;
  }
  let drop: DroppedEvent | undefined;
  for (const e of dropped) {
    if (e.stream !== stream || frame < e.fromFrame || frame > e.toFrame) continue;
    seen(e.session);
    if (session !== undefined && e.session !== session) continue;
    drop = e;
  }
  // Without --session, the latest session named by either wins.
  const latest = session ?? sessions[sessions.length - 1];
  if (label && label.session === latest) return { kind: 'label', record: label, copies, sessions };
  if (drop && drop.session === latest) return { kind: 'dropped', record: drop, sessions };
  return { kind: 'none', sessions };
}

const ms = (v: number | undefined): string => (v === undefined ? '?' : `${v} ms`);

/** What `explain` prints for a found frame, one fact a line. */
export function formatExplanation(x: Exclude<Explanation, { kind: 'none' }>, frame: number): string[] {
  const lines: string[] = [];
  if (x.kind === 'label') {
    const r = x.record;
    lines.push(`${r.stream} session ${r.session} frame ${r.frame}: labelled${x.copies > 1 ? ` (published ${x.copies} times: after a restart)` : ''}`);
    lines.push(`  captured   ${new Date(r.captureTs).toISOString()} (ptsMs ${r.ptsMs}); capture → publish ${r.publishedTs - r.captureTs} ms`);
    lines.push(`  chunk      ${r.offset === undefined ? 'unknown (a record from before 0.4)' : `partition ${r.partition} offset ${r.offset}`}`);
    lines.push(`  model      ${r.model} version ${r.modelVersion}`);
    lines.push(`  batch      ${r.batchSize === undefined ? '?' : `${r.batchSize} item(s)`}; queued ${ms(r.queueMs)} from decoded to batched; Triton request ${ms(r.inferMs)}`);
    if (r.clip) lines.push(`  clip       frames ${r.clip.fromFrame}..${r.clip.toFrame}`);
    lines.push(`  labels     ${r.labels.map((l) => `${l.label} ${l.score.toFixed(3)}`).join(', ')}`);
    lines.push(`  topology   ${r.topologyHash ?? '?'}`);
  } else {
    const e = x.record;
    lines.push(`${e.stream} session ${e.session} frame ${frame}: not labelled: dropped (${e.reason}) with frames ${e.fromFrame}..${e.toFrame}`);
    lines.push(`  chunks     ${e.offset === undefined ? 'unknown (a record from before 0.4)' : `partition ${e.partition} offsets ${e.offset}..${e.toOffset}`}`);
    lines.push(`  topology   ${e.topologyHash ?? '?'}`);
  }
  return lines;
}
