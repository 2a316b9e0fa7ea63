/** The degrade controller on a fake clock, the sampler's degraded rate, and the `degraded` drop field. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DegradeController, degradeOn, degradeSchema, laneCapacityFps, priorityRules, prioritySchema, type Priority, type RateChange, type StreamLoad } from '../../src/batch/degrade.js';
import { DECODE_DEGRADED, KEEP, SKIP, SKIP_DEGRADED, Sampler, samplingRuleSchema } from '../../src/decode/sampling.js';
import { DropPublisher } from '../../src/topology/drops.js';
import { OutputStage } from '../../src/sinks/output.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import type { EventBatch, Sink } from '../../src/core/sink.js';
import type { PipelineEvent } from '../../src/core/events.js';
import type { DropReason, FrameOwner } from '../../src/core/frame.js';
import { topologySchema } from '../../src/config/topology.js';

const TICK = 250;
const settings = (o: object = {}) => ({ ...degradeSchema.parse({ enabled: true, intervalMs: TICK, minFps: 2, ...o }), cores: 2 });

/** 16 cameras at 25 fps: 4 critical, 8 normal, 4 background. */
function cameras(inferMs: number, decodeMs = 2.5): StreamLoad[] {
  const p = (i: number): Priority => (i < 4 ? 'critical' : i < 12 ? 'normal' : 'background');
  return Array.from({ length: 16 }, (_, i) => ({ stream: `cam-${i}`, session: 's', priority: p(i), fps: 25, decodeMs, inferMs }));
}

/** Ticks with critical streams' frames missing until critical streams are degraded; returns the time. */
function untilCriticalDegraded(c: DegradeController, streams: StreamLoad[], from = 0): number {
  for (let t = from; t < from + 100 * TICK; t += TICK) {
    c.tick({ now: t, streams, backlogMs: 0, lateDrops: 100, criticalLateDrops: 100 });
    if (c.levelOf('critical') > 0) return t;
  }
  throw new Error('critical never degraded');
}

function rates(c: DegradeController, streams: StreamLoad[]): Record<Priority, (number | undefined)[]> {
  const out: Record<Priority, (number | undefined)[]> = { critical: [], normal: [], background: [] };
  for (const s of streams) out[s.priority].push(c.rateOf(s.stream));
  return out;
}

test('demand above capacity lowers background, then normal; critical keeps its rate while the others can go lower', () => {
  const c = new DegradeController(settings());
  const streams = cameras(2); // load: 16×25×2.5/2000 + 400×2/1000 = 1.3
  const changes = c.tick({ now: 0, streams, backlogMs: 0, lateDrops: 0 });
  assert.ok(c.load > 1.2, `estimated ${c.load}`);
  const r = rates(c, streams);
  assert.deepEqual(r.critical, [undefined, undefined, undefined, undefined], 'critical untouched');
  assert.ok(r.background.every((x) => x === 2), `background at its floor: ${r.background}`);
  assert.ok(r.normal.every((x) => x !== undefined && x < 25), `normal degraded: ${r.normal}`);
  // Every degraded stream was announced, with its rate, priority and why.
  assert.equal(changes.length, 12);
  for (const ch of changes) {
    assert.equal(ch.reason, 'demand');
    assert.equal(ch.restored, false);
    assert.equal(ch.fullRate, 25);
    assert.equal(ch.share, Math.round((ch.rate / 25) * 100) / 100);
    assert.notEqual(ch.priority, 'critical');
  }
  // The next tick, same demand at the new rates: nothing moves.
  assert.deepEqual(c.tick({ now: TICK, streams, backlogMs: 0, lateDrops: 0 }), []);
});

test('critical is degraded only once every normal and background stream is at its floor, and for its own late frames', () => {
  const streams = cameras(12); // far more than the machine: even the floors do not fit
  const estimateOnly = new DegradeController(settings());
  estimateOnly.tick({ now: 0, streams, backlogMs: 0, lateDrops: 0 });
  assert.equal(estimateOnly.levelOf('critical'), 0, 'the estimate alone never takes frames from critical streams');
  assert.ok(rates(estimateOnly, streams).normal.every((x) => x === 2));
  const c = new DegradeController(settings());
  const at = untilCriticalDegraded(c, streams);
  assert.ok(at >= 4 * TICK, 'one step after the floors, once that could show');
  const r = rates(c, streams);
  assert.ok(r.critical.every((x) => x !== undefined && x < 25), `critical degraded at last: ${r.critical}`);
  assert.ok([...r.normal, ...r.background].every((x) => x === 2), 'everything else at its floor first');
  // Step by step (drops alone move one class a step): background goes all the way down first.
  const d = new DegradeController(settings({ highWater: 100 }));
  const seen: Priority[] = [];
  for (let t = 0; t < 200; t++) {
    const ch = d.tick({ now: t * TICK, streams, backlogMs: 0, lateDrops: 1000, criticalLateDrops: 100 });
    for (const x of ch) if (!seen.includes(x.priority)) seen.push(x.priority);
    if (d.levelOf('critical') > 0) {
      assert.ok(rates(d, streams).normal.every((x) => x === 2));
      break;
    }
  }
  assert.deepEqual(seen, ['background', 'normal', 'critical']);
});

test('a backlog draining after the others went down does not cost critical streams their rate; a degraded critical class comes back once its frames stop missing', () => {
  const streams = cameras(12); // the estimate puts everything else at its floor at once
  const c = new DegradeController(settings({ highWater: 100 })); // only drops move critical
  for (let t = 0; t < 8; t++) c.tick({ now: t * TICK, streams, backlogMs: 0, lateDrops: 0 });
  // Critical frames miss for fewer ticks in a row than a step takes to show (what was queued drains): no step.
  let now = 8 * TICK;
  for (let t = 0; t < 3; t++, now += TICK) c.tick({ now, streams, backlogMs: 0, lateDrops: 100, criticalLateDrops: 100 });
  c.tick({ now, streams, backlogMs: 0, lateDrops: 0 });
  now += TICK;
  assert.equal(c.levelOf('critical'), 0, 'three ticks of critical drops, then none: critical keeps its rate');
  // Missing while a queue drains (backlog): not for 4 ticks, only for 12 in a row.
  const q = new DegradeController(settings({ highWater: 100 }));
  let qt = 0;
  for (let t = 0; t < 8; t++, qt += TICK) q.tick({ now: qt, streams, backlogMs: 0, lateDrops: 0 });
  let ticksToCritical = 0;
  for (; ticksToCritical < 40 && q.levelOf('critical') === 0; ticksToCritical++, qt += TICK) q.tick({ now: qt, streams, backlogMs: 200, lateDrops: 100, criticalLateDrops: 100 });
  assert.ok(ticksToCritical >= 12 && ticksToCritical < 40, `with a queue draining, critical streams go down only after 12 ticks of their own late frames (after ${ticksToCritical})`);
  // Missing for longer: lowered one step.
  now = untilCriticalDegraded(c, streams, now) + TICK;
  assert.equal(c.levelOf('critical'), 1);
  // The load stays well above lowWater (the others at their floor still more than the machine),
  // but no critical frame misses any more: restored after restoreAfterMs.
  const restoredAt = now;
  let back: RateChange[] = [];
  for (; now < restoredAt + 20 * TICK && c.levelOf('critical') > 0; now += TICK) back = c.tick({ now, streams, backlogMs: 0, lateDrops: 0 });
  assert.equal(c.levelOf('critical'), 0, `critical still degraded at load ${c.load}`);
  assert.ok(c.load > 0.5, `the load (${c.load}) stayed above lowWater`);
  assert.ok(now - restoredAt >= 2000, 'not before restoreAfterMs');
  assert.ok(back.length === 4 && back.every((x) => x.priority === 'critical' && x.restored && x.reason === 'load-fell'), JSON.stringify(back));
});

test('late drops alone degrade one step, then wait for it to show before the next', () => {
  const c = new DegradeController(settings());
  const streams = cameras(0.5); // the estimate says 0.7: fine, but frames miss
  const first = c.tick({ now: 0, streams, backlogMs: 0, lateDrops: 3 }); // 3 of the 100 frames kept in a tick
  assert.equal(first.length, 4);
  assert.ok(first.every((x) => x.priority === 'background' && x.rate === 12.5 && x.reason === 'drops'));
  for (let t = 1; t < 4; t++) assert.deepEqual(c.tick({ now: t * TICK, streams, backlogMs: 0, lateDrops: 3 }), [], 'settling');
  const second = c.tick({ now: 4 * TICK, streams, backlogMs: 0, lateDrops: 3 });
  assert.ok(second.length === 4 && second.every((x) => x.priority === 'background' && x.rate === 6.25));
  // Many late frames (10 × lateDropShare): two halvings at once.
  const many = new DegradeController(settings());
  assert.ok(many.tick({ now: 0, streams, backlogMs: 0, lateDrops: 30 }).every((x) => x.rate === 6.25));
  // A few late frames (under lateDropShare of those kept) are not overload.
  const d = new DegradeController(settings({ lateDropShare: 0.05 }));
  assert.deepEqual(d.tick({ now: 0, streams, backlogMs: 0, lateDrops: 4 }), [], '4 of 100 frames kept in the tick');
  assert.equal(d.tick({ now: TICK, streams, backlogMs: 0, lateDrops: 6 }).length, 4);
});

test("a lane's capacity is its request slots' full batches: the kept frames are priced against it", () => {
  // 4 ms + 0.5 ms a frame, batches of 16: 16 / 12 ms = 1333 frames/s at most.
  const lane = { model: 'm', maxBatch: 16, estimate: (n: number) => 4 + n / 2 };
  assert.equal(Math.round(laneCapacityFps(lane)), 1333);
  const streams = cameras(Number.NaN, 0).map((st) => ({ ...st, model: 'm' }));
  const c = new DegradeController(settings());
  assert.deepEqual(c.tick({ now: 0, streams, lanes: [lane], backlogMs: 0, lateDrops: 0 }), []);
  assert.equal(Math.round(c.inferLoad * 100), 30, '400 of 1333 frames/s');
  const slow = { ...lane, estimate: (n: number) => 20 + 3 * n }; // 235 frames/s at most
  const ch = c.tick({ now: TICK, streams, lanes: [slow], backlogMs: 0, lateDrops: 0 });
  assert.ok(ch.length > 0 && ch.every((x) => x.priority === 'background' || x.priority === 'normal'));
  assert.ok(c.load > 1 && c.levelOf('critical') === 0);
});

test('a backlog in the queue counts as demand', () => {
  const c = new DegradeController(settings());
  const streams = cameras(0.5);
  assert.deepEqual(c.tick({ now: 0, streams, backlogMs: 0, lateDrops: 0 }), []);
  const ch = c.tick({ now: TICK, streams, backlogMs: 100, lateDrops: 0 }); // 100 ms of work queued per 250 ms tick
  assert.equal(ch.length, 4);
  assert.ok(ch.every((x) => x.priority === 'background' && x.reason === 'backlog' && x.rate === 12.5), 'one step: the backlog clears by itself once the rates fit');
});

test('restores stepwise after the load stays low, highest priority first; no flapping in between', () => {
  const c = new DegradeController(settings({ restoreAfterMs: 3000 }));
  const heavy = cameras(12);
  let t = untilCriticalDegraded(c, heavy) + TICK;
  // Between the water marks: nothing moves either way.
  const middling = cameras(0.8); // 0.5 + kept × 0.8 ms
  const between: RateChange[] = [];
  for (; t < 20_000; t += TICK) {
    between.push(...c.tick({ now: t, streams: middling, backlogMs: 0, lateDrops: 0 }));
    if (c.load < 0.5) break;
  }
  // Light load: every 3 s one class goes one step up, critical first.
  const light = cameras(0.05, 1);
  const log: { t: number; ch: RateChange[] }[] = [];
  const start = t;
  for (; t < start + 120_000; t += TICK) {
    const ch = c.tick({ now: t, streams: light, backlogMs: 0, lateDrops: 0 });
    if (ch.length) log.push({ t, ch });
  }
  assert.ok(log.length >= 3);
  for (let i = 1; i < log.length; i++) assert.ok(log[i]!.t - log[i - 1]!.t >= 3000, 'one step per restoreAfterMs');
  assert.ok(log[0]!.t - start >= 3000 - TICK);
  const order = log.map((l) => l.ch[0]!.priority);
  const firstNormal = order.indexOf('normal');
  assert.ok(order.lastIndexOf('critical') < firstNormal, `critical restored before normal: ${order}`);
  assert.ok(order.lastIndexOf('normal') < order.indexOf('background'), `normal before background: ${order}`);
  const last = log.at(-1)!.ch[0]!;
  assert.equal(last.restored, true);
  assert.equal(last.rate, 25);
  assert.equal(last.reason, 'load-fell');
  assert.deepEqual(Object.values(rates(c, light)).flat().filter((x) => x !== undefined), [], 'all back to full');
  assert.ok(between.every((x) => x.reason !== 'load-fell' || c.load < 0.5));
});

test('overloaded again soon after a restore: the next restore waits twice as long', () => {
  const c = new DegradeController(settings({ restoreAfterMs: 1000 }));
  const streams = cameras(0.5, 1); // estimated 0.4: below lowWater
  c.tick({ now: 0, streams, backlogMs: 0, lateDrops: 100 }); // background halved
  let t = TICK;
  let restoredAt = Number.NaN;
  for (; t < 5000; t += TICK) if (c.tick({ now: t, streams, backlogMs: 0, lateDrops: 0 }).length) (restoredAt = t), (t = 1e9);
  assert.ok(restoredAt >= 1000 && restoredAt <= 1250, `restored at ${restoredAt}`);
  t = restoredAt + TICK;
  assert.equal(c.tick({ now: t, streams, backlogMs: 0, lateDrops: 100 }).length, 4, 'degraded again');
  let again = Number.NaN;
  for (t += TICK; t < restoredAt + 10_000; t += TICK) if (c.tick({ now: t, streams, backlogMs: 0, lateDrops: 0 }).length) (again = t), (t = 1e9);
  const waited = again - (restoredAt + TICK);
  assert.ok(waited >= 2000, `waited ${waited} ms the second time`);
});

test('a stream joining a degraded class is announced at its rate; one that leaves is forgotten', () => {
  const c = new DegradeController(settings());
  const streams = cameras(2);
  c.tick({ now: 0, streams, backlogMs: 0, lateDrops: 0 });
  const bg = c.levelOf('background');
  assert.ok(bg > 0);
  const joined: StreamLoad = { stream: 'cam-new', session: 'x', priority: 'background', fps: 30, decodeMs: 2.5, inferMs: 2 };
  const ch = c.tick({ now: TICK, streams: [...streams, joined], backlogMs: 0, lateDrops: 0 });
  const mine = ch.find((x) => x.stream === 'cam-new');
  assert.ok(mine, 'announced');
  assert.equal(mine.rate, Math.max(2, 30 / 2 ** bg));
  c.tick({ now: 2 * TICK, streams, backlogMs: 0, lateDrops: 0 });
  assert.equal(c.rateOf('cam-new'), undefined);
  // A stream slower than the floor is never degraded.
  const slow = new DegradeController(settings());
  const ch2 = slow.tick({ now: 0, streams: [{ stream: 'slow', session: 's', priority: 'background', fps: 1, decodeMs: 500, inferMs: 2 }], backlogMs: 0, lateDrops: 0 });
  assert.deepEqual(ch2, []);
});

test('priority comes from the first matching entry, normal by default; it is part of the topology schema', () => {
  const p = priorityRules(prioritySchema.parse({ streams: [{ streams: '^door-', priority: 'critical' }, { streams: 'lobby', priority: 'background' }] }));
  assert.equal(p('door-1'), 'critical');
  assert.equal(p('lobby-2'), 'background');
  assert.equal(p('yard'), 'normal');
  const base = { sources: [{ type: 'kafka', topic: 't', group: 'g' }], models: [{ name: 'm' }], sinks: [{ type: 'kafka', topic: 'l', eventsTopic: 'e' }] };
  const t = topologySchema().parse(base);
  assert.deepEqual(t.priority.streams, []);
  assert.equal(degradeOn(t.priority), false, 'no priorities named: no degrading');
  const named = (priority: string, enabled?: boolean) => degradeOn(topologySchema().parse({ ...base, priority: { streams: [{ streams: 'x', priority }], ...(enabled === undefined ? {} : { degrade: { enabled } }) } }).priority);
  assert.equal(named('critical'), true, 'a critical stream turns degrading on');
  assert.equal(named('background'), true, 'a background stream turns degrading on');
  assert.equal(named('normal'), false, 'only normal streams: off');
  assert.equal(named('critical', false), false, 'enabled: false wins');
  assert.equal(named('normal', true), true, 'enabled: true wins');
  assert.throws(() => topologySchema().parse({ ...base, priority: { streams: [{ streams: 'x', priority: 'urgent' }] } }));
  assert.throws(() => topologySchema().parse({ ...base, priority: { degrade: { lowWater: 0.9 } } }), /lowWater[\s\S]*not below highWater/);
});

test('the sampler keeps at most the degraded rate on top of its rule, marking what it skips as degraded', () => {
  const s = new Sampler(samplingRuleSchema.parse({}), 32, 24);
  s.setRateCap(5);
  const kept: number[] = [];
  const skipped: number[] = [];
  for (let i = 0; i < 50; i++) {
    const pre = s.before(i * 40, i % 25 === 0, i % 2 === 1);
    if (pre === KEEP) kept.push(i);
    else skipped.push(pre);
  }
  assert.deepEqual(kept, [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]);
  assert.ok(skipped.every((p) => p === SKIP_DEGRADED || p === DECODE_DEGRADED));
  assert.ok(skipped.includes(SKIP_DEGRADED) && skipped.includes(DECODE_DEGRADED), 'undecoded only when nothing references it');
  // A rule's own skips stay the rule's.
  const r = new Sampler(samplingRuleSchema.parse({ mode: 'keyframes' }), 32, 24);
  r.setRateCap(0.5);
  assert.equal(r.before(0, true, false), KEEP);
  assert.equal(r.before(40, false, true), SKIP);
  assert.equal(r.before(1000, true, false), SKIP_DEGRADED, 'a keyframe a GOP: skipped, so its GOP is not decoded either');
  r.setRateCap(undefined);
  assert.equal(r.before(2000, true, false), KEEP);
  assert.equal(r.rateCap, undefined);
});

test('degraded to a frame a GOP or less, only keyframes are decoded; restored, decoding resumes at a keyframe', () => {
  const s = new Sampler(samplingRuleSchema.parse({}), 32, 24);
  const at = (i: number) => s.before(i * 40, i % 25 === 0, false); // 25 fps, a keyframe a second, every frame referenced
  assert.equal(at(0), KEEP);
  for (let i = 1; i < 25; i++) at(i);
  s.setRateCap(12.5);
  const half = Array.from({ length: 25 }, (_, k) => at(25 + k));
  assert.equal(half.filter((p) => p === KEEP).length, 13);
  assert.ok(half.every((p) => p === KEEP || p === DECODE_DEGRADED), 'above a frame a GOP: skipped frames are still decoded');
  assert.equal(s.gopMs, 1000);
  s.setRateCap(1);
  const key = Array.from({ length: 50 }, (_, k) => at(50 + k));
  assert.deepEqual(key.map((p, k) => (p === KEEP ? 50 + k : -1)).filter((i) => i >= 0), [50, 75]);
  assert.ok(key.every((p) => p === KEEP || p === SKIP_DEGRADED), 'the rest are not decoded');
  // Restored mid-GOP: the frames up to the next keyframe cannot be decoded (their references were skipped).
  at(100);
  s.setRateCap(1);
  assert.equal(at(101), SKIP_DEGRADED);
  s.setRateCap(undefined);
  assert.equal(at(102), SKIP_DEGRADED);
  assert.equal(at(124), SKIP_DEGRADED);
  assert.equal(at(125), KEEP);
  assert.equal(at(126), KEEP);
});

test('the estimate counts only keyframes decoded for a stream degraded to a frame a GOP', () => {
  const c = new DegradeController(settings({ minFps: 1 }));
  const streams = cameras(0, 20).map((s) => ({ ...s, gopMs: 1000 })); // decoding alone: 16×25×20/2000 = 4
  c.tick({ now: 0, streams, backlogMs: 0, lateDrops: 0 });
  // Background and normal at a keyframe a second decode 1/25 of their frames: 4×25×20/2000 + 12×1×20/2000 = 1.12.
  assert.ok([...rates(c, streams).normal, ...rates(c, streams).background].every((x) => x === 1), 'the floors, in one tick');
  assert.ok(Math.abs(c.tick({ now: TICK, streams, backlogMs: 0, lateDrops: 0 }).length - 0) < 1e-9);
  assert.ok(Math.abs(c.load - 1.12) < 0.01, `estimated ${c.load}`);
  assert.equal(c.levelOf('critical'), 0, 'the estimate alone never degrades critical streams');
  const d = new DegradeController(settings({ minFps: 1 }));
  d.tick({ now: 0, streams: cameras(0, 20), backlogMs: 0, lateDrops: 0 });
  assert.equal(d.levelOf('background'), 1, 'without a GOP a halving does not show in the estimate: one step');
  for (let t = 1; t < 4; t++) d.tick({ now: t * TICK, streams: cameras(0, 20), backlogMs: 0, lateDrops: 0 });
  assert.equal(d.levelOf('background'), 1, 'and no more until it could have shown');
  d.tick({ now: 4 * TICK, streams: cameras(0, 20), backlogMs: 0, lateDrops: 0 });
  assert.equal(d.levelOf('background'), 2);
});

class MemorySink implements Sink {
  readonly name = 'memory';
  events: PipelineEvent[] = [];
  async publishLabels(): Promise<void> {}
  async publishEvents(batch: EventBatch): Promise<void> {
    this.events.push(...batch.records);
  }
  async close(): Promise<void> {}
}

test('degraded skips are `sampled` with "degraded": true, never merged with the rule\'s own', async () => {
  const sink = new MemorySink();
  const r = new DropPublisher(new OutputStage([sink], new Metrics()), new Metrics(), 10_000);
  const done: [number, number, DropReason][] = [];
  const o: FrameOwner = { framePublished() {}, framesDropped: (a, b, reason) => void done.push([a, b, reason]) };
  r.drop(o, 'cam', 's', 0, 0, 'sampled');
  r.drop(o, 'cam', 's', 1, 1, 'sampled', true);
  r.drop(o, 'cam', 's', 2, 2, 'sampled', true);
  r.drop(o, 'cam', 's', 3, 3, 'sampled');
  await r.flush();
  const ev = sink.events as unknown as { fromFrame: number; toFrame: number; reason: string; degraded?: boolean }[];
  assert.deepEqual(
    ev.map((e) => [e.fromFrame, e.toFrame, e.reason, e.degraded]),
    [
      [0, 0, 'sampled', undefined],
      [1, 2, 'sampled', true],
      [3, 3, 'sampled', undefined],
    ],
  );
  assert.ok(!('degraded' in sink.events[0]!), 'the field is left out, not false');
  assert.equal(done.length, 3);
});
