/** Load shedding and frame numbering on a fake clock: pure decisions, no decoder. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FEED, LATE, SHED, ShedPolicy, catchUpMs } from '../../src/decode/shedding.js';
import { FrameNumbering, type Unnumbered } from '../../src/decode/numbering.js';

const settings = { budgetMs: 250, catchUpMs: 1000, giveUpAfterMs: 5000 };
/** 25 fps, 3 ms a frame to decode. */
const F = 40;
const D = 3;

test('catch-up time: the backlog times the decode cost, while more video keeps coming', () => {
  assert.equal(catchUpMs(400, 40, 4), (10 * 4) / 0.9);
  assert.equal(catchUpMs(400, 40, 40), Infinity, 'a decoder no faster than the video never catches up');
  assert.equal(catchUpMs(0, 40, 4), 0);
});

test('a stream a little behind is decoded without classifying (LATE) and never skips ahead', () => {
  const p = new ShedPolicy(settings);
  const now = 10_000;
  assert.equal(p.decide(now, now - 100, false, 0, F, D), FEED);
  assert.equal(p.decide(now, now - 251, false, 0, F, D), LATE, 'past its budget: decoded for the frames that reference it, not classified');
  assert.equal(p.decide(now, now - 5000, false, 0, F, D), LATE, '5 s behind at 3 ms a frame: ~400 ms to catch up');
  assert.equal(p.episodes, 0);
  assert.equal(p.decide(now, now - 50, false, 0, F, D), FEED);
});

test('a backlog too long to decode through within catchUpMs skips ahead, to a keyframe it can catch up from', () => {
  const p = new ShedPolicy(settings);
  const now = 10_000;
  assert.equal(p.decide(now, now - 20_000, false, 0, F, D), SHED, '20 s behind: ~1.6 s of decoding');
  assert.equal(p.episodes, 1);
  assert.equal(p.decide(now, now - 100, false, 0, F, D), SHED, 'a fresh P-frame cannot be decoded without its GOP');
  assert.equal(p.decide(now, now - 15_000, true, 0, F, D), SHED, 'a keyframe still too far behind');
  assert.equal(p.decide(now, now - 2000, true, 0, F, D), LATE, 'a keyframe 2 s behind: decoded through, not classified');
  assert.equal(p.shedding, false);
  assert.equal(p.decide(now, now - 60, false, 0, F, D), FEED);
  assert.equal(p.episodes, 1);
});

test('a decoder that cannot keep up at all skips ahead even when frames arrive fresh', () => {
  const p = new ShedPolicy(settings);
  assert.equal(p.decide(1000, 990, false, 240, F, 45), FEED, 'within budget');
  assert.equal(p.decide(1000, 990, false, 260, F, 45), SHED, 'behind, and 45 ms a frame against 40 ms of video');
  assert.equal(p.decide(1040, 1030, true, 300, F, 45), SHED, 'still behind');
  assert.equal(p.decide(1080, 1070, true, 0, F, 45), FEED, 'the decoder caught up');
});

test('a 10 s GOP that falls 300 ms behind once loses only the late frames, not the rest of its GOP', () => {
  const p = new ShedPolicy(settings);
  // Frame i captured at i*40; a hiccup holds frames 100..107 back until 400 ms after frame 100's capture.
  let lost = 0;
  let skipped = 0;
  for (let i = 0; i < 250; i++) {
    const capture = i * 40;
    const arrive = i >= 100 && i < 108 ? 100 * 40 + 400 + (i - 100) : capture + 20;
    const d = p.decide(arrive, capture, i === 0, 0, F, D);
    if (d !== FEED) lost++;
    if (d === SHED) skipped++;
  }
  assert.equal(skipped, 0);
  assert.ok(lost <= 25, `at most about a second lost (${lost} frames)`);
});

test('a camera whose clock is off: after giveUpAfterMs the next keyframe is decoded whatever its age', () => {
  const p = new ShedPolicy(settings);
  const t0 = 50_000;
  const off = 600_000; // ten minutes: never caught up
  assert.equal(p.decide(t0, t0 - off, false, 0, F, D), SHED);
  assert.equal(p.decide(t0 + 4999, t0 - off, true, 0, F, D), SHED);
  assert.equal(p.decide(t0 + 5000, t0 - off, true, 0, F, D), LATE, 'gave up waiting: decoded (and dropped as deadline)');
});

test('a backlog: thousands of stale frames are shed without a decision costing anything but arithmetic', () => {
  const p = new ShedPolicy(settings);
  const now = 1_000_000;
  // 2,000 frames captured 80 s ago at 25 fps, keyframe every 25, arriving within 1 s.
  const got = Array.from({ length: 2000 }, (_, i) => p.decide(now + i / 2, now - 80_000 + i * 40, i % 25 === 0, 0, F, D));
  assert.equal(got.filter((d) => d === FEED).length, 0, 'nothing classified: all of it is past its budget');
  const first = got.findIndex((d) => d !== SHED);
  // Decoding resumes at the first keyframe close enough to the live head to catch up within 1 s.
  assert.equal(first % 25, 0);
  const behind = now + first / 2 - (now - 80_000 + first * 40);
  assert.ok(catchUpMs(behind, F, D) <= 1000 && catchUpMs(behind + 25 * 40, F, D) > 1000, `resumed ${behind} ms behind`);
  assert.ok(got.slice(first).every((d) => d === LATE), 'then decoded through without classifying');
  assert.equal(p.episodes, 1);
});

/** Numbers every frame of a decode-order sequence of [pts, dts] (in frame intervals). */
function numberAll(frames: [number, number][], resume?: { index: number; pts: number | null; next: number }) {
  const got = new Map<number, number>(); // handle -> index
  const order: number[] = [];
  const n = new FrameNumbering(resume, (u: Unnumbered, index) => {
    got.set(u.handle, index);
    order.push(index);
  });
  const handles = frames.map(([pts, dts]) => n.arrive(pts * 0.04, dts * 0.04, false, 0, '0'));
  n.flush();
  return { n, handles, index: (i: number) => got.get(handles[i]!), order };
}

test('numbering without B-frames: in the order found, each frame numbered as it is found', () => {
  const seen: number[] = [];
  const n = new FrameNumbering(undefined, (_u, index) => seen.push(index));
  for (let i = 0; i < 5; i++) {
    n.arrive(1 + i * 0.04, 1 + i * 0.04, i === 0, 0, '0');
    assert.equal(seen.length, i + 1, 'numbered at once');
  }
  assert.deepEqual(seen, [0, 1, 2, 3, 4]);
  assert.equal(n.reorderDepth, 0);
});

test('numbering with B-frames (x264 b-pyramid): presentation order, each frame known after the reorder depth', () => {
  // Decode order I0 P4 B2 b1 b3 P8 B6 b5 b7; dts two frames behind.
  const pts = [0, 4, 2, 1, 3, 8, 6, 5, 7];
  const frames = pts.map((p, i): [number, number] => [p, i - 2]);
  const seen: number[] = [];
  const n = new FrameNumbering(undefined, (u, index) => seen.push(index * 100 + Math.round(u.pts / 0.04)));
  const known: number[] = [];
  for (const [p, d] of frames) {
    n.arrive(p * 0.04, d * 0.04, false, 0, '0');
    known.push(seen.length);
  }
  // Numbered as soon as a frame with dts ≥ its pts arrived: I0 with B2, b1 at once, B2 with b3, ...
  assert.deepEqual(known, [0, 0, 1, 2, 3, 4, 5, 6, 7]);
  n.flush();
  assert.deepEqual(seen, [0, 101, 202, 303, 404, 505, 606, 707, 808], 'index n is the frame with the n-th pts');
  assert.equal(n.reorderDepth, 2);
});

test('numbering with B-frames: a resume point places its keyframe; frames before it in the chunk are not numbered again', () => {
  // The tail of a GOP (decode order), then the resume keyframe I10 and its b-pyramid: P14 B12 b11 b13.
  const frames: [number, number][] = [[8, 6], [7, 7], [10, 8], [14, 9], [12, 10], [11, 11], [13, 12]];
  const { index, handles } = numberAll(frames, { index: 40, pts: 10 * 0.04, next: 40 });
  assert.deepEqual(handles.slice(0, 2), [-1, -1]);
  assert.deepEqual([2, 5, 4, 6, 3].map(index), [40, 41, 42, 43, 44], 'I10 b11 B12 b13 P14');
});

test('numbering: dts that break the rule (missing, or never reaching pts) still number every frame, in pts order, with a bound', () => {
  const { order, n } = numberAll(Array.from({ length: 100 }, (_, i): [number, number] => [i === 50 ? 49.5 : i, -1000]));
  assert.equal(order.length, 100);
  assert.deepEqual(order, [...order].sort((a, b) => a - b));
  assert.ok(n.forced > 0);
});
