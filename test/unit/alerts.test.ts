/** Alert rules on capture time, with a fake clock: fire, hold, clear, flapping, restarts, stale rules. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AlertEngine } from '../../src/alerts/engine.js';
import { alertsSchema, type AlertRule } from '../../src/alerts/config.js';
import type { AlertRecord } from '../../src/core/events.js';
import type { LabelRecord } from '../../src/core/frame.js';
import { parseTopology } from '../../src/config/load.js';
import { FramewireError } from '../../src/core/errors.js';

const EPOCH = 1_764_120_000_000;
const rules = (r: unknown[]): AlertRule[] => alertsSchema.parse(r);

/** A 25 fps session from a list of top labels (one per frame), capture times from EPOCH. */
function frames(labels: string[], stream = 'cam-1', session = 's1', score = 0.9, from = 0): LabelRecord[] {
  return labels.map((label, i) => ({
    type: 'label' as const,
    stream,
    session,
    frame: from + i,
    ptsMs: (from + i) * 40,
    captureTs: EPOCH + (from + i) * 40,
    model: 'colour_probe',
    modelVersion: '1',
    labels: [{ label, score }],
    publishedTs: EPOCH + (from + i) * 40 + 20,
  }));
}
const run = (label: string, n: number): string[] => Array<string>(n).fill(label);
const feedOneByOne = (e: AlertEngine, recs: LabelRecord[]): AlertRecord[] => recs.flatMap((r) => e.labels([r]));

test('a label rule fires once after forMs of capture time and resolves clearMs after the last match', () => {
  const e = new AlertEngine(rules([{ name: 'red-on-air', label: 'red', forMs: 400, clearMs: 400 }]));
  // 1 s blue, 2 s red, 1 s green at 25 fps.
  const out = feedOneByOne(e, frames([...run('blue', 25), ...run('red', 50), ...run('green', 25)]));
  assert.equal(out.length, 2, JSON.stringify(out));
  const [firing, resolved] = out as [AlertRecord, AlertRecord];
  assert.equal(firing.state, 'firing');
  assert.equal(firing.fromFrame, 25);
  assert.equal(firing.atFrame, 35, '400 ms after frame 25 at 40 ms a frame');
  assert.equal(firing.captureTs, EPOCH + 35 * 40);
  assert.equal(firing.id, `red-on-air:cam-1:${EPOCH + 25 * 40}`);
  assert.equal(firing.label, 'red');
  assert.equal(firing.severity, 'warning');
  assert.equal(resolved.state, 'resolved');
  assert.equal(resolved.id, firing.id);
  assert.equal(resolved.fromFrame, 25);
  assert.equal(resolved.atFrame, 74, 'the last red frame');
  assert.equal(resolved.clearedFrame, 84, 'the first frame 400 ms after it');
  assert.equal(resolved.reason, 'cleared');
});

test('forMs 0 fires at the first match; a hold broken before forMs does not fire', () => {
  const now0 = new AlertEngine(rules([{ name: 'r', label: 'red' }]));
  assert.equal(feedOneByOne(now0, frames(['blue', 'red']))[0]?.atFrame, 1);
  const e = new AlertEngine(rules([{ name: 'r', label: 'red', forMs: 400 }]));
  // 9 red frames (320 ms) then one blue, repeated: never 400 ms in a row.
  const pattern = Array.from({ length: 5 }, () => [...run('red', 9), 'blue']).flat();
  assert.deepEqual(feedOneByOne(e, frames(pattern)), []);
});

test('minScore: a top label below it does not count', () => {
  const e = new AlertEngine(rules([{ name: 'r', label: 'red', minScore: 0.95 }]));
  assert.deepEqual(e.labels(frames(run('red', 20), 'cam-1', 's1', 0.9)), []);
  assert.equal(e.labels(frames(['red'], 'cam-1', 's1', 0.97, 20)).length, 1);
});

test('flapping inside clearMs stays one episode: one firing, one resolved', () => {
  const e = new AlertEngine(rules([{ name: 'r', label: 'red', forMs: 200, clearMs: 400 }]));
  // red 1 s, then gaps of 8 frames (320 ms < clearMs) between red bursts, then a long gap.
  const pattern = [...run('red', 25), ...run('blue', 8), ...run('red', 3), ...run('blue', 8), ...run('red', 2), ...run('blue', 30)];
  const out = feedOneByOne(e, frames(pattern));
  assert.deepEqual(out.map((a) => a.state), ['firing', 'resolved']);
  assert.equal(out[1]!.atFrame, 25 + 8 + 3 + 8 + 1, 'the last red frame of the last burst');
  // The same flapping with a gap longer than clearMs is two episodes with two ids.
  const e2 = new AlertEngine(rules([{ name: 'r', label: 'red', forMs: 0, clearMs: 400 }]));
  const two = feedOneByOne(e2, frames([...run('red', 5), ...run('blue', 12), ...run('red', 5), ...run('blue', 12)]));
  assert.deepEqual(two.map((a) => a.state), ['firing', 'resolved', 'firing', 'resolved']);
  assert.notEqual(two[0]!.id, two[2]!.id);
});

test('per stream: a second stream without the label gets nothing; streams pattern limits a rule', () => {
  const e = new AlertEngine(rules([{ name: 'r', label: 'red', streams: '^cam-' }]));
  const recs = [...frames(run('red', 10), 'cam-1'), ...frames(run('blue', 10), 'cam-2'), ...frames(run('red', 10), 'other-1')];
  const out = e.labels(recs);
  assert.deepEqual(out.map((a) => `${a.stream}:${a.state}`), ['cam-1:firing']);
});

test('a restart re-sends with the same id: a replay of the frames, and an open episode restored from the alerts topic', () => {
  const video = frames([...run('blue', 10), ...run('red', 30), ...run('green', 20)]);
  const cfg = rules([{ name: 'r', label: 'red', forMs: 400, clearMs: 400 }]);
  const live = feedOneByOne(new AlertEngine(cfg), video);
  // A replay of the same recorded video (same capture times) gives the same records.
  const replay = feedOneByOne(new AlertEngine(cfg), video);
  assert.deepEqual(replay, live);
  // Crash after the firing: the restarted run sees only frames after the last commit (mid-episode).
  const first = new AlertEngine(cfg);
  const before = feedOneByOne(first, video.slice(0, 30));
  assert.deepEqual(before.map((a) => a.state), ['firing']);
  const restarted = new AlertEngine(cfg);
  restarted.restore(before);
  const after = feedOneByOne(restarted, video.slice(25));
  assert.deepEqual(after.map((a) => a.state), ['resolved'], 'no second firing');
  assert.equal(after[0]!.id, before[0]!.id);
  assert.equal(after[0]!.fromFrame, 10);
  // Without the restore the mid-episode frames would open a new episode (another id).
  const naive = feedOneByOne(new AlertEngine(cfg), video.slice(25));
  assert.notEqual(naive[0]!.id, before[0]!.id);
  // A restored episode already resolved stays closed.
  const closed = new AlertEngine(cfg);
  closed.restore(live);
  assert.deepEqual(closed.active(), []);
});

test('a new session resolves the old one; the session ending resolves after a grace period', () => {
  let now = EPOCH;
  const e = new AlertEngine(rules([{ name: 'r', label: 'red' }]), () => now);
  assert.equal(e.labels(frames(run('red', 3), 'cam-1', 's1')).length, 1);
  const out = e.labels(frames(['blue'], 'cam-1', 's2'));
  assert.deepEqual(out.map((a) => `${a.session}:${a.state}:${a.reason}`), ['s1:resolved:ended']);
  assert.equal(e.labels(frames(run('red', 3), 'cam-1', 's2', 0.9, 1)).length, 1);
  e.streamEvent({ type: 'stream', stream: 'cam-1', session: 's2', state: 'ended', ts: now });
  assert.deepEqual(e.tick(), [], 'its last frames may still come');
  now += 5000;
  assert.deepEqual(e.tick().map((a) => `${a.state}:${a.reason}`), ['resolved:ended']);
  assert.deepEqual(e.active(), []);
});

test('a stale rule fires after the stream is stalled for `stale` ms and resolves when it resumes', () => {
  let now = EPOCH;
  const e = new AlertEngine(rules([{ name: 'offline', stale: 1000, severity: 'critical' }]), () => now);
  e.labels(frames(run('blue', 10)));
  const ev = (state: 'started' | 'stalled' | 'resumed' | 'ended') => e.streamEvent({ type: 'stream', stream: 'cam-1', session: 's1', state, ts: now });
  assert.deepEqual(ev('stalled'), []);
  now += 999;
  assert.deepEqual(e.tick(), []);
  now += 1;
  const fired = e.tick();
  assert.equal(fired.length, 1);
  assert.equal(fired[0]!.state, 'firing');
  assert.equal(fired[0]!.severity, 'critical');
  assert.equal(fired[0]!.fromFrame, 9, 'the last frame labelled before the stall');
  assert.equal(fired[0]!.label, undefined);
  assert.equal(fired[0]!.score, undefined);
  assert.deepEqual(e.tick(), [], 'fires once');
  assert.equal(e.active().length, 1);
  now += 3000;
  const resolved = ev('resumed');
  assert.deepEqual(resolved.map((a) => `${a.state}:${a.reason}:${a.id === fired[0]!.id}`), ['resolved:resumed:true']);
  // A stall shorter than `stale` fires nothing.
  ev('stalled');
  now += 500;
  assert.deepEqual([...e.tick(), ...ev('resumed')], []);
});

test('topology: alerts validated at load; bad regexes in every regex field exit 2 naming the field', () => {
  const base = `sources: [{ type: kafka }]\nmodels: [{ name: colour_probe }]\nsinks: [{ type: kafka }]\n`;
  const err = (text: string): string => {
    try {
      parseTopology(text, 'topo.yaml');
    } catch (e) {
      assert.ok(e instanceof FramewireError);
      assert.equal(e.code, 'TOPOLOGY_INVALID');
      return e.message;
    }
    return assert.fail('expected a topology error');
  };
  const t = parseTopology(base + 'alerts:\n  - { name: red-on-air, streams: "^cam-", label: red, forMs: 400 }\n  - { name: offline, stale: 5000 }\n', 'topo.yaml');
  assert.equal(t.alerts.length, 2);
  assert.equal(t.alerts[0]!.clearMs, 1000);
  assert.equal(t.alerts[0]!.minScore, 0.5);
  assert.equal(t.health.staleMs, 5000);
  assert.match(err(base + 'alerts: [{ name: a, label: red, streams: "cam-(" }]\n'), /topo\.yaml: alerts\[0\]\.streams: not a valid regular expression/);
  assert.match(err(base.replace('{ name: colour_probe }', '{ name: colour_probe, streams: "[" }')), /models\[0\]\.streams: not a valid regular expression/);
  assert.match(err(base + 'latency: { streams: [{ streams: "(?<", budgetMs: 100 }] }\n'), /latency\.streams\[0\]\.streams: not a valid regular expression/);
  assert.match(err(base + 'sampling: [{ streams: "*cam" }]\n'), /sampling\[0\]\.streams: not a valid regular expression/);
  assert.match(err(base + 'alerts: [{ name: a, lable: red }]\n'), /alerts\[0\]: .*lable/);
  assert.match(err(base + 'alerts: [{ name: a, label: red, stale: 100 }]\n'), /alerts\[0\]: a rule needs exactly one of/);
  assert.match(err(base + 'alerts: [{ name: a, label: red }, { name: a, stale: 1 }]\n'), /alerts\[1\]\.name: duplicate rule name/);
});
