/**
 * The MPEG-TS header scan that load shedding relies on, checked against what ffprobe (real
 * ffmpeg) reports for a real H.264 MPEG-TS stream: frame times, keyframes, and chunks cut at
 * arbitrary byte positions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { scanTs, type TsScan } from '../../src/decode/mpegts.js';

const FPS = 25;
const GOP = 10;

function encode(): { ts: Buffer; frames: { pts: number; pos: number; key: boolean }[] } {
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-ts-'));
  try {
    const file = path.join(dir, 'v.ts');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=s=320x240:r=${FPS}:d=3`, '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', String(GOP), '-f', 'mpegts', file]);
    const csv = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,pos,flags', '-of', 'csv=p=0', file], { encoding: 'utf8' });
    // Lines are "pts_time,pos,flags," (ffprobe's own field order), with blank lines between.
    const frames = csv
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        const [pts, pos, flags] = l.split(',');
        return { pts: Number(pts), pos: Number(pos), key: flags!.includes('K') };
      });
    return { ts: readFileSync(file), frames };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const { ts, frames } = encode();
const keys = frames.filter((f) => f.key);
const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;
const fresh = (): TsScan => ({ keyPts: Number.NaN, firstPts: Number.NaN, lastPts: Number.NaN, minStep: Number.NaN });

test('the whole stream: first and last frame times, frame step and first keyframe as ffprobe reports them', () => {
  assert.equal(frames.length, 3 * FPS);
  assert.equal(keys.length, Math.ceil((3 * FPS) / GOP));
  const s = scanTs(ts, 0, fresh());
  assert.ok(close(s.firstPts, frames[0]!.pts), `first ${s.firstPts} vs ${frames[0]!.pts}`);
  assert.ok(close(s.lastPts, frames.at(-1)!.pts), `last ${s.lastPts} vs ${frames.at(-1)!.pts}`);
  assert.ok(close(s.keyPts, keys[0]!.pts));
  assert.ok(Math.abs(s.minStep - 1 / FPS) < 1e-4, `step ${s.minStep}`);
});

test('a chunk starting at a keyframe packet reports that keyframe; one without a keyframe reports none', () => {
  for (const k of keys) {
    const next = frames.find((f) => f.pos > k.pos)?.pos ?? ts.length;
    const s = scanTs(ts.subarray(k.pos, next), k.pos, fresh());
    assert.ok(close(s.keyPts, k.pts), `keyframe at ${k.pos}: ${s.keyPts} vs ${k.pts}`);
    const after = frames.find((f) => f.pos > k.pos && !f.key)!;
    const end = frames.find((f) => f.pos > after.pos)?.pos ?? ts.length;
    const t = scanTs(ts.subarray(after.pos, end), after.pos, fresh());
    assert.ok(Number.isNaN(t.keyPts), 'no keyframe in a delta frame');
    assert.ok(close(t.firstPts, after.pts));
  }
});

test('chunks cut anywhere: each reports the first keyframe whose packet it holds, and only real frame times', () => {
  for (const size of [1000, 4096, 188 * 7 + 5, 65_536]) {
    let found = 0;
    for (let at = 0; at < ts.length; at += size) {
      const s = scanTs(ts.subarray(at, at + size), at, fresh());
      const whole = keys.find((k) => k.pos >= at && k.pos + 188 <= at + size);
      if (whole) {
        assert.ok(close(s.keyPts, whole.pts), `chunk size ${size} at ${at}: key ${s.keyPts}, want ${whole.pts}`);
        found++;
      } else if (!Number.isNaN(s.keyPts)) {
        // Only a keyframe whose packet starts in the chunk (its header inside, its payload cut).
        assert.ok(keys.some((k) => close(k.pts, s.keyPts) && k.pos >= at && k.pos < at + size), `chunk size ${size} at ${at}: ${s.keyPts} is not a keyframe here`);
      }
      for (const p of [s.firstPts, s.lastPts]) if (!Number.isNaN(p)) assert.ok(frames.some((f) => close(f.pts, p) && f.pos >= at && f.pos < at + size), `chunk size ${size} at ${at}: ${p} is not a frame starting here`);
    }
    assert.ok(found > 0, `chunk size ${size}: no chunk held a keyframe packet`);
  }
});

test('a chunk whose packets are not where the session offset says is resynchronised by the sync pattern', () => {
  const k = keys[1]!;
  // Claim the wrong session offset: the scan must find the packets anyway.
  const s = scanTs(ts.subarray(k.pos - 50, k.pos + 4000), k.pos - 50 + 3, fresh());
  assert.ok(close(s.keyPts, k.pts));
});
