/**
 * The supervised ffmpeg decoder fed by our demuxer, against real ffmpeg: every frame comes out,
 * in presentation order, pixel-identical to a plain ffmpeg decode of the same MPEG-TS file; no
 * frame is held (fed one at a time, each comes out before the next goes in); a killed child
 * reports what it held; spares are topped up after a burst of sessions, not behind each one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TsDemuxer, type AccessUnit } from '../../src/decode/mpegts.js';
import { DecoderSpares, FfmpegDecoder, SPARE_REFILL_MS } from '../../src/decode/ffmpeg/decoder.js';

const W = 96;
const H = 64;

function encode(extra: string[], codec = 'libx264'): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-dec-'));
  try {
    const file = path.join(dir, 'v.ts');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=320x240:r=25:d=3', '-c:v', codec, '-preset', 'veryfast', '-g', '20', ...extra, '-f', 'mpegts', file]);
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** md5 of each frame of a plain ffmpeg decode (its own MPEG-TS demuxer) at the same size. */
function reference(ts: Buffer): string[] {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-f', 'mpegts', '-i', 'pipe:0', '-vf', `scale=${W}:${H}:flags=bilinear`, '-pix_fmt', 'rgb24', '-f', 'rawvideo', 'pipe:1'], { input: ts, maxBuffer: 1 << 28 });
  const out: string[] = [];
  for (let i = 0; i + W * H * 3 <= raw.length; i += W * H * 3) out.push(createHash('md5').update(raw.subarray(i, i + W * H * 3)).digest('hex'));
  return out;
}

function units(ts: Buffer): { aus: AccessUnit[]; codec: 'h264' | 'hevc' } {
  const d = new TsDemuxer();
  const aus: AccessUnit[] = [];
  for (let at = 0, seq = 0; at < ts.length; at += 1321, seq++) d.push(ts.subarray(at, at + 1321), seq, String(seq), (au) => aus.push({ ...au }));
  d.flush((au) => aus.push({ ...au }));
  return { aus, codec: d.codec ?? 'h264' };
}

interface Out {
  md5: string;
  index: number;
  pts: number;
}

/** A decoder recording each frame; `onFrame` may hold the pipeline up (a promise, as a full queue does). */
function decoder(codec: 'h264' | 'hevc', frames: Out[], onFrame?: () => void | Promise<void>) {
  let exit: { reason: string; detail: string; held: { index: number; tag: number }[] } | undefined;
  const dec = new FfmpegDecoder({
    codec,
    width: W,
    height: H,
    hooks: {
      frame: (data, index, _handle, pts) => {
        frames.push({ md5: createHash('md5').update(data).digest('hex'), index, pts });
        return onFrame?.();
      },
      skipped: (index) => assert.fail(`frame ${index} skipped by the decoder`),
      error: (line) => assert.fail(`ffmpeg error: ${line}`),
      exited: (e, held) => {
        exit = { reason: e.reason, detail: e.detail, held };
      },
    },
  });
  return { dec, exit: () => exit };
}

for (const [name, extra, encoder] of [
  ['without B-frames', ['-tune', 'zerolatency', '-omit_video_pes_length', '0'], 'libx264'],
  ['with B-frames', ['-bf', '2'], 'libx264'],
  ['H.265', ['-tune', 'zerolatency', '-x265-params', 'log-level=error'], 'libx265'],
] as const) {
  test(`${name}: every frame out, in presentation order, identical to a plain ffmpeg decode`, async () => {
    const ts = encode([...extra], encoder);
    const ref = reference(ts);
    const { aus, codec } = units(ts);
    assert.equal(aus.length, ref.length);
    const frames: Out[] = [];
    const { dec, exit } = decoder(codec, frames);
    for (const [i, au] of aus.entries()) if (!dec.feed(au, i, i, 0)) await dec.drained();
    await dec.close();
    assert.deepEqual(frames.map((f) => f.md5), ref, 'pixels');
    const pts = frames.map((f) => f.pts);
    assert.deepEqual(pts, [...pts].sort((a, b) => a - b), 'presentation order');
    // Each frame is matched to the access unit it came from by its byte position in the input.
    for (const f of frames) assert.equal(aus[f.index]!.pts, f.pts);
    assert.match(exit()!.detail, /\(code 0\)/);
    assert.equal(exit()!.reason, 'ended');
    assert.deepEqual(exit()!.held, []);
  });
}

test('no frame is held: fed one at a time, each frame comes out before the next one is written', async () => {
  const ts = encode(['-tune', 'zerolatency', '-omit_video_pes_length', '0']);
  const { aus, codec } = units(ts);
  const frames: Out[] = [];
  let arrived: (() => void) | undefined;
  const { dec } = decoder(codec, frames, () => arrived?.());
  const waits: number[] = [];
  for (const [i, au] of aus.entries()) {
    const out = new Promise<void>((r) => (arrived = r));
    const t0 = performance.now();
    dec.feed(au, i, i, 0);
    const timedOut = await Promise.race([out.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 2000))]);
    assert.equal(timedOut, false, `frame ${i} did not come out before frame ${i + 1} was due`);
    waits.push(performance.now() - t0);
    assert.equal(dec.holding, 0);
  }
  await dec.close();
  assert.equal(frames.length, aus.length);
  waits.sort((a, b) => a - b);
  console.log(`fed one by one: frame out after p50 ${waits[waits.length >> 1]!.toFixed(1)} ms, max ${waits.at(-1)!.toFixed(1)} ms (the first includes ffmpeg's start)`);
});

test('a killed decoder reports the frames it held; the pipeline hook is never called for them', async () => {
  const ts = encode(['-tune', 'zerolatency', '-omit_video_pes_length', '0']);
  const { aus, codec } = units(ts);
  const frames: Out[] = [];
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  let first = true;
  // The pipeline stalls on the first frame: the decoder stops reading and keeps the rest.
  const { dec, exit } = decoder(codec, frames, () => {
    if (!first) return;
    first = false;
    return gate;
  });
  for (const [i, au] of aus.slice(0, 30).entries()) dec.feed(au, i, i, 0);
  await new Promise((r) => setTimeout(r, 500));
  const kill = dec.kill();
  release();
  await kill;
  const out = new Set(frames.map((f) => f.index));
  const held = exit()!.held.map((h) => h.index);
  assert.equal(exit()!.reason, 'stopped');
  assert.match(exit()!.detail, /\(signal SIGKILL\)/);
  assert.ok(held.length > 0, 'it held frames when killed');
  for (let i = 0; i < 30; i++) assert.ok(out.has(i) !== held.includes(i), `frame ${i}: out or held, exactly one`);
});

test('spares: a burst of takes spawns only the decoders it needs, and the spares are topped up once it has passed', async () => {
  const spares = new DecoderSpares({}, 2);
  const taken: FfmpegDecoder[] = [];
  const hooks = { frame: () => {}, skipped: () => {}, error: () => {}, exited: () => {} };
  try {
    spares.warm('h264', W, H);
    assert.equal(spares.count, 2);
    for (let i = 0; i < 3; i++) taken.push(spares.take('h264', W, H, hooks));
    // Two came from the spares, the third was started for its session; none was started behind them.
    assert.equal(spares.count, 0, 'spares started during the burst');
    assert.equal(new Set(taken.map((d) => d.pid)).size, 3);
    assert.ok(taken.every((d) => !d.isExited && d.pid !== undefined));
    await new Promise((r) => setTimeout(r, SPARE_REFILL_MS / 2));
    taken.push(spares.take('h264', W, H, hooks));
    await new Promise((r) => setTimeout(r, SPARE_REFILL_MS / 2 + 50));
    // A take within the quiet period starts it again.
    assert.equal(spares.count, 0, 'topped up before takes had paused for SPARE_REFILL_MS');
    await new Promise((r) => setTimeout(r, SPARE_REFILL_MS / 2 + 100));
    assert.equal(spares.count, 2, 'not topped up after the burst');
  } finally {
    await Promise.all(taken.map((d) => d.kill()));
    await spares.close();
  }
});
