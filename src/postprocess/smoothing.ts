/**
 * Temporal smoothing of each stream's labels over a window, with hysteresis: the smoothed label
 * changes only after a new winner has held for `hysteresis` consecutive frames, and each change
 * becomes a `change` event (docs/contracts.md) on the events topic and the WebSocket.
 */
import { z } from 'zod/v4';
import type { ChangeEvent } from '../core/events.js';
import type { LabelRecord } from '../core/frame.js';

export const smoothingSchema = z
  .strictObject({
    method: z.enum(['off', 'majority', 'mean', 'ema']).default('majority').describe('majority: most frequent top label in the window; mean: highest mean score over the window; ema: highest exponential moving average of scores; off: no change events.'),
    window: z.int().min(1).default(5).describe('Frames in the smoothing window (majority, mean).'),
    alpha: z.number().gt(0).max(1).default(0.3).describe('Weight of the newest frame in `ema`.'),
    hysteresis: z.int().min(1).default(3).describe('Consecutive frames a new smoothed label must win before a `change` event.'),
  })
  .describe('Temporal smoothing of labels and `change` events.');

export type SmoothingConfig = z.infer<typeof smoothingSchema>;

interface StreamState {
  session: string;
  /** Ring of the last `window` label lists. */
  window: { label: string; score: number }[][];
  next: number;
  ema: Map<string, number>;
  current: string | undefined;
  candidate: string | undefined;
  streak: number;
}

export class Smoother {
  private readonly streams = new Map<string, StreamState>();
  /** Reused per frame: no allocation on the publish path. */
  private readonly tally = new Map<string, number>();
  constructor(private readonly c: SmoothingConfig) {}

  /** Feeds delivered records (in frame order per stream); returns the change events they cause. */
  observe(records: LabelRecord[]): ChangeEvent[] {
    if (this.c.method === 'off') return [];
    const events: ChangeEvent[] = [];
    for (const r of records) {
      const key = r.stream + '\u0000' + r.model;
      let s = this.streams.get(key);
      if (!s || s.session !== r.session) {
        if (!s && this.streams.size >= 10_000) this.streams.delete(this.streams.keys().next().value!);
        s = { session: r.session, window: [], next: 0, ema: new Map(), current: undefined, candidate: undefined, streak: 0 };
        this.streams.set(key, s);
      }
      const winner = this.winner(s, r.labels);
      if (winner === undefined) continue;
      if (s.current === undefined) {
        s.current = winner;
        continue;
      }
      if (winner === s.current) {
        s.candidate = undefined;
        s.streak = 0;
        continue;
      }
      if (winner === s.candidate) s.streak++;
      else {
        s.candidate = winner;
        s.streak = 1;
      }
      if (s.streak >= this.c.hysteresis) {
        events.push({ type: 'change', stream: r.stream, session: r.session, model: r.model, from: s.current, to: winner, atFrame: r.frame, captureTs: r.captureTs, modelVersion: r.modelVersion, partition: r.partition, offset: r.offset, topologyHash: r.topologyHash });
        s.current = winner;
        s.candidate = undefined;
        s.streak = 0;
      }
    }
    return events;
  }

  private winner(s: StreamState, labels: { label: string; score: number }[]): string | undefined {
    if (labels.length === 0) return undefined;
    if (this.c.method === 'ema') {
      const a = this.c.alpha;
      for (const [k, v] of s.ema) s.ema.set(k, (1 - a) * v);
      for (const l of labels) s.ema.set(l.label, (s.ema.get(l.label) ?? 0) + a * l.score);
      return argmax(s.ema);
    }
    if (s.window.length < this.c.window) s.window.push(labels);
    else s.window[s.next] = labels;
    s.next = (s.next + 1) % this.c.window;
    const tally = this.tally;
    tally.clear();
    for (const ls of s.window) {
      if (this.c.method === 'majority') tally.set(ls[0]!.label, (tally.get(ls[0]!.label) ?? 0) + 1);
      else for (const l of ls) tally.set(l.label, (tally.get(l.label) ?? 0) + l.score);
    }
    // Ties go to the newest frame's top label.
    const newest = labels[0]!.label;
    const best = argmax(tally);
    return best !== undefined && tally.get(best) === tally.get(newest) ? newest : best;
  }
}

function argmax(m: Map<string, number>): string | undefined {
  let best: string | undefined;
  let bv = -Infinity;
  for (const [k, v] of m) if (v > bv) (best = k), (bv = v);
  return best;
}
