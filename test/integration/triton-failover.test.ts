/**
 * Two Triton processes: the stack's, and one this file starts on 8100/8101/8102 (same model
 * repository, colour_probe and its FP32/FP16 variants). The extra one is stopped mid-stream and
 * restarted, never the stack's; it is stopped in `after`.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { TritonClient } from '../../src/infer/triton/client.js';
import { describeModel, parseClassification, frameTensorBytes, type ModelSpec } from '../../src/infer/triton/model.js';
import { TritonPool, type TensorBatch } from '../../src/infer/triton/pool.js';
import { ShmRing } from '../../src/infer/triton/shm.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { FramewireError, isRetriable } from '../../src/core/errors.js';
import { ensureStack, TRITON_URL } from '../helpers/stack.js';
import { startTriton, type TritonProcess } from '../helpers/triton.js';
import { solidFrames } from '../helpers/frames.js';
import { waitUntil } from '../helpers/wait.js';

const PORTS = { httpPort: 8100, grpcPort: 8101, metricsPort: 8102 };
const MODELS = ['colour_probe', 'colour_probe_fp32', 'colour_probe_fp16'];
let second: TritonProcess | undefined;
let client: TritonClient;

before(async () => {
  ensureStack();
  second = await startTriton({ ...PORTS, models: MODELS });
  client = new TritonClient({ url: second.url });
});
after(async () => {
  client?.close();
  await second?.stop();
});

const classify = (spec: ModelSpec, k = 1) => [{ name: spec.outputName, parameters: { classification: { int64_param: k } } }];

test('FP32 and FP16 inputs: the pipeline widens UINT8 frames to the model datatype (in-message and shm)', async () => {
  const colours = ['red', 'cyan', 'black', 'white'];
  for (const model of ['colour_probe_fp32', 'colour_probe_fp16']) {
    const spec = await describeModel(client, model);
    assert.equal(spec.inputDatatype, model.endsWith('fp32') ? 'FP32' : 'FP16');
    assert.equal(spec.elementBytes, model.endsWith('fp32') ? 4 : 2);
    const data = solidFrames(spec, colours);
    assert.equal(data.length, colours.length * 224 * 224 * 3 * spec.elementBytes);
    const pool = new TritonPool({ endpoints: [second!.url], models: [model], transport: 'auto' });
    const ring = new ShmRing({ tag: model, slots: 1, inputSlotBytes: colours.length * frameTensorBytes(spec) });
    try {
      await pool.start();
      await pool.addRing(ring);
      const batch: TensorBatch = { model, id: model, inputName: spec.inputName, datatype: spec.inputDatatype, shape: [colours.length, 224, 224, 3], data, outputs: classify(spec) };
      const inMessage = await pool.infer(batch, 10_000, Date.now() + 1000);
      assert.deepEqual(parseClassification(inMessage.raw_output_contents[0]!, 4, 1).map((l) => l[0]!.label), colours, `${model} in-message`);
      ring.writeInput(0, data);
      const viaShm = await pool.infer({ ...batch, ring, slot: 0, data: Buffer.alloc(data.length) }, 10_000, Date.now() + 1000);
      assert.deepEqual(parseClassification(viaShm.raw_output_contents[0]!, 4, 1).map((l) => l[0]!.label), colours, `${model} via shm`);
    } finally {
      await pool.close();
    }
  }
});

test('failover: stopping one Triton mid-stream loses no request; it rejoins the rotation when back', async () => {
  const spec = await describeModel(client, 'colour_probe');
  const metrics = new Metrics();
  const pool = new TritonPool({ endpoints: [second!.url, TRITON_URL], models: ['colour_probe'], transport: 'auto', healthIntervalMs: 200, metrics });
  const ring = new ShmRing({ tag: 'failover', slots: 4, inputSlotBytes: 4 * frameTensorBytes(spec) });
  const colours = ['green', 'blue', 'yellow', 'magenta'];
  const data = solidFrames(spec, colours);
  for (let s = 0; s < 4; s++) ring.writeInput(s, data);
  let ok = 0;
  let failed = 0;
  const errors: string[] = [];
  let running = true;
  // Four workers, each retrying a retriable failure twice with backoff, as the infer stage does.
  const worker = async (slot: number) => {
    while (running) {
      const batch: TensorBatch = { model: 'colour_probe', id: `w${slot}`, inputName: 'FRAME', datatype: 'UINT8', shape: [4, 224, 224, 3], data, ring, slot, outputs: classify(spec) };
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await pool.infer(batch, 5000, Date.now() + 2000);
          assert.deepEqual(parseClassification(res.raw_output_contents[0]!, 4, 1).map((l) => l[0]!.label), colours);
          ok++;
          break;
        } catch (err) {
          if (!isRetriable(err) || attempt >= 2) {
            failed++;
            errors.push(`${(err as FramewireError).code}: ${(err as Error).message}`);
            break;
          }
          await new Promise((r) => setTimeout(r, Math.random() * 25 * 2 ** attempt));
        }
      }
    }
  };
  try {
    await pool.start();
    await pool.addRing(ring);
    assert.equal(pool.readyCount, 2);
    assert.deepEqual(pool.endpoints.map((e) => e.transport), ['shm', 'shm']);
    const workers = [0, 1, 2, 3].map((s) => worker(s));
    const servedBy = async (c: TritonClient) => Number((await c.modelStatistics('colour_probe'))[0]!.inference_stats!.success!.count);
    assert.ok(await waitUntil(async () => (await servedBy(client)) > 0, 10_000), 'both endpoints take requests (fewest outstanding)');
    const beforeStop = ok;
    await second!.stop();
    // The health check (every 200 ms) takes it out; the workers go on with the stack's Triton.
    await waitUntil(() => !pool.endpoints[0]!.ready && ok > beforeStop + 5, 10_000);
    assert.equal(pool.endpoints[0]!.ready, false, 'the stopped endpoint is out of rotation');
    assert.ok(ok > beforeStop + 5, `results keep coming while it is down (${beforeStop} → ${ok})`);
    assert.match(await metrics.registry.metrics(), /framewire_triton_endpoint_ready\{endpoint="127.0.0.1:8101"\} 0/);

    // Back on the same ports (a restart): re-registered and in rotation again.
    second = await startTriton({ ...PORTS, models: MODELS });
    const restarted = new TritonClient({ url: second.url });
    try {
      await waitUntil(() => pool.endpoints[0]!.ready, 10_000, 50);
      assert.equal(pool.endpoints[0]!.ready, true, 'the restarted endpoint is back');
      assert.equal(pool.endpoints[0]!.transport, 'shm');
      assert.equal(await ring.isRegistered(restarted), true, 'regions registered again with the new process');
      assert.ok(await waitUntil(async () => (await servedBy(restarted)) > 0, 10_000), 'the restarted endpoint takes requests again');
    } finally {
      restarted.close();
    }
    running = false;
    await Promise.all(workers);
    assert.equal(failed, 0, `no request lost: ${errors.slice(0, 3).join(' | ')}`);
  } finally {
    running = false;
    await pool.close();
  }
});

test('a stream whose Triton goes away rejects what is pending with a retriable error', async () => {
  const spec = await describeModel(client, 'colour_probe');
  const own = new TritonClient({ url: second!.url });
  const stream = own.modelStreamInfer();
  try {
    const res = await stream.infer({ model_name: 'colour_probe', id: 'before', inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [1, 224, 224, 3] }], outputs: classify(spec), raw_input_contents: [solidFrames(spec, ['red'])] }, 5000);
    assert.equal(res.id, 'before');
    const stopping = second!.stop();
    // Keep a request in flight while the server goes down.
    const pending = stream.infer({ model_name: 'colour_probe', id: 'during', inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [1, 224, 224, 3] }], outputs: classify(spec), raw_input_contents: [solidFrames(spec, ['red'])] }, 8000);
    const settled = pending.then(
      () => 'answered before shutdown',
      (err: FramewireError) => {
        assert.ok(err instanceof FramewireError);
        // Either in-band (Triton unloading the model answers with an error message and no status
        // code: not retriable) or by the stream breaking (retriable).
        return err.retriable ? 'stream broke' : 'rejected in-band';
      },
    );
    await stopping;
    const outcome = await settled;
    assert.ok(['answered before shutdown', 'stream broke', 'rejected in-band'].includes(outcome), outcome);
    // Whatever the timing, the stream is now broken: new requests fail fast and retriable.
    await new Promise((r) => setTimeout(r, 100));
    await assert.rejects(stream.infer({ model_name: 'colour_probe', id: 'after', inputs: [], raw_input_contents: [] }, 2000), (err: FramewireError) => err.retriable === true);
  } finally {
    stream.close();
    own.close();
  }
});
