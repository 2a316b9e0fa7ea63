/** Thumbnails (made only when wanted, ≤ 1 a second per stream, a real JPEG), the JPEG encoder, and `tail` lines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import jpeg from 'jpeg-js';
import { execFileSync } from 'node:child_process';
import { Thumbnailer, downscaleRgb } from '../../src/dashboard/thumbs.js';
import { JpegEncoder } from '../../src/dashboard/jpeg.js';
import { formatMessage } from '../../src/tail/format.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import type { Frame, FrameOwner } from '../../src/core/frame.js';

const owner: FrameOwner = { framePublished() {}, framesDropped() {} };
function solidFrame(stream: string, index: number, rgb: [number, number, number], w = 224, h = 224): Frame {
  const data = Buffer.alloc(w * h * 3);
  for (let p = 0; p < data.length; p += 3) data.set(rgb, p);
  return { stream, session: 's', index, ptsMs: index * 40, captureTs: index * 40, deadlineTs: 0, keyframe: false, data, traceparent: undefined, decodedAt: 0, owner };
}

test('downscaleRgb averages boxes', () => {
  const src = Buffer.from([0, 0, 0, 255, 255, 255, 10, 20, 30, 30, 40, 50]); // 2×2 → 1×1
  const out = downscaleRgb(src, 2, 2, 2);
  assert.deepEqual([...out.data], [Math.trunc((0 + 255 + 10 + 30) / 4), Math.trunc((0 + 255 + 20 + 40) / 4), Math.trunc((0 + 255 + 30 + 50) / 4)]);
});

test('the JPEG encoder: jpeg-js and ffmpeg decode its output close to the input', () => {
  const w = 100;
  const h = 60; // not multiples of 8: edge blocks are padded
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rgb.set([x * 2, y * 4, x < 50 ? 255 : 0], (y * w + x) * 3);
  const file = new JpegEncoder(90).encode(rgb, w, h);
  assert.deepEqual([...file.subarray(0, 2)], [0xff, 0xd8]);
  assert.deepEqual([...file.subarray(-2)], [0xff, 0xd9]);
  const img = jpeg.decode(file, { useTArray: true });
  assert.equal(img.width, w);
  assert.equal(img.height, h);
  let err = 0;
  for (let i = 0; i < w * h; i++) for (let k = 0; k < 3; k++) err += Math.abs(img.data[i * 4 + k]! - rgb[i * 3 + k]!);
  assert.ok(err / (w * h * 3) < 2, `mean error ${err / (w * h * 3)}`);
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-f', 'jpeg_pipe', '-i', '-', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { input: file });
  assert.equal(raw.length, w * h * 3);
  let e2 = 0;
  for (let i = 0; i < raw.length; i++) e2 += Math.abs(raw[i]! - rgb[i]!);
  assert.ok(e2 / raw.length < 2, `ffmpeg: mean error ${e2 / raw.length}`);
});

test('thumbnails: nothing unless wanted, then at most one a second per stream, a JPEG of the frame', async () => {
  const sent: { stream: string; msg: Record<string, unknown> }[] = [];
  let wanted = false;
  const metrics = new Metrics();
  const t = new Thumbnailer({ wantsThumb: () => wanted, sendThumb: (stream, text) => sent.push({ stream, msg: JSON.parse(text) as Record<string, unknown> }) }, metrics, 1000);
  t.offer(solidFrame('cam-1', 0, [255, 0, 0]), 224, 224);
  await new Promise((r) => setImmediate(r));
  assert.equal(sent.length, 0);
  wanted = true;
  for (let i = 1; i <= 20; i++) t.offer(solidFrame('cam-1', i, [255, 0, 0]), 224, 224);
  t.offer(solidFrame('cam-2', 0, [0, 0, 255]), 224, 224);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(sent.map((s) => `${s.stream}#${s.msg.frame}`), ['cam-1#1', 'cam-2#0']);
  const img = jpeg.decode(Buffer.from(String(sent[0]!.msg.jpeg), 'base64'));
  assert.equal(img.width, 112);
  assert.equal(img.height, 112);
  const [r, g, b] = img.data.subarray(0, 3);
  assert.ok(r! > 240 && g! < 15 && b! < 15, `red pixel, got ${r},${g},${b}`);
  assert.equal((await metrics.thumbnails.get()).values[0]?.value, 2);
});

test('tail lines: labels, events and alerts, coloured only when asked', () => {
  const label = { type: 'label', stream: 'cam-1', session: 's', frame: 42, ptsMs: 1680, captureTs: 1764120000123, model: 'colour_probe', labels: [{ label: 'red', score: 0.97 }, { label: 'magenta', score: 0.02 }], publishedTs: 1764120000180 };
  assert.equal(formatMessage(label, false), '01:20:00.123 cam-1 #42 red 0.97 (magenta 0.02) colour_probe 57 ms');
  assert.match(formatMessage(label, true)!, /\x1b\[31mred\x1b\[0m/);
  const alert = { type: 'alert', id: 'r:cam-1:1', rule: 'red-on-air', stream: 'cam-1', session: 's', state: 'firing', severity: 'warning', label: 'red', score: 0.97, fromFrame: 30, atFrame: 40, captureTs: 1764120000123, publishedTs: 0 };
  assert.equal(formatMessage(alert, false), '01:20:00.123 cam-1 ALERT FIRING red-on-air [warning] red 0.97 frames #30..#40 id r:cam-1:1');
  assert.match(formatMessage({ type: 'stream', stream: 'cam-1', session: 's', state: 'stalled', ts: 1764120000123 }, false)!, /cam-1 stream stalled session s/);
  assert.match(formatMessage({ type: 'change', stream: 'cam-1', from: 'blue', to: 'red', atFrame: 3, captureTs: 0 }, false)!, /change blue → red at #3/);
  assert.equal(formatMessage({ type: 'stats', stream: 'cam-1' }, false), undefined);
});
