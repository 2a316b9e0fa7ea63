/**
 * `framewire plan`'s arithmetic: from a live processor's measured load (its /metrics, the degrade
 * controller's figures: batch/degrade.ts) how many more streams of a given size, rate and model it
 * can take before its estimated load passes `highWater`, at full rate and at each halving of the
 * classified rate (a stream degraded to a frame a GOP or less decodes only its keyframes). Pure.
 */
import { METRIC } from '../telemetry/metrics.js';

export interface Measured {
  load: number;
  /** The load with every running stream at its full rate (what degradation saves: fullLoad − load). */
  fullLoad: number;
  /** The processor's own CPU ms per frame coming in (demuxing, batching, publishing: not in `load`). */
  processMsPerFrame: number;
  decodeLoad: number;
  inferLoad: number;
  cores: number;
  /** Mean decoder CPU ms per frame of the streams it runs. */
  decodeMsPerFrame: number;
  streamsFps: number;
  /** Frames a second each model lane can label at most. */
  capacity: Record<string, number>;
}

export interface Candidate {
  width: number;
  height: number;
  fps: number;
  model: string;
  /** Decoder CPU ms per frame; default: the measured mean scaled by pixels from `like`. */
  decodeMs?: number;
  /** Size of the streams the processor runs now (what the measured decode cost is of). */
  like: { width: number; height: number };
  /** Keyframe interval, ms. */
  gopMs: number;
  highWater: number;
  minFps: number;
}

export interface PlanRow {
  rate: number;
  /** The load one more such stream adds. */
  perStream: number;
  streams: number;
}

export interface Plan {
  headroom: number;
  /** The processor's own CPU, share of the machine. */
  processLoad: number;
  decodeMs: number;
  capacity: number;
  rows: PlanRow[];
}

/** The figures `plan` needs from a /metrics text; a string says which is missing. */
export function measuredFrom(text: string): Measured | string {
  const value = (name: string): number | undefined => {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const need = [METRIC.degradeLoad, METRIC.degradeDecodeLoad, METRIC.degradeInferLoad, METRIC.degradeCores, METRIC.decodeCpuPerFrame, METRIC.streamsFps];
  const got = need.map(value);
  const missing = need.filter((_, i) => got[i] === undefined);
  if (missing.length) return `the processor exports no ${missing.join(', ')} (not in batch.mode live, or older than 0.4)`;
  const capacity: Record<string, number> = {};
  for (const m of text.matchAll(new RegExp(`^${METRIC.laneCapacity}\\{model="([^"]+)"\\} (\\S+)$`, 'gm'))) capacity[m[1]!] = Number(m[2]);
  const [load, decodeLoad, inferLoad, cores, decodeMsPerFrame, streamsFps] = got as number[];
  return { fullLoad: value(METRIC.degradeFullLoad) ?? load!, processMsPerFrame: value(METRIC.processCpuPerFrame) ?? 0, load: load!, decodeLoad: decodeLoad!, inferLoad: inferLoad!, cores: cores!, decodeMsPerFrame: decodeMsPerFrame!, streamsFps: streamsFps!, capacity };
}

export function plan(m: Measured, c: Candidate): Plan | string {
  const capacity = m.capacity[c.model];
  if (!(capacity! > 0)) {
    const known = Object.keys(m.capacity);
    return `the processor has no measured lane for model ${c.model} (${known.length ? `lanes: ${known.join(', ')}` : 'no request answered yet'})`;
  }
  const decodeMs = c.decodeMs ?? m.decodeMsPerFrame * ((c.width * c.height) / (c.like.width * c.like.height));
  if (!(decodeMs > 0)) return 'no decoder cost measured yet (no stream running); give --decode-ms';
  // The processor's own CPU for the frames coming in is not in the controller's estimate: counted here.
  const processLoad = (m.processMsPerFrame * m.streamsFps) / (1000 * m.cores);
  const headroom = Math.max(0, c.highWater - m.load - processLoad);
  const rows: PlanRow[] = [];
  // The rates degradation steps through: halvings, floored at minFps.
  const rates: number[] = [];
  for (let r = c.fps; r > c.minFps; r /= 2) rates.push(r);
  if (c.fps <= c.minFps || rates[rates.length - 1]! > c.minFps) rates.push(Math.min(c.fps, c.minFps));
  for (const r of rates) {
    // At a frame a GOP or less only keyframes are decoded (decode/sampling.ts).
    const decoded = r < c.fps && 1000 / r >= 0.9 * c.gopMs ? Math.min(c.fps, 1000 / c.gopMs) : c.fps;
    const perStream = (decoded * decodeMs + c.fps * m.processMsPerFrame) / (1000 * m.cores) + r / capacity!;
    rows.push({ rate: Math.round(r * 100) / 100, perStream, streams: Math.floor(headroom / perStream + 1e-9) });
  }
  return { headroom, processLoad, decodeMs, capacity: capacity!, rows };
}

export function formatPlan(url: string, m: Measured, c: Candidate, p: Plan): string[] {
  const f2 = (x: number) => x.toFixed(2);
  const lines = [
    `${url}: estimated load ${f2(m.load + p.processLoad)} of ${f2(c.highWater)} (decoding ${f2(m.decodeLoad)} on ${m.cores} cores, inference ${f2(m.inferLoad)}, the processor itself ${f2(p.processLoad)}), ${m.streamsFps.toFixed(0)} frames/s coming in; ${c.model} labels up to ${p.capacity.toFixed(0)} frames/s`,
    `more ${c.width}×${c.height} streams at ${c.fps} fps on ${c.model} (decoding ${p.decodeMs.toFixed(2)} ms of CPU a frame, keyframe every ${(c.gopMs / 1000).toFixed(1)} s), within the headroom of ${f2(p.headroom)}:`,
  ];
  if (m.fullLoad > m.load + 0.005) lines.splice(1, 0, `  streams running now are degraded: at their full rates the estimate would be ${f2(m.fullLoad + p.processLoad)}, ${m.fullLoad + p.processLoad > c.highWater ? 'over' : 'within'} ${f2(c.highWater)}; the plan counts them as they are`);
  for (const r of p.rows) lines.push(`  classified at ${r.rate === c.fps ? `${r.rate} fps (every frame)` : `${r.rate} fps`}: ${r.streams} more (${f2(r.perStream)} of the load each)`);
  return lines;
}
