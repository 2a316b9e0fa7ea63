/** Colour test videos (the test model's input, docs/contracts.md) and a seeded PRNG to vary them reproducibly. */

/** The colour_probe classes as ffmpeg colours (pure RGB corners; ffmpeg's `green` is 0x008000). */
export const COLOURS = {
  black: '0x000000',
  white: '0xFFFFFF',
  red: '0xFF0000',
  green: '0x00FF00',
  blue: '0x0000FF',
  yellow: '0xFFFF00',
  cyan: '0x00FFFF',
  magenta: '0xFF00FF',
} as const;

export type Colour = keyof typeof COLOURS;

export const COLOUR_NAMES = Object.keys(COLOURS) as Colour[];

export interface Segment {
  colour: Colour;
  frames: number;
}

export interface ColourVideo {
  /** runIngest input: `lavfi:<graph>`. */
  input: string;
  graph: string;
  width: number;
  height: number;
  fps: number;
  segments: Segment[];
  /** Expected top label of each frame index 0..frames-1. */
  expected: Colour[];
  frames: number;
  /** First frame index of each segment after the first (where the colour changes). */
  changes: number[];
}

/**
 * A lavfi graph of solid-colour segments, each exactly `frames` frames long (trim by frame count,
 * not by duration, so rounding never adds or removes a frame), concatenated, as yuv420p.
 */
export function colourVideo(width: number, height: number, fps: number, segments: Segment[]): ColourVideo {
  if (segments.length === 0) throw new RangeError('at least one segment');
  const parts = segments.map((s, i) => `color=c=${COLOURS[s.colour]}:s=${width}x${height}:r=${fps},trim=end_frame=${s.frames},setpts=PTS-STARTPTS[s${i}]`);
  const inputs = segments.map((_, i) => `[s${i}]`).join('');
  const graph = `${parts.join(';')};${inputs}concat=n=${segments.length}:v=1:a=0,format=yuv420p`;
  const expected: Colour[] = [];
  const changes: number[] = [];
  for (const [i, s] of segments.entries()) {
    if (i > 0) changes.push(expected.length);
    for (let f = 0; f < s.frames; f++) expected.push(s.colour);
  }
  return { input: `lavfi:${graph}`, graph, width, height, fps, segments, expected, frames: expected.length, changes };
}

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Segments of random colours (never the same colour twice in a row) and random lengths in
 * [minFrames, maxFrames], totalling exactly `totalFrames` (the last one absorbs the remainder).
 */
export function randomSegments(rng: () => number, totalFrames: number, minFrames = 10, maxFrames = 40): Segment[] {
  const segs: Segment[] = [];
  let left = totalFrames;
  let prev: Colour | undefined;
  while (left > 0) {
    let n = minFrames + Math.floor(rng() * (maxFrames - minFrames + 1));
    if (left - n < minFrames) n = left; // no runt at the end
    const choices = COLOUR_NAMES.filter((c) => c !== prev);
    const colour = choices[Math.floor(rng() * choices.length)]!;
    segs.push({ colour, frames: n });
    prev = colour;
    left -= n;
  }
  return segs;
}
