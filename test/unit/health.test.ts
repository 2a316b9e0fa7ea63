/** Stream health with a fake clock: started/stalled/resumed/ended, retention, the 10 s figures. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthTracker } from '../../src/health/tracker.js';
import type { StreamEvent } from '../../src/core/events.js';
import type { LabelRecord } from '../../src/core/frame.js';

function tracker(staleMs = 1000, retentionMs = 5000) {
  let now = 1_000_000;
  const events: StreamEvent[] = [];
  const t = new HealthTracker({ config: { staleMs, retentionMs }, emit: (e) => events.push(e), now: () => now, decoding: (s) => (s === 'cam-1' ? true : undefined) });
  return { t, events, advance: (ms: number) => (now += ms), now: () => now, states: () => events.map((e) => `${e.stream}:${e.state}`) };
}

test('started at the first chunk, stalled after staleMs without one, resumed when chunks come, ended', () => {
  const h = tracker();
  h.t.chunk('cam-1', 's1');
  h.advance(500);
  h.t.chunk('cam-1', 's1');
  h.advance(999);
  h.t.tick();
  assert.deepEqual(h.states(), ['cam-1:started']);
  h.advance(1);
  h.t.tick();
  h.t.tick();
  assert.deepEqual(h.states(), ['cam-1:started', 'cam-1:stalled'], 'stalled once');
  h.advance(3000);
  h.t.chunk('cam-1', 's1');
  h.t.ended('cam-1', 's1', 'eos');
  h.t.ended('cam-1', 's1', 'eos');
  assert.deepEqual(h.states(), ['cam-1:started', 'cam-1:stalled', 'cam-1:resumed', 'cam-1:ended']);
  assert.equal(h.events.at(-1)!.how, 'eos');
  assert.equal(h.events[1]!.ts, h.events[0]!.ts + 1500);
  // An ended stream is not stalled, and is forgotten after the retention time.
  h.advance(4999);
  h.t.tick();
  assert.equal(h.t.size, 1);
  h.advance(1);
  h.t.tick();
  assert.equal(h.t.size, 0);
  assert.equal(h.events.length, 4);
});

test('a new session of a stream ends the old one (replaced) and starts again', () => {
  const h = tracker();
  h.t.chunk('cam-1', 's1');
  h.t.chunk('cam-1', 's2');
  h.t.ended('cam-1', 's1', 'replaced'); // the decode stage's report of the same change is ignored
  assert.deepEqual(h.events.map((e) => `${e.session}:${e.state}${e.how ? `:${e.how}` : ''}`), ['s1:started', 's1:ended:replaced', 's2:started']);
});

test('stats: labelled and dropped per second, p50/p99 over the last 10 s, current and smoothed label', () => {
  const h = tracker(60_000);
  h.t.chunk('cam-1', 's1');
  const rec = (frame: number, latency: number, label = 'red'): LabelRecord => ({ type: 'label', stream: 'cam-1', session: 's1', frame, ptsMs: frame * 40, captureTs: h.now() - latency, model: 'colour_probe', modelVersion: '1', labels: [{ label, score: 0.9 }], publishedTs: h.now() });
  // 20 s at 25 fps: 10 s with 100 ms latency, then 10 s at 20 ms with 5 frames/s dropped.
  let frame = 0;
  for (let s = 0; s < 20; s++) {
    for (let i = 0; i < 25; i++) {
      if (s >= 10 && i % 5 === 0) h.t.dropped('cam-1', 'deadline', 1);
      else h.t.labelled([rec(frame, s < 10 ? 100 : 20 + (i === 1 ? 200 : 0))]);
      frame++;
      h.advance(40);
    }
    h.t.chunk('cam-1', 's1');
    h.t.decoded('cam-1', 'colour_probe');
  }
  h.t.changed('cam-1', 's1', 'blue');
  const [st] = h.t.stats();
  assert.equal(st!.labelledPerSec, 20);
  assert.deepEqual(st!.droppedPerSec, { deadline: 5 });
  assert.equal(st!.p50Ms, 20, 'only the last 10 s');
  assert.equal(st!.p99Ms, 220);
  assert.equal(st!.top?.label, 'red');
  assert.equal(st!.top?.frame, frame - 1);
  assert.equal(st!.smoothed, 'blue');
  assert.equal(st!.health, 'live');
  assert.equal(st!.decoder, 'running');
  assert.equal(st!.model, 'colour_probe');
  assert.equal(st!.sinceChunkMs, 0);
  // Records of another session, or of a stream never seen, are ignored.
  h.t.labelled([{ ...rec(0, 5), session: 'old' }, { ...rec(0, 5), stream: 'ghost' }]);
  assert.equal(h.t.stats().length, 1);
});
