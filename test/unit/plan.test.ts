/** `framewire plan`: the arithmetic, the figures read from /metrics, and the command against a processor's metrics. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Metrics } from '../../src/telemetry/metrics.js';
import { measuredFrom, plan, type Candidate, type Measured } from '../../src/plan/plan.js';
import { framewireCommand } from '../helpers/processes.js';

/** A processor's metrics as the degrade loop sets them: 16 streams at 25 fps, 2.5 ms a frame to decode, a lane of 1000 frames/s. */
async function metricsText(): Promise<string> {
  const m = new Metrics();
  m.degradeLoad.set(0.65);
  m.degradeDecodeLoad.set(0.25);
  m.degradeInferLoad.set(0.4);
  m.degradeCores.set(2);
  m.decodeCpuPerFrame.set(2.5);
  m.streamsFps.set(400);
  m.laneCapacity.set({ model: 'colour_probe' }, 1000);
  m.degradeFullLoad.set(0.65);
  return m.registry.metrics();
}

const candidate = (o: Partial<Candidate> = {}): Candidate => ({ width: 640, height: 360, fps: 25, model: 'colour_probe', like: { width: 640, height: 360 }, gopMs: 1000, highWater: 0.85, minFps: 1, ...o });

test('plan: more streams at full rate and at each halving, keyframes only at a frame a GOP', async () => {
  const m = measuredFrom(await metricsText()) as Measured;
  assert.equal(typeof m, 'object');
  assert.equal(m.capacity.colour_probe, 1000);
  const p = plan(m, candidate());
  assert.ok(typeof p === 'object');
  assert.ok(Math.abs(p.headroom - 0.2) < 1e-9);
  assert.equal(p.processLoad, 0);
  // One more at 25 fps: 25 × 2.5 / 2000 + 25 / 1000 = 0.05625 → 3 in 0.2; lower rates save only
  // inference (every frame is still decoded) until a frame a GOP, where only keyframes are.
  assert.deepEqual(p.rows.map((r) => [r.rate, r.streams]), [[25, 3], [12.5, 4], [6.25, 5], [3.13, 5], [1.56, 6], [1, 88]]);
  // At 1 fps (a frame a GOP) only keyframes are decoded: 1 × 2.5 / 2000 + 1 / 1000.
  assert.ok(Math.abs(p.rows.at(-1)!.perStream - 0.00225) < 1e-9);
  // 1280×720 costs four times the decoding of the 640×360 streams it runs.
  const big = plan(m, candidate({ width: 1280, height: 720 }));
  assert.ok(typeof big === 'object' && Math.abs(big.decodeMs - 10) < 1e-9 && big.rows[0]!.streams === 1);
  // The processor's own CPU a frame coming in (0.5 ms: 400 frames/s take 0.05 of 2 cores) is counted for every frame of a new stream.
  const withProcess = plan({ ...m, processMsPerFrame: 0.5 }, candidate());
  assert.ok(typeof withProcess === 'object' && Math.abs(withProcess.processLoad - 0.1) < 1e-9 && Math.abs(withProcess.headroom - 0.1) < 1e-9);
  assert.ok(Math.abs(withProcess.rows.at(-1)!.perStream - (0.00225 + 25 * 0.5 / 2000)) < 1e-9);
  assert.match(String(plan(m, candidate({ model: 'open_nsfw' }))), /no measured lane for model open_nsfw \(lanes: colour_probe\)/);
  assert.match(String(measuredFrom('framewire_frames_decoded_total 3\n')), /exports no framewire_degrade_load/);
});

test('framewire plan reads a processor\'s /metrics and prints the plan; exit 1 when it cannot, 2 on bad arguments', async () => {
  const text = await metricsText();
  const server = createServer((_req, res) => res.end(text));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  try {
    const ok = await framewireCommand(['plan', '--metrics', url, '--model', 'colour_probe', '--fps', '25']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /estimated load 0\.65 of 0\.85/);
    assert.match(ok.stdout, /classified at 25 fps \(every frame\): 3 more/);
    assert.match(ok.stdout, /classified at 1 fps: 88 more/);
    const unknown = await framewireCommand(['plan', '--metrics', url, '--model', 'nope']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no measured lane for model nope/);
    assert.equal((await framewireCommand(['plan', '--metrics', url, '--model', 'colour_probe', '--size', 'big'])).code, 2);
    assert.equal((await framewireCommand(['plan', '--metrics', 'http://127.0.0.1:1/metrics', '--model', 'colour_probe'])).code, 1);
  } finally {
    server.close();
  }
});
