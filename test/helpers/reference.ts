/**
 * Ground truth taken from an encoded file itself, not from the graph it was made from: what a
 * user's file really holds (x264 decides the frame types, the container decides the order), and
 * a check of a session's label records and `dropped` events against it that trusts nothing
 * about the indices it is given (docs/contracts.md: `frame`, `ptsMs`, `dropped`).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { DroppedRecord, LabelRecord } from './accounting.js';
import { COLOUR_NAMES, type Colour } from './colours.js';
import { RGB } from './frames.js';

const run = promisify(execFile);

/** Side of the thumbnail a frame's mean colour is taken from (the mean of a near-solid frame does not depend on it). */
const THUMB = 32;

export interface Reference {
  /** Per frame, in presentation order: the colour_probe class of its mean colour (nearest RGB-cube corner). */
  classes: Colour[];
  /** Per frame: mean R, G, B (0–255). */
  means: [number, number, number][];
  /**
   * Smallest, over all frames, of (distance to the second-nearest corner − distance to the
   * nearest): how far the file is from a frame whose class a different scaler could flip.
   */
  minMargin: number;
}

/** The frames of `file` decoded by ffmpeg in presentation order, each classified by its mean colour. */
export async function referenceOf(file: string): Promise<Reference> {
  const { stdout } = await run(
    'ffmpeg',
    ['-v', 'error', '-nostdin', '-i', file, '-map', '0:v:0', '-vf', `scale=${THUMB}:${THUMB}`, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-fps_mode', 'passthrough', '-'],
    { encoding: 'buffer', maxBuffer: 1 << 30 },
  );
  const size = THUMB * THUMB * 3;
  if (stdout.length % size !== 0) throw new Error(`${file}: decoded ${stdout.length} bytes, not a whole number of ${THUMB}x${THUMB} frames`);
  const classes: Colour[] = [];
  const means: [number, number, number][] = [];
  let minMargin = Infinity;
  for (let off = 0; off < stdout.length; off += size) {
    let r = 0;
    let g = 0;
    let b = 0;
    for (let p = off; p < off + size; p += 3) {
      r += stdout[p]!;
      g += stdout[p + 1]!;
      b += stdout[p + 2]!;
    }
    const px = size / 3;
    const mean: [number, number, number] = [r / px, g / px, b / px];
    const { colour, margin } = nearestCorner(mean);
    classes.push(colour);
    means.push(mean);
    minMargin = Math.min(minMargin, margin);
  }
  return { classes, means, minMargin };
}

/** The colour_probe rule: the RGB-cube corner nearest to a mean colour, and its lead over the runner-up. */
export function nearestCorner(mean: readonly [number, number, number]): { colour: Colour; margin: number } {
  const d = COLOUR_NAMES.map((c) => ({ c, d: Math.hypot(mean[0] - RGB[c]![0], mean[1] - RGB[c]![1], mean[2] - RGB[c]![2]) })).sort((a, b) => a.d - b.d);
  return { colour: d[0]!.c, margin: d[1]!.d - d[0]!.d };
}

export interface Probe {
  /** ffprobe -count_frames: frames decoded. */
  frames: number;
  profile: string;
  /** Frames of reorder delay the stream declares (x264 defaults: 2). */
  hasBFrames: number;
  /** Per frame, presentation order: I, P or B. */
  pictTypes: string;
  /** Longest run of frames from a keyframe to the next one (or to the end). */
  longestGop: number;
}

/** What ffprobe says about the file's video: frame count, profile, B-frames, frame types. */
export async function probeFile(file: string): Promise<Probe> {
  const { stdout } = await run(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries', 'stream=profile,has_b_frames,nb_read_frames:frame=key_frame,pict_type', '-of', 'json', file],
    { maxBuffer: 1 << 28 },
  );
  const j = JSON.parse(stdout) as { streams: { profile?: string; has_b_frames?: number; nb_read_frames?: string }[]; frames: { key_frame: number; pict_type: string }[] };
  const s = j.streams[0]!;
  let longestGop = 0;
  let since = -1;
  for (const [i, f] of j.frames.entries()) {
    if (f.key_frame === 1) {
      if (since >= 0) longestGop = Math.max(longestGop, i - since);
      since = i;
    }
  }
  if (since >= 0) longestGop = Math.max(longestGop, j.frames.length - since);
  return { frames: Number(s.nb_read_frames), profile: s.profile ?? '?', hasBFrames: s.has_b_frames ?? 0, pictTypes: j.frames.map((f) => f.pict_type).join(''), longestGop };
}

/** Encodes a lavfi graph to `file` (container from its extension) with the given video options. */
export async function encodeFile(graph: string, file: string, videoArgs: string[]): Promise<void> {
  await run('ffmpeg', ['-v', 'error', '-nostdin', '-y', '-f', 'lavfi', '-i', graph, ...videoArgs, file], { maxBuffer: 1 << 24 });
}

export interface SessionAudit {
  /** Frame indices 0..frames-1 with neither a label record nor a `dropped` event. */
  missing: number[];
  /** Indices covered more than once (label + drop, two labels, overlapping drops). */
  twice: number[];
  /** Indices outside 0..frames-1 or not integers, and `dropped` events whose count disagrees with their range (as written). */
  bad: string[];
  labelled: number;
  dropsByReason: Record<string, number>;
  /** Labelled frames whose top label is not the reference class of the same frame number. */
  wrong: { frame: number; got: string; want: string; ptsMs: number }[];
  /** Consecutive labelled frames (by frame number) whose ptsMs does not increase. */
  ptsOrder: { frame: number; ptsMs: number; prevFrame: number; prevPtsMs: number }[];
  /** Labelled frames whose ptsMs is more than `ptsToleranceMs` from frame × 1000 / fps. */
  ptsOff: { frame: number; ptsMs: number; wantMs: number }[];
}

/**
 * One session's label records and `dropped` events checked against the reference: coverage
 * exactly once (indices past the end count, they are not ignored), top label per frame number,
 * ptsMs order and rate.
 */
export function auditSession(labels: LabelRecord[], drops: DroppedRecord[], ref: Reference, fps: number, ptsToleranceMs = 1): SessionAudit {
  const n = ref.classes.length;
  const count = new Map<number, number>();
  const a: SessionAudit = { missing: [], twice: [], bad: [], labelled: labels.length, dropsByReason: {}, wrong: [], ptsOrder: [], ptsOff: [] };
  const cover = (i: number, what: string): void => {
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      a.bad.push(`${what} #${i}`);
      return;
    }
    count.set(i, (count.get(i) ?? 0) + 1);
  };
  for (const r of labels) {
    cover(r.frame, 'label');
    if (Number.isInteger(r.frame) && r.frame >= 0 && r.frame < n) {
      const got = r.labels?.[0]?.label ?? '<none>';
      const want = ref.classes[r.frame]!;
      if (got !== want) a.wrong.push({ frame: r.frame, got, want, ptsMs: r.ptsMs });
    }
    const wantMs = (r.frame * 1000) / fps;
    if (!(Math.abs(r.ptsMs - wantMs) <= ptsToleranceMs)) a.ptsOff.push({ frame: r.frame, ptsMs: r.ptsMs, wantMs });
  }
  for (const e of drops) {
    a.dropsByReason[e.reason] = (a.dropsByReason[e.reason] ?? 0) + (e.toFrame - e.fromFrame + 1);
    if (!Number.isInteger(e.fromFrame) || !Number.isInteger(e.toFrame) || e.toFrame < e.fromFrame) {
      a.bad.push(`dropped ${e.fromFrame}..${e.toFrame}`);
      continue;
    }
    if (e.count !== e.toFrame - e.fromFrame + 1) a.bad.push(`dropped ${e.fromFrame}..${e.toFrame} says count ${e.count}`);
    for (let i = e.fromFrame; i <= e.toFrame; i++) cover(i, `dropped(${e.reason})`);
  }
  for (let i = 0; i < n; i++) {
    const c = count.get(i) ?? 0;
    if (c === 0) a.missing.push(i);
    else if (c > 1) a.twice.push(i);
  }
  const byFrame = [...labels].sort((x, y) => x.frame - y.frame);
  for (let k = 1; k < byFrame.length; k++) {
    const p = byFrame[k - 1]!;
    const r = byFrame[k]!;
    if (r.frame !== p.frame && !(r.ptsMs > p.ptsMs)) a.ptsOrder.push({ frame: r.frame, ptsMs: r.ptsMs, prevFrame: p.frame, prevPtsMs: p.ptsMs });
  }
  a.wrong.sort((x, y) => x.frame - y.frame);
  return a;
}
