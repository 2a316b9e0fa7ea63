import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Quarantine } from '../../src/decode/quarantine.js';
import { DecoderWatchdog, cpuSeconds, type Watched } from '../../src/decode/watchdog.js';

test('quarantine: 3 crashes within the window quarantine a stream for a while; older crashes do not count', () => {
  const q = new Quarantine({ crashes: 3, windowMs: 60_000, durationMs: 30_000 });
  assert.equal(q.crashed('a', 0), false);
  assert.equal(q.crashed('a', 20_000), false);
  assert.equal(q.crashed('b', 10_000), false, 'streams are counted apart');
  assert.equal(q.crashed('a', 70_001), false, 'the first crash fell out of the window');
  assert.equal(q.quarantinedUntil('a', 70_001), undefined);
  assert.equal(q.crashed('a', 71_000), true, 'three within a minute');
  assert.equal(q.quarantinedUntil('a', 80_000), 101_000);
  assert.equal(q.crashed('a', 90_000), false, 'crashes while quarantined start nothing new');
  assert.equal(q.quarantinedUntil('b', 80_000), undefined);
  assert.equal(q.quarantinedUntil('a', 101_000), undefined, 'over');
  assert.equal(q.size, 0);
  assert.equal(q.crashed('a', 102_000), false, 'counting starts afresh');
});

function fake(over: Partial<Watched> = {}): Watched & { kills: string[] } {
  const kills: string[] = [];
  return { pid: undefined, holding: 0, reorderDepth: 0, oldestHeldFedAt: Number.NaN, lastOutputAt: 0, emitted: 10, isBlocked: false, isExited: false, kills, killAsCrash: async (r) => void kills.push(r), ...over } as Watched & { kills: string[] };
}

test('watchdog: fed and silent past stallMs is killed; idle, blocked or starting decoders are not', () => {
  const killed: string[] = [];
  const w = new DecoderWatchdog({ stallMs: 1000, maxCpuPercent: 0, cpuWindowMs: 10_000, killed: (s, r, e) => killed.push(`${s}:${r}:${e.code}`) });
  const idle = fake({ holding: 0, lastOutputAt: 0 });
  w.check('idle', idle, 50_000);
  const fedRecently = fake({ holding: 2, oldestHeldFedAt: 49_500, lastOutputAt: 0 });
  w.check('fresh', fedRecently, 50_000);
  const blocked = fake({ holding: 5, oldestHeldFedAt: 0, lastOutputAt: 0, isBlocked: true });
  w.check('blocked', blocked, 50_000);
  const starting = fake({ holding: 5, oldestHeldFedAt: 45_000, lastOutputAt: 0, emitted: 0 });
  w.check('starting', starting, 50_000);
  const stalled = fake({ holding: 3, oldestHeldFedAt: 48_000, lastOutputAt: 47_000 });
  w.check('stalled', stalled, 50_000);
  // A B-frame stream's decoder keeps its reorder depth when its input pauses (a camera gap, skipping ahead).
  const reordering = fake({ holding: 2, reorderDepth: 2, oldestHeldFedAt: 40_000, lastOutputAt: 40_000 });
  w.check('reordering', reordering, 50_000);
  const reorderingStalled = fake({ holding: 3, reorderDepth: 2, oldestHeldFedAt: 40_000, lastOutputAt: 40_000 });
  w.check('reordering-stalled', reorderingStalled, 50_000);
  assert.deepEqual(killed, ['stalled:stalled:DECODER_STALLED', 'reordering-stalled:stalled:DECODER_STALLED']);
  assert.deepEqual(stalled.kills, ['stalled']);
  assert.deepEqual([idle, fedRecently, blocked, starting, reordering].map((d) => d.kills.length), [0, 0, 0, 0, 0]);
  w.check('starting', starting, 56_000);
  assert.deepEqual(starting.kills, ['stalled'], 'a first frame gets at least 10 s, not forever');
});

test('watchdog: a process over its CPU share is killed; our own usage is read from /proc', async () => {
  const me = cpuSeconds(process.pid);
  assert.ok(me !== undefined && me > 0);
  // Burn ~300 ms of CPU in this process and watch it as if it were a decoder.
  const killed: string[] = [];
  // 5 %: a spinning loop gets far more than that even on a busy machine; a sleeping one nearly nothing.
  const w = new DecoderWatchdog({ stallMs: 1000, maxCpuPercent: 5, cpuWindowMs: 1000, killed: (_s, r) => killed.push(r) });
  const d = fake({ pid: process.pid });
  const t0 = performance.now();
  w.check('busy', d, t0);
  while (performance.now() - t0 < 1200) Math.sqrt(Math.random());
  w.check('busy', d, performance.now());
  assert.deepEqual(killed, ['cpu'], 'a spinning process is over 5 % of a core');
  const calm = new DecoderWatchdog({ stallMs: 1000, maxCpuPercent: 5, cpuWindowMs: 1000, killed: (_s, r) => killed.push(r) });
  const d2 = fake({ pid: process.pid });
  const t1 = performance.now();
  calm.check('calm', d2, t1);
  await new Promise((r) => setTimeout(r, 1200));
  calm.check('calm', d2, performance.now());
  assert.deepEqual(killed, ['cpu'], 'a sleeping one is not');
});
