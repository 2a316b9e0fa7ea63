/** The ingest side's pure parts: the chunker, the outage buffer and the epoch estimate (no ffmpeg, no broker). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Chunker } from '../../src/ingest/chunker.js';
import { OutageBuffer, TsWatcher, type Piece } from '../../src/ingest/buffer.js';
import { TS_NULL_PACKET } from '../../src/decode/mpegts.js';
import { EpochEstimator, VIDEO_PID } from '../../src/ingest/capture.js';

/** One TS packet on VIDEO_PID starting a PES with this 90 kHz PTS (payload padded with 0xff). */
function pesStart(pts90k: number): Buffer {
  const b = Buffer.alloc(188, 0xff);
  b[0] = 0x47;
  b[1] = 0x40 | ((VIDEO_PID >> 8) & 0x1f);
  b[2] = VIDEO_PID & 0xff;
  b[3] = 0x10; // payload only
  const pes = [0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5];
  pes.forEach((v, i) => (b[4 + i] = v));
  const p = 13;
  b[p] = 0x21 | (Math.floor(pts90k / 2 ** 30) & 0x07) << 1;
  const mid = Math.floor(pts90k / 2 ** 15) & 0x7fff;
  const lo = pts90k & 0x7fff;
  b[p + 1] = mid >> 7;
  b[p + 2] = ((mid & 0x7f) << 1) | 1;
  b[p + 3] = lo >> 7;
  b[p + 4] = ((lo & 0x7f) << 1) | 1;
  return b;
}

function collectingQueue(): { queue: OutageBuffer; pieces: () => Piece[] } {
  const queue = new OutageBuffer({ maxMs: Infinity, maxBytes: 1 << 30, dropWhenFull: false });
  return {
    queue,
    pieces: () => {
      const out: Piece[] = [];
      for (let p = queue.take(); p; p = queue.take()) out.push(p);
      return out;
    },
  };
}

test('chunker: full chunks handed off whole, a partial one cut when the pipe is empty, in order, the last with fw-eos', async () => {
  const { queue, pieces } = collectingQueue();
  let now = 1_000;
  let epoch: number | undefined;
  const c = new Chunker({ chunkBytes: 100, lingerMs: 0, paced: false, epochWindowMs: 300, estimator: new EpochEstimator(), watcher: new TsWatcher(), queue, onEpoch: (e) => (epoch = e), now: () => now });
  const bytes = Buffer.alloc(350);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i & 0xff;
  assert.equal(await c.write(bytes.subarray(0, 120), 230), true);
  assert.equal(epoch, 1_000, 'a file read as fast as possible: the epoch is when its first bytes came');
  assert.equal(c.pendingBytes, 20, 'more is waiting in the pipe: the partial chunk is kept');
  now = 1_010;
  await c.write(bytes.subarray(120), 0);
  assert.equal(c.pendingBytes, 0, 'nothing more waiting: cut at once (lingerMs 0)');
  await c.end();
  const got = pieces();
  assert.deepEqual(got.map((p) => p.value.length), [100, 100, 100, 50, TS_NULL_PACKET.length]);
  assert.deepEqual(Buffer.concat(got.slice(0, 4).map((p) => p.value)), bytes, 'the bytes, in order, none lost or repeated');
  assert.deepEqual(got.map((p) => p.eos), [false, false, false, false, true], 'the last bytes already left: a null packet carries fw-eos');
  assert.equal(c.seq, 5);
});

test('chunker: nothing written, nothing ended; a closed queue ends the write', async () => {
  const { queue, pieces } = collectingQueue();
  const c = new Chunker({ chunkBytes: 100, lingerMs: 0, paced: false, epochWindowMs: 300, estimator: new EpochEstimator(), watcher: new TsWatcher(), queue });
  await c.end();
  assert.equal(pieces().length, 0, 'no session, no fw-eos record');
  queue.close();
  assert.equal(await c.write(Buffer.alloc(250), 0), false, 'the sender failed: the read loop stops');
});

test('chunker: with lingerMs a partial chunk waits for more bytes, then goes out after lingerMs of nothing', async () => {
  const { queue, pieces } = collectingQueue();
  const c = new Chunker({ chunkBytes: 1000, lingerMs: 20, paced: false, epochWindowMs: 300, estimator: new EpochEstimator(), watcher: new TsWatcher(), queue });
  await c.write(Buffer.alloc(10), 0);
  await c.write(Buffer.alloc(10), 0);
  assert.equal(queue.length, 0, 'within lingerMs: kept');
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(pieces().map((p) => p.value.length), [20], 'one chunk of both reads');
  c.stop();
  await c.write(Buffer.alloc(10), 0);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(queue.length, 0, 'stopping: the last bytes wait for the fw-eos record');
  await c.end();
  assert.deepEqual(pieces().map((p) => [p.value.length, p.eos]), [[10, true]]);
});

test('chunker, paced source: the epoch is the estimate over the window, not the first bytes', async () => {
  const { queue } = collectingQueue();
  let now = 10_000;
  let epoch: number | undefined;
  const c = new Chunker({ chunkBytes: 188 * 50, lingerMs: 0, paced: true, epochWindowMs: 300, estimator: new EpochEstimator(), watcher: new TsWatcher(), queue, onEpoch: (e) => (epoch = e), now: () => now });
  // Frame k (40 ms apart) arrives 30 ms after capture, except the first, which arrives 90 ms late.
  const capture0 = 9_910;
  for (let k = 0; k < 10; k++) {
    now = capture0 + k * 40 + (k === 0 ? 90 : 30);
    await c.write(pesStart(900_000 + k * 3600), 1);
  }
  assert.equal(epoch, capture0 + 30, 'min over frames of arrival - pts: the late first frame does not set it');
});

test('outage buffer, live: full by stream time drops whole pieces from the oldest end and counts their frames', async () => {
  const b = new OutageBuffer({ maxMs: 1000, maxBytes: 1 << 20, dropWhenFull: true });
  for (let i = 0; i < 30; i++) assert.equal(await b.push({ value: Buffer.alloc(10), at: i * 100, keyStarts: [], frameStarts: [0, 5] }), true);
  assert.equal(b.length, 11, 'pieces within 1000 ms of the newest');
  assert.equal(b.peek()!.at, 1900);
  assert.equal(b.droppedPieces, 19);
  assert.equal(b.droppedFrames, 38);
});

test('outage buffer, file: full by bytes makes push wait until the sender takes a piece (nothing lost)', async () => {
  const b = new OutageBuffer({ maxMs: Infinity, maxBytes: 25, dropWhenFull: false });
  await b.push({ value: Buffer.alloc(10), at: 0, keyStarts: [], frameStarts: [] });
  await b.push({ value: Buffer.alloc(10), at: 1, keyStarts: [], frameStarts: [] });
  assert.equal(b.hasRoom(10), false);
  let pushed = false;
  const p = b.push({ value: Buffer.alloc(10), at: 2, keyStarts: [], frameStarts: [] }).then((ok) => (pushed = ok));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(pushed, false, 'waits for room');
  b.take();
  await p;
  assert.equal(pushed, true);
  assert.equal(b.length, 2);
  assert.equal(b.droppedPieces, 0);
  b.close();
  assert.equal(await b.push({ value: Buffer.alloc(1), at: 3, keyStarts: [], frameStarts: [] }), false, 'closed');
});

test('epoch estimate: B-frame order, and across the 33-bit pts wrap, never later than the true capture', () => {
  const e = new EpochEstimator();
  const WRAP = 2 ** 33;
  const start = WRAP - 3 * 3600; // wraps after three frames
  // Decode order I P B B (display 0 3 1 2), each sent when captured + 20 ms, the P ahead of its Bs.
  const epoch = 50_000;
  const display = [0, 3, 1, 2, 6, 4, 5];
  for (const [i, d] of display.entries()) {
    const sentAt = epoch + Math.max(...display.slice(0, i + 1)) * 40 + 20;
    const data = pesStart((start + d * 3600) % WRAP);
    e.observe(data, sentAt);
  }
  assert.equal(e.frames, display.length);
  assert.ok(e.epochMs! <= epoch + 20, `estimate ${e.epochMs} later than capture + the 20 ms it took`);
  assert.equal(e.epochMs, epoch + 20);
});
