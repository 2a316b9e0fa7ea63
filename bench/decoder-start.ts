/**
 * Decoder start: time from a new session's first keyframe to its first frame out of ffmpeg, for
 * a decoder started on demand (no spare left) and for one taken from the spares, at several
 * camera sizes and both codecs (prints a table; not a test). No stack needed: ffmpeg only.
 *
 *   node dist/bench/decoder-start.js [--trials 5]
 *
 * The first on-demand start of the process is reported on its own: it used to pay for the
 * wrapper library's capability probes (~600 ms before; the decoder now spawns ffmpeg directly).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { TsDemuxer, type AccessUnit, type VideoCodec } from '../src/decode/mpegts.js';
import { DecoderSpares, FfmpegDecoder, type DecoderHooks } from '../src/decode/ffmpeg/decoder.js';
import { quantile } from './lib.js';

const { values } = parseArgs({ options: { trials: { type: 'string', default: '5' } } });
const TRIALS = Number(values.trials);
/** The model input size (the decoder scales to it); spares are kept per codec and this size. */
const W = 224;
const H = 224;

function firstKeyframe(size: string, encoder: string): { au: AccessUnit; codec: VideoCodec } {
  const dir = mkdtempSync(path.join(tmpdir(), 'fw-bench-start-'));
  try {
    const file = path.join(dir, 'v.ts');
    const extra = encoder === 'libx265' ? ['-x265-params', 'log-level=error'] : [];
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=s=${size}:r=25:d=1`, '-pix_fmt', 'yuv420p', '-c:v', encoder, ...extra, '-preset', 'veryfast', '-f', 'mpegts', file]);
    const d = new TsDemuxer();
    let au: AccessUnit | undefined;
    d.push(readFileSync(file), 0, '0', (u) => (au ??= { ...u, data: Buffer.from(u.data) }));
    d.flush((u) => (au ??= { ...u, data: Buffer.from(u.data) }));
    return { au: au!, codec: d.codec ?? 'h264' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Feeds the keyframe and closes: resolves with ms from feed to the first frame out. */
function timeFirstFrame(make: (hooks: DecoderHooks) => FfmpegDecoder, au: AccessUnit): Promise<number> {
  return new Promise((resolve, reject) => {
    let t0 = 0;
    let done = false;
    const hooks: DecoderHooks = {
      frame: () => {
        if (!done) resolve(performance.now() - t0);
        done = true;
      },
      skipped: () => {},
      error: (line) => reject(new Error(line)),
      exited: () => {
        if (!done) reject(new Error('exited before its first frame'));
      },
    };
    t0 = performance.now();
    const dec = make(hooks);
    dec.feed(au, 0, 0, 0);
    void dec.close();
  });
}

const rows: Record<string, string | number>[] = [];
const cases = [
  ['320x240', 'libx264'],
  ['1280x720', 'libx264'],
  ['1920x1080', 'libx264'],
  ['640x360', 'libx265'],
] as const;
let firstOfProcess: number | undefined;
for (const [size, encoder] of cases) {
  const { au, codec } = firstKeyframe(size, encoder);
  const cold: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    const ms = await timeFirstFrame((hooks) => new FfmpegDecoder({ codec, width: W, height: H, hooks }), au);
    if (firstOfProcess === undefined) firstOfProcess = ms;
    else cold.push(ms);
  }
  const spares = new DecoderSpares({}, 1);
  const warm: number[] = [];
  for (let i = 0; i < TRIALS; i++) {
    spares.warm(codec, W, H);
    await new Promise((r) => setTimeout(r, 300)); // the spare has started and blocks on its stdin
    warm.push(await timeFirstFrame((hooks) => spares.take(codec, W, H, hooks), au));
  }
  await spares.close();
  cold.sort((a, b) => a - b);
  warm.sort((a, b) => a - b);
  rows.push({
    camera: `${size} ${codec}`,
    'on demand p50 ms': cold.length ? quantile(cold, 0.5).toFixed(0) : '–',
    'on demand max ms': cold.length ? cold.at(-1)!.toFixed(0) : '–',
    'from a spare p50 ms': quantile(warm, 0.5).toFixed(0),
    'from a spare max ms': warm.at(-1)!.toFixed(0),
  });
}
console.log(`\ndecoder start: first keyframe fed → first frame out (scaled to ${W}×${H}), ${TRIALS} trials each, 2 cores`);
console.table(rows);
console.log(`first on-demand start of this process: ${firstOfProcess!.toFixed(0)} ms (no capability probes: ffmpeg is spawned directly)`);
console.log('Spares are kept per codec and model input size (decode.spareDecoders), not per camera size: a camera of a new size takes a spare like any other.');
