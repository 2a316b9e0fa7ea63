/**
 * Frame numbers are presentation order (docs/contracts.md): for streams with B-frames, the index
 * our demuxer and numbering give each frame equals that frame's position in ffprobe's
 * presentation-order list (`-show_frames`, what `-count_frames` counts), and increases with pts.
 * Chunks cut the byte stream at arbitrary points, as Kafka records do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TsDemuxer } from '../../src/decode/mpegts.js';
import { FrameNumbering } from '../../src/decode/numbering.js';
import { seededRng } from '../helpers/colours.js';

function encode(args: string[], seconds = 6): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-order-'));
  try {
    const file = path.join(dir, 'v.ts');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=s=320x240:r=25:d=${seconds}`, '-pix_fmt', 'yuv420p', ...args, '-f', 'mpegts', file]);
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** pts (s) of every frame, in the order ffprobe's decoder presents them. */
function presentationOrder(ts: Buffer): number[] {
  const csv = execFileSync('ffprobe', ['-v', 'error', '-f', 'mpegts', '-i', 'pipe:0', '-select_streams', 'v', '-show_entries', 'frame=pts', '-of', 'csv=p=0'], { input: ts, encoding: 'utf8', maxBuffer: 1 << 26 });
  return csv.split('\n').map((l) => l.trim().replace(/,$/, '')).filter(Boolean).map((v) => Number(v) / 90_000);
}

function numbered(ts: Buffer, seed: number): { byIndex: number[]; decodeOrderPts: number[] } {
  const byIndex: number[] = [];
  const decodeOrderPts: number[] = [];
  const n = new FrameNumbering(undefined, (u, index) => (byIndex[index] = u.pts));
  const d = new TsDemuxer();
  const rnd = seededRng(seed);
  const onUnit = (au: { pts: number; dts: number; key: boolean; seq: number; offset: string }) => {
    decodeOrderPts.push(au.pts);
    n.arrive(au.pts, au.dts, au.key, au.seq, au.offset);
  };
  for (let at = 0, seq = 0; at < ts.length; seq++) {
    const len = 1 + Math.floor(rnd() * 4000);
    d.push(ts.subarray(at, at + len), seq, String(seq), onUnit);
    at += len;
  }
  d.flush(onUnit);
  n.flush();
  return { byIndex, decodeOrderPts };
}

for (const [name, args] of [
  ["x264's defaults (3 B-frames, b-pyramid)", ['-c:v', 'libx264', '-preset', 'veryfast', '-g', '50']],
  ['-bf 3 -b-pyramid normal, long GOP', ['-c:v', 'libx264', '-preset', 'medium', '-bf', '3', '-b-pyramid', 'normal', '-g', '250']],
  ['H.265 with B-frames', ['-c:v', 'libx265', '-preset', 'veryfast', '-x265-params', 'log-level=error:bframes=4', '-g', '30']],
  ['no B-frames', ['-c:v', 'libx264', '-preset', 'veryfast', '-bf', '0', '-g', '12']],
] as const) {
  test(`${name}: frame n is the n-th frame in presentation order`, () => {
    const ts = encode([...args]);
    const ref = presentationOrder(ts);
    const { byIndex, decodeOrderPts } = numbered(ts, 7);
    assert.equal(byIndex.length, ref.length, 'every frame numbered once');
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(byIndex[i]! - ref[i]!) < 1e-4, `frame ${i}: pts ${byIndex[i]} numbered, ffprobe presents ${ref[i]}`);
    for (let i = 1; i < byIndex.length; i++) assert.ok(byIndex[i]! > byIndex[i - 1]!, `pts increases at frame ${i}`);
    const reordered = decodeOrderPts.some((p, i) => i > 0 && p < decodeOrderPts[i - 1]!);
    assert.equal(reordered, name !== 'no B-frames', 'the decode order differs from presentation order exactly when there are B-frames');
  });
}
