/** Load shedding and frame numbering on a fake clock: pure decisions, no decoder. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FEED, LATE, SHED, ShedPolicy } from '../../src/decode/shedding.js';
import { FrameNumbering } from '../../src/decode/numbering.js';

const settings = { budgetMs: 250, shedAfterBudgets: 2, freshFraction: 0.5, relaxAfterMs: 2000, giveUpAfterMs: 5000 };

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

test('numbering from 0 in the order frames appear', () => {
  const n = new FrameNumbering();
  assert.deepEqual([n.assign(1.4), n.assign(1.52), n.assign(1.44)], [0, 1, 2]);
  assert.equal(n.doneBelow, 0);
});

test('a resume point with a pts: frames before it in the chunk are not numbered again', () => {
  const n = new FrameNumbering({ index: 40, pts: 3.0, next: 43 });
  assert.equal(n.assign(2.92), -1);
  assert.equal(n.assign(2.96), -1);
  assert.equal(n.assign(3.00003), 40, 'within a 90 kHz tick');
  assert.equal(n.assign(3.04), 41);
  assert.equal(n.doneBelow, 43);
  assert.equal(n.assign(2.5), 42, 'once placed, every frame is numbered (B-frames come out of order)');
});

test('a resume point without a pts: the first frame starting in the chunk gets its index', () => {
  const n = new FrameNumbering({ index: 7, pts: null, next: 7 });
  assert.equal(n.assign(9.9), 7);
  assert.equal(n.next, 8);
});
