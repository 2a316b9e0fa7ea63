/**
 * Per-stream sampling: which frames go to inference. Every skipped frame still has an index
 * (the demuxer numbers every frame), so it is reported (`sampled` or `unchanged`), never lost.
 * Where the rule allows, the decision is taken before decoding (`before`): `keyframes` decodes
 * only keyframes, `rate` does not decode a skipped frame that no other frame references; `scene`
 * needs the pixels, so it decides after decoding (`decide`).
 */
import { z } from 'zod/v4';
import type { Frame } from '../core/frame.js';
import { regexField } from '../config/regex.js';

export const samplingRuleSchema = z
  .strictObject({
    streams: regexField('Regular expression of stream ids this rule applies to; the first matching rule wins; default: every stream.').optional(),
    mode: z
      .enum(['all', 'rate', 'keyframes', 'scene'])
      .default('all')
      .describe('all: every frame; rate: `fps` frames per second; keyframes: keyframes only; scene: only when the picture changed by more than `threshold` since the last classified frame.'),
    fps: z.number().positive().default(5).describe('Frames per second to classify in `rate` mode.'),
    threshold: z.number().min(0).max(1).default(0.04).describe('Scene mode: mean absolute difference (0–1) of an 8×8 colour thumbnail that counts as a change.'),
    maxSkipMs: z.int().min(0).default(2000).describe('Scene mode: classify at least this often even when nothing changes, ms (0: never force).'),
  })
  .describe('A sampling rule.');

export type SamplingRule = z.infer<typeof samplingRuleSchema>;
export type SkipReason = 'sampled' | 'unchanged';

/** What to do with a frame before it is decoded. */
export const KEEP = 0; // decode and classify
export const SKIP = 1; // sampled: never decoded
export const DECODE_ONLY = 2; // sampled, but decoded: later frames reference it
export const LOOK = 3; // decode, then `decide` on its pixels
/** The rule keeps it, the stream's degraded rate does not (batch/degrade.ts): reported `sampled`, `degraded`. */
export const SKIP_DEGRADED = 4; // never decoded
export const DECODE_DEGRADED = 5; // decoded: later frames reference it
export type PreDecode = typeof KEEP | typeof SKIP | typeof DECODE_ONLY | typeof LOOK | typeof SKIP_DEGRADED | typeof DECODE_DEGRADED;

const GRID = 8;
const SIG = GRID * GRID * 3;

export class Sampler {
  private nextDuePts = Number.NEGATIVE_INFINITY;
  private lastKeptPts = Number.NEGATIVE_INFINITY;
  private readonly sig: Float32Array | undefined;
  private readonly lastSig: Float32Array | undefined;
  private haveLast = false;
  private readonly counts = new Uint16Array(GRID * GRID);
  /** Degraded: ms between classified frames at most (0: not degraded), and when the next is due. */
  private capIntervalMs = 0;
  private capDuePts = Number.NEGATIVE_INFINITY;
  /** The stream's keyframe interval, ms (smoothed; NaN until two keyframes). */
  private gop = Number.NaN;
  private lastKeyPts = Number.NaN;
  /** A referenced frame was skipped undecoded: nothing decodes until the next keyframe. */
  private skippedRef = false;

  constructor(private readonly rule: SamplingRule, private readonly width: number, private readonly height: number) {
    if (rule.mode === 'scene') {
      this.sig = new Float32Array(SIG);
      this.lastSig = new Float32Array(SIG);
    }
  }

  /**
   * Degrades the stream to at most `fps` classified frames per second on top of its rule
   * (undefined: the rule alone). The cadence restarts at the next frame.
   */
  setRateCap(fps: number | undefined): void {
    this.capIntervalMs = fps && fps > 0 ? 1000 / fps : 0;
    this.capDuePts = Number.NEGATIVE_INFINITY;
  }

  get rateCap(): number | undefined {
    return this.capIntervalMs > 0 ? 1000 / this.capIntervalMs : undefined;
  }

  /** The stream's keyframe interval as seen so far, ms (NaN: fewer than two keyframes). */
  get gopMs(): number {
    return this.gop;
  }

  /**
   * Degraded to no more than a keyframe a GOP: only keyframes are decoded, which is what saves
   * the decoders' CPU (a frame that others reference is otherwise decoded even when skipped).
   */
  private get keyframesOnly(): boolean {
    return this.capIntervalMs > 0 && this.gop > 0 && this.capIntervalMs >= 0.9 * this.gop;
  }

  /** Before decoding: from the frame's time, keyframe flag and whether any frame references it. */
  before(ptsMs: number, isKey: boolean, disposable: boolean): PreDecode {
    if (isKey) {
      const step = ptsMs - this.lastKeyPts;
      if (step > 0) this.gop = Number.isNaN(this.gop) ? step : this.gop + (step - this.gop) / 4;
      this.lastKeyPts = ptsMs;
      this.skippedRef = false;
    }
    const pre = this.ruleBefore(ptsMs, isKey, disposable);
    if (this.skippedRef) return pre === KEEP || pre === LOOK ? SKIP_DEGRADED : SKIP;
    if (this.capIntervalMs === 0 || pre === SKIP) return pre;
    const keyOnly = this.keyframesOnly;
    if (pre === DECODE_ONLY) {
      if (!keyOnly) return pre;
      this.skippedRef = true;
      return SKIP;
    }
    if (ptsMs + 0.5 >= this.capDuePts && (isKey || !keyOnly)) {
      this.capDuePts = this.capDuePts + this.capIntervalMs > ptsMs ? this.capDuePts + this.capIntervalMs : ptsMs + this.capIntervalMs;
      return pre;
    }
    if (disposable) return SKIP_DEGRADED;
    if (!keyOnly) return DECODE_DEGRADED;
    this.skippedRef = true;
    return SKIP_DEGRADED;
  }

  private ruleBefore(ptsMs: number, isKey: boolean, disposable: boolean): PreDecode {
    switch (this.rule.mode) {
      case 'all':
        return KEEP;
      case 'keyframes':
        return isKey ? KEEP : SKIP;
      case 'rate':
        return this.rateDue(ptsMs) ? KEEP : disposable ? SKIP : DECODE_ONLY;
      case 'scene':
        return LOOK;
    }
  }

  /** undefined: classify this decoded frame; otherwise why it is skipped. */
  decide(frame: Frame, isKey: boolean): SkipReason | undefined {
    switch (this.rule.mode) {
      case 'all':
        return undefined;
      case 'keyframes':
        return isKey ? undefined : 'sampled';
      case 'rate':
        return this.rateDue(frame.ptsMs) ? undefined : 'sampled';
      case 'scene': {
        this.signature(frame.data);
        const forced = this.rule.maxSkipMs > 0 && frame.ptsMs - this.lastKeptPts >= this.rule.maxSkipMs;
        if (this.haveLast && !forced && this.difference() <= this.rule.threshold) return 'unchanged';
        this.lastSig!.set(this.sig!);
        this.haveLast = true;
        this.lastKeptPts = frame.ptsMs;
        return undefined;
      }
    }
  }

  private rateDue(ptsMs: number): boolean {
    const interval = 1000 / this.rule.fps;
    if (ptsMs + 0.5 < this.nextDuePts) return false;
    this.nextDuePts += interval;
    // After a gap, restart the cadence from this frame instead of bursting to catch up.
    if (this.nextDuePts <= ptsMs) this.nextDuePts = ptsMs + interval;
    return true;
  }

  /** Mean colour of each cell of an 8×8 grid, reading every 4th pixel of each row and column. */
  private signature(data: Buffer): void {
    const sig = this.sig!;
    sig.fill(0);
    const { width, height } = this;
    const counts = this.counts;
    counts.fill(0);
    for (let y = 0; y < height; y += 4) {
      const gy = Math.min(GRID - 1, ((y * GRID) / height) | 0);
      const row = y * width * 3;
      for (let x = 0; x < width; x += 4) {
        const cell = gy * GRID + Math.min(GRID - 1, ((x * GRID) / width) | 0);
        const p = row + x * 3;
        sig[cell * 3] += data[p]!;
        sig[cell * 3 + 1] += data[p + 1]!;
        sig[cell * 3 + 2] += data[p + 2]!;
        counts[cell]!++;
      }
    }
    for (let c = 0; c < GRID * GRID; c++) {
      const n = counts[c] || 1;
      sig[c * 3] /= n;
      sig[c * 3 + 1] /= n;
      sig[c * 3 + 2] /= n;
    }
  }

  private difference(): number {
    let d = 0;
    for (let i = 0; i < SIG; i++) d += Math.abs(this.sig![i]! - this.lastSig![i]!);
    return d / SIG / 255;
  }
}

/** The rule of a stream no rule matches: every frame. */
const EVERY_FRAME: SamplingRule = samplingRuleSchema.parse({});

/** Compiles the rules' patterns once; the result picks the first rule matching a stream id. */
export function samplingRules(rules: SamplingRule[]): (stream: string) => SamplingRule {
  const compiled = rules.map((rule) => ({ rule, pattern: rule.streams === undefined ? undefined : new RegExp(rule.streams) }));
  return (stream) => compiled.find((c) => !c.pattern || c.pattern.test(stream))?.rule ?? EVERY_FRAME;
}
