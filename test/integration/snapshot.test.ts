/**
 * Alert snapshots against real ffmpeg (no Kafka): an x264 stream with B-frames (pyramid, GOP 12)
 * whose every frame has its own colour (a cycle of 5), cut into 3000-byte chunks as `ingest`
 * does. A chunk history over those chunks hands the Snapshotter what the Kafka source would;
 * each snapshot must be exactly the alert's `atFrame` (its colour differs from both neighbours),
 * from `atFrame`'s own keyframe and, for a record without it, from the clip's. Then what becomes
 * of alerts whose snapshot cannot be made: chunks gone (failed, counted), a stale alert with no
 * frame (none), a full queue (skipped), and bytes ffmpeg cannot decode (failed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TsDemuxer, type AccessUnit } from '../../src/decode/mpegts.js';
import { Snapshotter } from '../../src/clip/snapshots.js';
import { decodeSnapshot } from '../../src/clip/snapshot.js';
import { snapshotsSchema } from '../../src/clip/config.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import type { AlertRecord, SnapshotRecord } from '../../src/core/events.js';
import type { ChunkHistory, SessionChunks, SessionChunksQuery } from '../../src/core/source.js';
import type { Colour } from '../helpers/colours.js';
import { RGB } from '../helpers/frames.js';
import { referenceOf } from '../helpers/reference.js';

const CYCLE: Colour[] = ['red', 'green', 'blue', 'yellow', 'magenta'];
const FRAMES = 60;
const CHUNK_BYTES = 3000;
const W = 160;
const H = 120;

interface Stream {
  chunks: { seq: number; offset: string; value: Buffer }[];
  /** Per frame (presentation order): the chunk its access unit began in, and its keyframe. */
  frames: { offset: number; keyFrame: number; keyOffset: number }[];
  expected: Colour[];
}

async function stream(dir: string): Promise<Stream> {
  // Raw RGB frames, each its own colour: lavfi's concat of 1-frame segments breaks the frame rate.
  const expected = Array.from({ length: FRAMES }, (_, i) => CYCLE[i % CYCLE.length]!);
  const raw = Buffer.alloc(FRAMES * W * H * 3);
  for (let f = 0; f < FRAMES; f++) {
    const [r, g, b] = RGB[expected[f]!]!;
    for (let p = f * W * H * 3; p < (f + 1) * W * H * 3; p += 3) raw.set([r, g, b], p);
  }
  const file = path.join(dir, 'v.ts');
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${W}x${H}`, '-r', '25', '-i', 'pipe:0', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '3', '-b-pyramid', 'normal', '-g', '12', '-sc_threshold', '0', '-omit_video_pes_length', '0', '-f', 'mpegts', file], { input: raw });
  const bytes = await readFile(file);
  const chunks: Stream['chunks'] = [];
  for (let p = 0, seq = 0; p < bytes.length; p += CHUNK_BYTES, seq++) chunks.push({ seq, offset: String(seq), value: bytes.subarray(p, p + CHUNK_BYTES) });
  const units: { pts: number; offset: number; key: boolean }[] = [];
  const found = (au: AccessUnit): void => void units.push({ pts: au.pts, offset: Number(au.offset), key: au.key });
  const demux = new TsDemuxer();
  for (const c of chunks) demux.push(c.value, c.seq, c.offset, found);
  demux.flush(found);
  units.sort((a, b) => a.pts - b.pts);
  assert.equal(units.length, FRAMES);
  let key = { frame: 0, offset: 0 };
  const frames = units.map((u, n) => {
    if (u.key) key = { frame: n, offset: u.offset };
    return { offset: u.offset, keyFrame: key.frame, keyOffset: key.offset };
  });
  return { chunks, frames, expected };
}

/** The chunks as a partition would give them back: from `fromOffset` through `toOffset` and `tailChunks` more. */
function history(s: Stream, reads: SessionChunksQuery[] = []): ChunkHistory {
  return {
    readSession: async (q): Promise<SessionChunks | string> => {
      reads.push(q);
      const from = Number(q.fromOffset);
      const to = Number(q.toOffset) + q.tailChunks;
      return { chunks: s.chunks.filter((c) => Number(c.offset) >= from && Number(c.offset) <= to) };
    },
  };
}

function firing(s: Stream, atFrame: number, fields: Partial<AlertRecord> = {}): AlertRecord {
  const f = s.frames[atFrame]!;
  return {
    type: 'alert', id: `r:cam:${atFrame}:${Math.random()}`, rule: 'r', stream: 'cam', session: 's1', state: 'firing', severity: 'warning',
    fromFrame: Math.max(0, atFrame - 10), atFrame, captureTs: 1000 + atFrame * 40, publishedTs: 0,
    partition: 0, offset: f.offset, keyFrame: f.keyFrame, keyOffset: f.keyOffset, clipFrame: 0, clipOffset: 0, ...fields,
  };
}

async function colourOf(dir: string, jpegBase64: string): Promise<Colour[]> {
  const file = path.join(dir, `s-${Math.random()}.jpg`);
  await writeFile(file, Buffer.from(jpegBase64, 'base64'));
  return (await referenceOf(file)).classes;
}

const config = (fields: Record<string, unknown> = {}) => snapshotsSchema.parse(fields);
const counted = async (m: Metrics, outcome: string) => (await m.snapshots.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;

test("each snapshot is exactly its alert's atFrame, decoded from atFrame's keyframe (or the clip's), past B-frame reordering", { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'fw-snap-'));
  try {
    const s = await stream(dir);
    const published: SnapshotRecord[] = [];
    const metrics = new Metrics();
    const snapper = new Snapshotter({ config: config(), metrics, ffmpegPath: 'ffmpeg', publish: (r) => published.push(r) });
    const reads: SessionChunksQuery[] = [];
    snapper.history = history(s, reads);
    // Keyframes (GOP 12) and frames B-frame reordering moves around, in several GOPs.
    const at = [0, 11, 12, 13, 25, 30, 47, 59];
    const alerts = at.map((n) => firing(s, n));
    // Without atFrame's keyframe (a record from before it was added): from the clip's start.
    const old = firing(s, 38, { keyFrame: undefined, keyOffset: undefined });
    snapper.offer([...alerts, old]);
    for (const a of [...alerts, old]) {
      const o = await snapper.snapshotOf(a.id, Date.now() + 30_000);
      assert.ok(o.snapshot, `frame ${a.atFrame}: ${o.missing}`);
      assert.equal(o.snapshot.frame, a.atFrame);
      assert.deepEqual([o.snapshot.width, o.snapshot.height], [160, 120]);
      assert.deepEqual(await colourOf(dir, o.snapshot.jpeg), [s.expected[a.atFrame]], `frame ${a.atFrame} (keyframe ${a.keyFrame ?? a.clipFrame})`);
    }
    assert.deepEqual(published.map((p) => p.id), [...alerts, old].map((a) => a.id), 'published in the order offered');
    // Each read starts at the keyframe the record names and ends at atFrame's chunk (+1).
    assert.deepEqual(reads.map((q) => [q.fromOffset, q.toOffset, q.tailChunks]), [...alerts, old].map((a) => [String(a.keyOffset ?? a.clipOffset), String(a.offset), 1]));
    assert.equal(await counted(metrics, 'made'), at.length + 1);
    assert.ok((await metrics.snapshotCpuSeconds.get()).values[0]!.value > 0, "the children's CPU time is counted");
    // Offered again (a firing record re-sent after a restart): no second snapshot.
    snapper.offer([alerts[0]!]);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(published.length, at.length + 1);
    snapper.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an alert whose snapshot cannot be made: failed (counted), none, skipped, timeout; never an exception', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'fw-snap-'));
  try {
    const s = await stream(dir);
    const metrics = new Metrics();
    const published: SnapshotRecord[] = [];
    const snapper = new Snapshotter({ config: config({ queueSize: 2 }), metrics, ffmpegPath: 'ffmpeg', publish: (r) => published.push(r) });
    // Without a chunk history (no source can read its chunks back) nothing is made or expected.
    const early = firing(s, 20);
    snapper.offer([early]);
    assert.deepEqual(await snapper.snapshotOf(early.id, Date.now() + 1000), { missing: 'none' });

    let gone = true;
    const real = history(s);
    snapper.history = { readSession: async (q) => (gone ? "the first chunk (partition 0, offset 3) is no longer on 'video.chunks': the topic's retention deleted it" : real.readSession(q)) };
    const lost = firing(s, 20);
    const stale = firing(s, 0, { atFrame: -1, fromFrame: -1, label: undefined });
    const resolved = { ...firing(s, 30), state: 'resolved' as const };
    snapper.offer([lost, stale, resolved]);
    assert.deepEqual(await snapper.snapshotOf(lost.id, Date.now() + 10_000), { missing: 'failed' });
    assert.deepEqual(await snapper.snapshotOf(stale.id, Date.now() + 10_000), { missing: 'none' }, 'a stale alert with no frame has no snapshot');
    assert.deepEqual(await snapper.snapshotOf(resolved.id, Date.now() + 10_000), { missing: 'none' }, 'resolved records get none');
    assert.equal(await counted(metrics, 'failed'), 1);

    // Queue of 2: one being made, two waiting, the fourth skipped (counted).
    gone = false;
    const four = [40, 41, 42, 43].map((n) => firing(s, n));
    snapper.offer(four);
    assert.deepEqual(await snapper.snapshotOf(four[3]!.id, Date.now() + 10_000), { missing: 'skipped' });
    assert.deepEqual(await snapper.snapshotOf(four[2]!.id, Date.now()), { missing: 'timeout' }, 'not made yet, and the deadline has passed');
    for (const a of four.slice(0, 3)) assert.ok((await snapper.snapshotOf(a.id, Date.now() + 30_000)).snapshot, `frame ${a.atFrame}`);
    assert.equal(await counted(metrics, 'skipped'), 1);
    assert.equal(published.length, 3);
    snapper.close();
    // After close nothing more is made; what is asked for is missing.
    const late = firing(s, 50);
    snapper.offer([late]);
    assert.deepEqual(await snapper.snapshotOf(late.id, Date.now() + 1000), { missing: 'none' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('ffmpeg given bytes it cannot decode, or fewer frames than asked for, says so', { timeout: 30_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'fw-snap-'));
  try {
    const s = await stream(dir);
    const o = { ffmpegPath: 'ffmpeg', maxWidth: 640, quality: 4, timeoutMs: 10_000 };
    const garbage = await decodeSnapshot(Buffer.alloc(50_000, 0x47), 0, o);
    assert.equal(typeof garbage, 'string');
    const all = Buffer.concat(s.chunks.map((c) => c.value));
    const past = await decodeSnapshot(all, FRAMES + 5, o);
    assert.match(String(past), /no frame 65 after the keyframe/);
    const missing = await decodeSnapshot(all, 0, { ...o, ffmpegPath: path.join(dir, 'no-such-ffmpeg') });
    assert.match(String(missing), /spawn-failed/);
    // Scaled to maxWidth, aspect kept.
    const small = await decodeSnapshot(all, 3, { ...o, maxWidth: 80 });
    assert.ok(typeof small !== 'string');
    assert.deepEqual([small.width, small.height], [80, 60]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
