/**
 * Our streaming MPEG-TS demuxer against what ffprobe (real ffmpeg) reports for real x264 streams:
 * every frame's pts, dts, keyframe flag and size, with and without B-frames, with and without PES
 * lengths, for chunks cut at arbitrary byte positions; frames spanning chunks; a session that
 * ends inside a frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TsDemuxer, leadingDelimiterBytes } from '../../src/decode/mpegts.js';

const FPS = 25;
const GOP = 10;

interface Probed {
  pts: number;
  dts: number;
  key: boolean;
  size: number;
  pos: number;
}

interface Found {
  pts: number;
  dts: number;
  key: boolean;
  size: number;
  seq: number;
  disposable: boolean;
}

function encode(extra: string[], codec = 'libx264'): { ts: Buffer; frames: Probed[] } {
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-ts-'));
  try {
    const file = path.join(dir, 'v.ts');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=s=320x240:r=${FPS}:d=3`, '-c:v', codec, '-preset', 'veryfast', '-g', String(GOP), ...extra, '-f', 'mpegts', file]);
    const csv = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,dts_time,size,pos,flags', '-of', 'compact=p=0:nk=0', file], { encoding: 'utf8' });
    const frames = csv
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        const f = Object.fromEntries(l.split('|').map((kv) => kv.split('=') as [string, string]));
        return { pts: Number(f.pts_time), dts: Number(f.dts_time), key: f.flags!.includes('K'), size: Number(f.size), pos: Number(f.pos) };
      });
    return { ts: readFileSync(file), frames };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function demux(ts: Buffer, chunkBytes: number | number[], flush = true): { found: Found[]; d: TsDemuxer } {
  const d = new TsDemuxer();
  const found: Found[] = [];
  const out = (au: { data: Buffer; pts: number; dts: number; key: boolean; seq: number; disposable: boolean }) =>
    found.push({ pts: au.pts, dts: au.dts, key: au.key, size: au.data.length, seq: au.seq, disposable: au.disposable });
  const sizes = Array.isArray(chunkBytes) ? chunkBytes : [chunkBytes];
  for (let at = 0, seq = 0; at < ts.length; seq++) {
    const n = sizes[seq % sizes.length]!;
    d.push(ts.subarray(at, at + n), seq, String(1000 + seq), out);
    at += n;
  }
  if (flush) d.flush(out);
  return { found, d };
}

const close = (a: number, b: number) => Math.abs(a - b) < 1e-6;

function assertMatches(found: Found[], frames: Probed[], chunkBytes?: number, exactSizes = true): void {
  assert.equal(found.length, frames.length, 'one access unit per ffprobe packet');
  for (let i = 0; i < frames.length; i++) {
    const f = found[i]!;
    const p = frames[i]!;
    assert.ok(close(f.pts, p.pts), `frame ${i}: pts ${f.pts} vs ${p.pts}`);
    assert.ok(close(f.dts, p.dts), `frame ${i}: dts ${f.dts} vs ${p.dts}`);
    assert.equal(f.key, p.key, `frame ${i}: keyframe flag`);
    if (exactSizes) assert.equal(f.size, p.size, `frame ${i}: size`);
    // ffprobe's pos is the TS packet where the frame's PES starts: the chunk that holds it.
    if (chunkBytes) assert.equal(f.seq, Math.floor(p.pos / chunkBytes), `frame ${i}: chunk of its start`);
  }
}

const plain = encode(['-tune', 'zerolatency']);
const hevc = encode(['-tune', 'zerolatency', '-x265-params', 'log-level=error', '-omit_video_pes_length', '0'], 'libx265');
const withLengths = encode(['-tune', 'zerolatency', '-omit_video_pes_length', '0']);
const bframes = encode(['-bf', '2']);

test('the whole stream at once: every frame as ffprobe reports it (pts, dts, keyframes, sizes)', () => {
  assert.equal(plain.frames.length, 3 * FPS);
  assert.equal(plain.frames.filter((f) => f.key).length, Math.ceil((3 * FPS) / GOP));
  const { found, d } = demux(plain.ts, plain.ts.length);
  assertMatches(found, plain.frames);
  assert.equal(d.codec, 'h264');
  assert.equal(d.damaged, 0);
});

for (const size of [1000, 4096, 1321, 65536]) {
  test(`chunks cut every ${size} bytes: the same frames, each from the chunk its PES starts in`, () => {
    assertMatches(demux(plain.ts, size).found, plain.frames, size);
    assertMatches(demux(withLengths.ts, size).found, withLengths.frames, size);
    assertMatches(demux(bframes.ts, size).found, bframes.frames, size);
  });
}

test('chunks of mixed sizes down to one byte (TS packets and PES headers split across chunks)', () => {
  assertMatches(demux(withLengths.ts, [1, 187, 189, 7, 2000, 3]).found, withLengths.frames);
});

test('B-frames: pts and dts differ, frames come in decode order, non-reference frames are disposable', () => {
  const { found } = demux(bframes.ts, 4096);
  assertMatches(found, bframes.frames, 4096);
  assert.ok(found.some((f) => !close(f.pts, f.dts)), 'some frame has pts ≠ dts');
  assert.ok(found.some((f, i) => i > 0 && f.pts < found[i - 1]!.pts), 'decode order differs from presentation order');
  const disposable = found.filter((f) => f.disposable);
  assert.ok(disposable.length > 0, 'x264 B-frames without b-pyramid references are disposable');
  assert.ok(disposable.every((f) => !f.key));
  assert.equal(demux(plain.ts, 4096).found.filter((f) => f.disposable).length, 0, 'P-frames of a zerolatency stream are all references');
});

test('with PES lengths a frame is complete as soon as its last packet arrives; without, at the next frame', () => {
  const timeline = (ts: Buffer) => {
    // Push one TS packet at a time; note after which packet each frame came out.
    const d = new TsDemuxer();
    const at: number[] = [];
    for (let p = 0; p < ts.length; p += 188) d.push(ts.subarray(p, p + 188), p / 188, String(p), () => at.push(p));
    return at;
  };
  const starts = (frames: Probed[]) => frames.map((f) => f.pos);
  const lenAt = timeline(withLengths.ts);
  const lenStarts = starts(withLengths.frames);
  for (let i = 0; i + 1 < lenStarts.length; i++) assert.ok(lenAt[i]! < lenStarts[i + 1]!, `frame ${i} out before frame ${i + 1} starts`);
  const plainAt = timeline(plain.ts);
  const plainStarts = starts(plain.frames);
  for (let i = 0; i + 1 < plainStarts.length; i++) assert.equal(plainAt[i], plainStarts[i + 1], `frame ${i} out when frame ${i + 1} starts`);
});

test('a session that ends inside a frame: a frame shorter than its PES length is dropped as damaged (never fed to a decoder); frames before it are whole', () => {
  const last = withLengths.frames.at(-1)!;
  const cut = last.pos + 188 * 3;
  const { found, d } = demux(withLengths.ts.subarray(0, cut), 4096);
  assert.equal(found.length, withLengths.frames.length - 1);
  assertMatches(found, withLengths.frames.slice(0, -1));
  assert.equal(d.damaged, 1, 'the cut frame is counted as damaged');
  // Without PES lengths a cut cannot be told from an end: flush hands out what there is.
  const plainLast = plain.frames.at(-1)!;
  const p = demux(plain.ts.subarray(0, plainLast.pos + 188 * 3), 4096);
  assert.equal(p.found.length, plain.frames.length);
  assert.ok(p.found.at(-1)!.size < plainLast.size && p.found.at(-1)!.size > 0, 'the cut frame is shorter');
  // Without flushing, a stream without PES lengths holds its last frame back.
  assert.equal(demux(plain.ts, 4096, false).found.length, plain.frames.length - 1);
});

test('a stream joined mid-way (resume): bytes before the first PES start are skipped, the rest as ffprobe says', () => {
  const k = withLengths.frames.findIndex((f, i) => i > 0 && f.key);
  const from = withLengths.frames[k]!.pos - 1000; // inside the previous frame, not on a packet boundary
  const { found } = demux(withLengths.ts.subarray(from), 4096);
  // The first frame found is the first one whose PES starts after the cut.
  const expected = withLengths.frames.filter((f) => f.pos >= from);
  assertMatches(found, expected);
});

test('every frame starts with an access unit delimiter (so the decoder feed can end each frame with the next one)', () => {
  const d = new TsDemuxer();
  let without = 0;
  d.push(plain.ts, 0, '0', (au) => void (leadingDelimiterBytes(au.data, 'h264') === 6 ? 0 : without++));
  assert.equal(without, 0);
});

test('H.265 in MPEG-TS: the codec from the PMT, every frame and IRAP keyframe as ffprobe reports them', () => {
  assert.ok(hevc.frames.filter((f) => f.key).length >= 2, 'the H.265 stream has keyframes');
  const { found, d } = demux(hevc.ts, 4096);
  assert.equal(d.codec, 'hevc');
  // ffmpeg's HEVC parser moves a byte between its first packets; the PES payloads add up the same.
  assertMatches(found, hevc.frames, 4096, false);
  assert.equal(found.reduce((n, f) => n + f.size, 0), hevc.frames.reduce((n, f) => n + f.size, 0));
  assert.ok(found.every((f, i) => Math.abs(f.size - hevc.frames[i]!.size) <= 1));
});
