import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClipAssembler } from '../../src/batch/clips.js';
import type { Frame } from '../../src/core/frame.js';

// Frames of 2 bytes each; a frame's pixels are [index, index] so a clip's contents show its order.
const FB = 2;
const owner = { framePublished() {}, framesDropped() {} };

function frame(index: number, session = 's1', stream = 'cam'): Frame {
  return {
    stream,
    session,
    index,
    ptsMs: index * 40,
    captureTs: 1_000 + index * 40,
    deadlineTs: 1_250 + index * 40,
    keyframe: index === 0,
    data: Buffer.from([index, index]),
    traceparent: undefined,
    decodedAt: 0,
    owner,
  };
}

/** Feeds frames 0..count-1; returns each clip as [window frames in order, covered indices], and the skipped indices. */
function run(frames: number, stride: number, count: number, end = true) {
  const skipped: number[] = [];
  const a = new ClipAssembler({ frames, stride, frameBytes: FB, skipped: (f) => skipped.push(f.index) });
  const clips: { window: number[]; covered: number[]; index: number; from: number; deadline: number }[] = [];
  const collect = (c: Frame | undefined) => {
    if (!c) return;
    const window: number[] = [];
    for (let j = 0; j < frames; j++) window.push(c.data[j * FB]!);
    clips.push({ window, covered: c.clip!.covered.map((x) => x.index), index: c.index, from: c.clip!.fromFrame, deadline: c.deadlineTs });
  };
  for (let i = 0; i < count; i++) collect(a.add(frame(i)));
  if (end) collect(a.end('cam', 's1'));
  return { clips, skipped, sessions: a.sessions };
}

/** Every index 0..count-1 exactly once across covered and skipped. */
function assertCoversAll(covered: number[], skipped: number[], count: number) {
  const all = [...covered, ...skipped].sort((x, y) => x - y);
  assert.deepEqual(all, Array.from({ length: count }, (_, i) => i));
}

test('non-overlapping windows (stride = frames): each clip labels its own frames', () => {
  const { clips, skipped } = run(4, 4, 8);
  assert.deepEqual(clips.map((c) => c.window), [[0, 1, 2, 3], [4, 5, 6, 7]]);
  assert.deepEqual(clips.map((c) => c.covered), [[0, 1, 2, 3], [4, 5, 6, 7]]);
  assert.deepEqual(clips.map((c) => [c.from, c.index]), [[0, 3], [4, 7]]);
  assert.deepEqual(skipped, []);
});

test('overlapping windows (stride < frames): the first clip labels its whole window, later ones only their new frames', () => {
  const { clips, skipped } = run(4, 2, 9);
  assert.deepEqual(clips.map((c) => c.window), [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [5, 6, 7, 8]]);
  assert.deepEqual(clips.map((c) => c.covered), [[0, 1, 2, 3], [4, 5], [6, 7], [8]], 'frame 8 goes in the session-end clip');
  assertCoversAll(clips.flatMap((c) => c.covered), skipped, 9);
  // A clip's deadline is its last frame's.
  assert.deepEqual(clips.map((c) => c.deadline), [3, 5, 7, 8].map((i) => 1_250 + i * 40));
});

test('gapped windows (stride > frames): frames between windows are skipped (sampled)', () => {
  const { clips, skipped } = run(3, 5, 13);
  assert.deepEqual(clips.map((c) => c.window), [[0, 1, 2], [5, 6, 7], [10, 11, 12]]);
  assert.deepEqual(skipped, [3, 4, 8, 9]);
  assertCoversAll(clips.flatMap((c) => c.covered), skipped, 13);
});

test('session end with stride > frames: the last window pads from its own frames, not across the gap', () => {
  const { clips, skipped } = run(3, 5, 7);
  assert.deepEqual(clips.map((c) => c.window), [[0, 1, 2], [5, 5, 6]]);
  assert.deepEqual(clips.map((c) => [c.from, c.index]), [[0, 2], [5, 6]]);
  assertCoversAll(clips.flatMap((c) => c.covered), skipped, 7);
});

test('stride 1: a clip per frame after the first window', () => {
  const { clips } = run(3, 1, 5, false);
  assert.deepEqual(clips.map((c) => c.window), [[0, 1, 2], [1, 2, 3], [2, 3, 4]]);
  assert.deepEqual(clips.map((c) => c.covered), [[0, 1, 2], [3], [4]]);
});

test('session end: waiting frames get a last clip, padded at the front when the session was short', () => {
  const short = run(4, 4, 2);
  assert.deepEqual(short.clips.map((c) => c.window), [[0, 0, 0, 1]]);
  assert.deepEqual(short.clips.map((c) => c.covered), [[0, 1]]);
  const tail = run(4, 4, 6);
  assert.deepEqual(tail.clips.map((c) => c.window), [[0, 1, 2, 3], [2, 3, 4, 5]], 'the last clip is the last 4 frames');
  assert.deepEqual(tail.clips.map((c) => c.covered), [[0, 1, 2, 3], [4, 5]]);
  const exact = run(4, 4, 8);
  assert.equal(exact.clips.length, 2, 'nothing waiting at the end: no extra clip');
  assert.equal(exact.sessions, 0, 'the ended session is forgotten');
});

test('sessions and streams have separate windows', () => {
  const a = new ClipAssembler({ frames: 2, stride: 2, frameBytes: FB, skipped: () => {} });
  assert.equal(a.add(frame(0, 's1')), undefined);
  assert.equal(a.add(frame(0, 's1', 'other')), undefined);
  assert.equal(a.add(frame(0, 's2')), undefined);
  const c = a.add(frame(1, 's1'));
  assert.ok(c);
  assert.equal(c.session, 's1');
  assert.deepEqual(c.clip!.covered.map((x) => x.index), [0, 1]);
  assert.equal(a.sessions, 3);
  assert.equal(a.end('cam', 's2')?.clip?.covered.length, 1);
  assert.equal(a.end('cam', 's2'), undefined, 'ending twice is harmless');
  assert.equal(a.sessions, 2);
});

test('covered frames keep their own capture times', () => {
  const a = new ClipAssembler({ frames: 3, stride: 3, frameBytes: FB, skipped: () => {} });
  a.add(frame(0));
  a.add(frame(1));
  const c = a.add(frame(2))!;
  assert.deepEqual(c.clip!.covered.map((x) => x.captureTs), [1_000, 1_040, 1_080]);
  assert.equal(c.captureTs, 1_080);
});
