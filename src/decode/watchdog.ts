/**
 * The decoders' watchdog: one timer for the whole decode stage (not one per decoder), looking at
 * each running decoder once a tick.
 *  - Stalled: frames were fed and nothing came out for `decode.stallMs` (a hung or stopped ffmpeg,
 *    kill -STOP, a decoder wedged on hostile bytes) while the pipeline was not holding it back. A
 *    B-frame stream's decoder keeps its reorder depth of frames until more are fed: that is not a stall.
 *  - CPU: over the last `decode.cpuWindowMs` it used more than `decode.maxCpuPercent` of a core
 *    (a decoder spinning on crafted input starves every other stream on the machine).
 * Either way it is killed as a crash: the session restarts at the next keyframe and what the
 * decoder held is `decoder-reset` (session.ts). The same CPU readings give each decoder its
 * measured cost per frame, which load shedding uses to decide whether a stream can catch up. It sits on top of the ffmpeg supervisor: all it
 * needs from a decoder is its pid, what it holds and when it last put a frame out.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { FramewireError } from '../core/errors.js';
import { log } from '../core/log.js';

export interface Watched {
  readonly pid: number | undefined;
  readonly holding: number;
  /** Frames its stream's reordering keeps inside it when nothing more is fed (B-frames): not a stall. */
  readonly reorderDepth: number;
  readonly oldestHeldFedAt: number;
  readonly lastOutputAt: number;
  /** Frames it has put out: before the first, it may still be starting (a busy machine takes seconds). */
  readonly emitted: number;
  readonly isBlocked: boolean;
  readonly isExited: boolean;
  /** CPU time per frame put out, ms, over the last COST_MIN_FRAMES or more (NaN: not measured yet). Set here. */
  cpuMsPerFrame: number;
  killAsCrash(reason: 'stalled' | 'cpu'): Promise<void>;
}

export interface WatchdogOptions {
  stallMs: number;
  /** 0 turns the CPU check off. */
  maxCpuPercent: number;
  cpuWindowMs: number;
  /** Told each kill (metrics, logs). */
  killed(stream: string, reason: 'stalled' | 'cpu', err: FramewireError): void;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux
/** At least this long for a decoder's first frame before it counts as stalled, ms. */
const FIRST_FRAME_MS = 10_000;
/**
 * A cost is measured over at least this many frames and this long: /proc counts CPU time in
 * 10 ms ticks, so 25 frames of ~2 ms are read within ~20 %.
 */
const COST_MIN_FRAMES = 25;
const COST_MIN_MS = 2000;

/** CPU seconds (user + system) a process has used, from /proc; undefined when unreadable. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the command (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS; // utime, stime: fields 14 and 15
  } catch {
    return undefined;
  }
}

export class DecoderWatchdog {
  private readonly cpu = new WeakMap<Watched, { samples: { at: number; cpu: number }[]; cost: { at: number; cpu: number; emitted: number } }>();

  constructor(private readonly o: WatchdogOptions) {}

  /** Looks at one decoder; kills it (as a crash) when stalled or over its CPU share. */
  check(stream: string, d: Watched, now = performance.now()): void {
    if (d.isExited) return;
    if (d.holding > d.reorderDepth && !d.isBlocked) {
      const silentFor = now - Math.max(d.lastOutputAt, d.oldestHeldFedAt);
      // A decoder started on demand (no spare left) loads and probes first: more time for frame one.
      const limit = d.emitted > 0 ? this.o.stallMs : Math.max(3 * this.o.stallMs, FIRST_FRAME_MS);
      if (silentFor > limit) return this.kill(stream, d, 'stalled', `fed ${d.holding} frame(s) and silent for ${Math.round(silentFor)} ms (decode.stallMs ${this.o.stallMs}${d.emitted === 0 ? ', first frame' : ''})`);
    }
    if (d.pid === undefined) return;
    const used = cpuSeconds(d.pid);
    if (used === undefined) return;
    let st = this.cpu.get(d);
    if (!st) this.cpu.set(d, (st = { samples: [], cost: { at: now, cpu: used, emitted: d.emitted } }));
    const c = st.cost;
    if (d.emitted - c.emitted >= COST_MIN_FRAMES && now - c.at >= COST_MIN_MS) {
      d.cpuMsPerFrame = ((used - c.cpu) * 1000) / (d.emitted - c.emitted);
      c.at = now;
      c.cpu = used;
      c.emitted = d.emitted;
    }
    if (this.o.maxCpuPercent <= 0) return;
    st.samples.push({ at: now, cpu: used });
    while (st.samples.length > 2 && now - st.samples[1]!.at >= this.o.cpuWindowMs) st.samples.shift();
    const first = st.samples[0]!;
    const span = now - first.at;
    if (span < this.o.cpuWindowMs) return;
    const percent = ((used - first.cpu) * 1000 * 100) / span;
    if (percent > this.o.maxCpuPercent) this.kill(stream, d, 'cpu', `used ${percent.toFixed(0)} % of a core over ${Math.round(span)} ms (decode.maxCpuPercent ${this.o.maxCpuPercent})`);
  }

  private kill(stream: string, d: Watched, reason: 'stalled' | 'cpu', detail: string): void {
    const err = new FramewireError(reason === 'stalled' ? 'DECODER_STALLED' : 'DECODER_LIMIT_EXCEEDED', 'decode', `decoder of ${stream} ${detail}; killed, restarting at the next keyframe`, { retriable: true });
    log.warn(err.message, { stream, code: err.code, pid: d.pid });
    this.o.killed(stream, reason, err);
    void d.killAsCrash(reason);
  }
}
