/** Load shedding and frame numbering on a fake clock: pure decisions, no decoder. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CATCH_UP_RETRY_MS, FEED, LATE, SHED, ShedPolicy, catchUpTimeMs } from '../../src/decode/shedding.js';
import { FrameNumbering, type Unnumbered } from '../../src/decode/numbering.js';

const settings = { budgetMs: 250, shedAfterBudgets: 2, freshFraction: 0.5, relaxAfterMs: 2000, giveUpAfterMs: 5000, catchUpMs: 1000 };

test('fresh frames are fed; a frame past its budget starts shedding, which lasts until a fresh keyframe', () => {
  const p = new ShedPolicy(settings);
  const now = 10_000;
  assert.equal(p.decide(now, now - 100, false, 0), FEED);
  assert.equal(p.decide(now, now - 251, false, 0), LATE, 'a little late: decoded for the frames that reference it, not classified');
  assert.equal(p.decide(now, now - 500, false, 0), LATE);
  assert.equal(p.episodes, 0);
  assert.equal(p.decide(now, now - 501, false, 0), SHED, 'more than two budgets late on arrival');
  assert.equal(p.episodes, 1);
  assert.equal(p.decide(now, now - 10, false, 0), SHED, 'a fresh P-frame cannot be decoded without its GOP');
  assert.equal(p.decide(now, now - 200, true, 0), SHED, 'a keyframe older than half the budget leaves its GOP no room');
  assert.equal(p.decide(now, now - 100, true, 0), FEED, 'a keyframe within half the budget ends it');
  assert.equal(p.shedding, false);
  assert.equal(p.decide(now, now - 50, false, 0), FEED);
  assert.equal(p.episodes, 1);
});

test('a decoder a budget behind sheds even when frames arrive fresh', () => {
  const p = new ShedPolicy(settings);
  assert.equal(p.decide(1000, 990, false, 240), FEED);
  assert.equal(p.decide(1000, 990, false, 260), SHED);
  assert.equal(p.decide(1040, 1030, true, 200), SHED, 'a fresh keyframe, but the decoder is still behind');
  assert.equal(p.decide(1080, 1070, true, 0), FEED, 'the decoder caught up');
});

test('keyframes never that fresh: after 2 s a whole budget will do, after 5 s any keyframe', () => {
  const p = new ShedPolicy(settings);
  const t0 = 50_000;
  assert.equal(p.decide(t0, t0 - 1000, false, 0), SHED);
  assert.equal(p.decide(t0 + 1999, t0 + 1999 - 200, true, 0), SHED);
  assert.equal(p.decide(t0 + 2000, t0 + 2000 - 200, true, 0), FEED, 'relaxed to the whole budget');
  assert.equal(p.decide(t0 + 2040, t0 + 2040 - 900, false, 0), SHED);
  assert.equal(p.episodes, 2);
  assert.equal(p.decide(t0 + 7039, t0 + 7039 - 900, true, 0), SHED);
  assert.equal(p.decide(t0 + 7040, t0 + 7040 - 900, true, 0), FEED, 'gave up waiting: a camera whose clock is off is decoded (and dropped as deadline)');
});

test('a burst after a hiccup: late frames are decoded (LATE) and the stream goes on without shedding', () => {
  const p = new ShedPolicy(settings);
  const ages = [20, 394, 361, 323, 286, 252, 213, 177, 139, 30];
  const got = ages.map((a, i) => p.decide(1000 + i, 1000 + i - a, false, 0));
  assert.deepEqual(got, [FEED, LATE, LATE, LATE, LATE, LATE, FEED, FEED, FEED, FEED]);
  assert.equal(p.episodes, 0);
});

test('a backlog: thousands of stale frames are shed without a decision costing anything but arithmetic', () => {
  const p = new ShedPolicy(settings);
  let fed = 0;
  const now = 1_000_000;
  // 2,000 frames captured 80 s ago at 25 fps, keyframe every 25, arriving within 1 s.
  for (let i = 0; i < 2000; i++) if (p.decide(now + i / 2, now - 80_000 + i * 40, i % 25 === 0, 0) === FEED) fed++;
  assert.equal(fed, 0);
  // Then the live head: the first fresh keyframe is fed.
  assert.equal(p.decide(now + 1000, now + 1000 - 30, false, 0), SHED);
  assert.equal(p.decide(now + 1040, now + 1040 - 30, true, 0), FEED);
});

test('catch-up time: the backlog at the decode cost while new frames keep coming; never when decoding is not faster than the video', () => {
  assert.equal(catchUpTimeMs(400, 40, 2), (10 * 2) / (1 - 2 / 40));
  assert.equal(catchUpTimeMs(400, 40, 40), Infinity);
  assert.equal(catchUpTimeMs(400, 40, Number.NaN), Infinity, 'no measured cost');
  assert.equal(catchUpTimeMs(400, Number.NaN, 2), Infinity, 'no frame interval yet');
});

test('a 10 s GOP whose decoder falls 300 ms behind once catches up by decoding without classifying, and loses no GOP', () => {
  const p = new ShedPolicy(settings);
  const FRAME = 40;
  const COST = 2.5;
  // 25 fps, keyframe every 250 frames; from frame 10 the decoder's oldest frame is 300 ms old,
  // and it drains at 1/COST frames per ms while frames keep coming.
  const got: number[] = [];
  let lag = 0;
  for (let i = 0; i < 250; i++) {
    const now = 100_000 + i * FRAME;
    if (i === 10) lag = 300;
    const d = p.decide(now, now - 5, i % 250 === 0, lag, FRAME, COST);
    got.push(d);
    lag = Math.max(0, lag - (FRAME - COST) * 2); // a decoder not classifying runs ahead
  }
  assert.equal(p.episodes, 0, 'never skipped ahead');
  assert.equal(p.catchUps, 1);
  const late = got.filter((d) => d === LATE).length;
  assert.ok(late >= 1 && late <= 25, `${late} frames decoded without classifying: at most a second of a 250-frame GOP`);
  assert.equal(got.filter((d) => d === SHED).length, 0);
  assert.equal(got[got.length - 1], FEED);
});

test('a catch-up that is not done within catchUpMs of real time skips ahead (CPU time understated the cost)', () => {
  const p = new ShedPolicy(settings);
  const t0 = 200_000;
  // The measured cost says 300 ms behind takes ~20 ms, but the decoder never gets faster.
  assert.equal(p.decide(t0, t0 - 5, false, 300, 40, 2.5), LATE);
  assert.equal(p.decide(t0 + 600, t0 + 600 - 5, false, 500, 40, 2.5), LATE);
  assert.equal(p.decide(t0 + 900, t0 + 900 - 5, false, 600, 40, 2.5), LATE, '600 ms behind: ~40 ms to go, 100 ms of the bound left');
  assert.equal(p.decide(t0 + 990, t0 + 990 - 5, false, 600, 40, 2.5), SHED, 'what is left of the catch-up bound is too short');
  assert.equal(p.episodes, 1);
  assert.equal(p.decide(t0 + 1040, t0 + 1040 - 5, true, 0, 40, 2.5), FEED, 'a fresh keyframe ends it as before');
  // A machine that could not catch up once skips ahead for CATCH_UP_RETRY_MS before trying again.
  assert.equal(p.decide(t0 + 3000, t0 + 3000 - 5, false, 300, 40, 2.5), SHED, 'within the retry pause');
  assert.equal(p.decide(t0 + 3040, t0 + 3040 - 5, true, 0, 40, 2.5), FEED);
  assert.equal(p.decide(t0 + 990 + CATCH_UP_RETRY_MS, t0 + 990 + CATCH_UP_RETRY_MS - 5, false, 300, 40, 2.5), LATE, 'after the pause, a new catch-up with the whole bound');
  assert.equal(p.catchUps, 2);
});

test('a catch-up ends with the room a fresh keyframe gives, not just inside the budget', () => {
  const p = new ShedPolicy(settings);
  assert.equal(p.decide(1000, 995, false, 300, 40, 2.5), LATE);
  assert.equal(p.decide(1040, 1035, false, 200, 40, 2.5), LATE, 'inside the budget, but a frame fed now would miss its deadline');
  assert.equal(p.decide(1080, 1075, false, 120, 40, 2.5), FEED, 'within half the budget: caught up');
  assert.equal(p.decide(1120, 1115, false, 200, 40, 2.5), FEED, 'no catch-up running: inside the budget is fed');
  assert.equal(p.catchUps, 1);
  // A B-frame stream whose own timing keeps each frame ~220 ms in the decoder (never within half
  // the budget): caught up once the decoder holds no more than its reorder depth (+1).
  const b = new ShedPolicy(settings);
  assert.equal(b.decide(1000, 995, false, 300, 40, 2.5, 6), LATE);
  assert.equal(b.decide(1040, 1035, false, 240, 40, 2.5, 3), LATE, 'still 3 frames of backlog');
  assert.equal(b.decide(1080, 1075, false, 225, 40, 2.5, 1), FEED, 'as fresh as the stream can be');
});

test('too far behind to catch up within the bound, or a decoder no faster than the video: skip ahead at once', () => {
  const p = new ShedPolicy(settings);
  // 30 s behind at 2.5 ms a frame: 750 frames ≈ 2 s of decoding, over the 1 s bound.
  assert.equal(p.decide(10_000, 10_000 - 30_000, false, 0, 40, 2.5), SHED);
  const q = new ShedPolicy(settings);
  assert.equal(q.decide(10_000, 10_000 - 5, false, 300, 40, 45), SHED, 'decoding slower than real time never catches up');
  const off = new ShedPolicy({ ...settings, catchUpMs: 0 });
  assert.equal(off.decide(10_000, 10_000 - 5, false, 300, 40, 1), SHED, 'catchUpMs 0: the old rule');
  assert.equal(off.catchUps, 0);
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
