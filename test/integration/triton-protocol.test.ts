/** The rest of the inference protocol against the real local Triton: statistics, shared-memory RPCs, streaming, parameters, deadlines. */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { TritonClient } from '../../src/infer/triton/client.js';
import { describeModel, classificationRequest, parseClassification, type ModelSpec } from '../../src/infer/triton/model.js';
import { StatsPoller } from '../../src/infer/triton/stats.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { FramewireError } from '../../src/core/errors.js';
import { ensureStack, TRITON_URL, randomName } from '../helpers/stack.js';
import { solidFrames } from '../helpers/frames.js';

let client: TritonClient;
let spec: ModelSpec;
before(async () => {
  ensureStack();
  client = new TritonClient({ url: TRITON_URL });
  spec = await describeModel(client, 'colour_probe');
});
after(() => client.close());

const COLOURS = ['red', 'green', 'blue'];

test('ModelStatistics reports running totals that grow with each request', async () => {
  const [before] = await client.modelStatistics('colour_probe');
  assert.ok(before && before.name === 'colour_probe');
  await client.modelInfer(classificationRequest(spec, solidFrames(spec, COLOURS), 3, 1, 'stats'), 10_000);
  const [after] = await client.modelStatistics('colour_probe');
  assert.ok(after!.inference_stats!.success!.count > before.inference_stats!.success!.count);
  assert.ok(after!.inference_count >= before.inference_count + 3);
  assert.ok(after!.inference_stats!.compute_infer!.ns > before.inference_stats!.compute_infer!.ns);
});

test('the statistics poller turns running totals into per-interval seconds per model and metrics', async () => {
  const metrics = new Metrics();
  const poller = new StatsPoller({ clients: () => [client], models: ['colour_probe'], intervalMs: 0, metrics });
  const baseline = await poller.poll();
  assert.equal(baseline[0]!.requests, 0, 'the first poll only sets the baseline');
  for (let i = 0; i < 3; i++) await client.modelInfer(classificationRequest(spec, solidFrames(spec, COLOURS), 3, 1, `p${i}`), 10_000);
  const [interval] = await poller.poll();
  // Other tests may use the model concurrently: at least ours.
  assert.ok(interval!.requests >= 3, `requests ${interval!.requests}`);
  assert.ok(interval!.inferences >= 9);
  assert.ok(interval!.seconds.compute_infer > 0 && interval!.seconds.compute_infer < 5);
  assert.ok(interval!.successSeconds >= interval!.seconds.compute_infer);
  const text = await metrics.registry.metrics();
  assert.match(text, /framewire_triton_compute_infer_seconds\{model="colour_probe"\} [0-9.e-]+/);
  assert.match(text, /framewire_triton_queue_seconds\{model="colour_probe"\}/);
  assert.match(text, /framewire_triton_server_requests_total\{model="colour_probe"\} [1-9]/);
});

test('system shared memory: register, status, unregister; a region Triton cannot open is refused', async () => {
  const fs = await import('node:fs');
  const name = randomName('fwtest');
  fs.writeFileSync(`/dev/shm/${name}`, Buffer.alloc(4096));
  try {
    await client.systemSharedMemoryRegister(name, `/${name}`, 4096);
    const [status] = await client.systemSharedMemoryStatus(name);
    assert.deepEqual({ name: status!.name, key: status!.key, byte_size: status!.byte_size }, { name, key: `/${name}`, byte_size: 4096 });
    assert.ok((await client.systemSharedMemoryStatus()).some((r) => r.name === name), 'listed among all regions');
    await client.systemSharedMemoryUnregister(name);
    assert.ok(!(await client.systemSharedMemoryStatus()).some((r) => r.name === name));
  } finally {
    await client.systemSharedMemoryUnregister(name).catch(() => {});
    fs.rmSync(`/dev/shm/${name}`, { force: true });
  }
  await assert.rejects(client.systemSharedMemoryRegister(`${name}-missing`, `/${name}-missing`, 4096), (err: FramewireError) => {
    assert.equal(err.retriable, false);
    return true;
  });
});

test('ModelStreamInfer: responses matched by id, in-band errors reject only their request', async () => {
  const stream = client.modelStreamInfer();
  try {
    const good = (colour: string, id: string) => stream.infer(classificationRequest(spec, solidFrames(spec, [colour]), 1, 1, id), 10_000);
    const bad = stream.infer({ model_name: 'colour_probe', id: 'bad', inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [1, 2, 2, 3] }], raw_input_contents: [Buffer.alloc(12)] }, 10_000);
    const results = await Promise.allSettled([good('red', 'r'), bad, good('blue', 'b'), good('green', 'g')]);
    const labels = results.map((r) => (r.status === 'fulfilled' ? `${r.value.id}:${parseClassification(r.value.raw_output_contents[0]!, 1, 1)[0]![0]!.label}` : 'rejected'));
    assert.deepEqual(labels, ['r:red', 'rejected', 'b:blue', 'g:green']);
    const err = (results[1] as PromiseRejectedResult).reason as FramewireError;
    assert.ok(err instanceof FramewireError);
    assert.equal(err.code, 'INFER_FAILED');
    assert.equal(err.retriable, false);
    assert.match(err.message, /request 'bad'/);
    assert.equal(stream.outstanding, 0);
    // Empty ids are filled in and still matched.
    const res = await stream.infer(classificationRequest(spec, solidFrames(spec, ['white']), 1, 1, ''), 10_000);
    assert.match(res.id, /^fw-s\d+$/);
  } finally {
    stream.end();
  }
});

test('ModelStreamInfer: closing the stream rejects every pending request', async () => {
  const stream = client.modelStreamInfer();
  const pending = [0, 1, 2].map((i) => stream.infer(classificationRequest(spec, solidFrames(spec, COLOURS), 3, 1, `c${i}`), 10_000));
  stream.close();
  for (const p of pending) await assert.rejects(p, (err: FramewireError) => err instanceof FramewireError && err.code === 'INFER_FAILED');
  await assert.rejects(stream.infer(classificationRequest(spec, solidFrames(spec, ['red']), 1, 1, 'after'), 1000), FramewireError);
});

test('requests carry Triton timeout (µs) and priority parameters', async () => {
  const req = classificationRequest(spec, solidFrames(spec, ['cyan']), 1, 1, 'params');
  req.parameters = { timeout: { int64_param: 2_000_000 }, priority: { int64_param: 1 } };
  const res = await client.modelInfer(req, 10_000);
  assert.equal(parseClassification(res.raw_output_contents[0]!, 1, 1)[0]![0]!.label, 'cyan');
  // Triton checks the types: a timeout must be an int64.
  req.parameters = { timeout: { string_param: 'soon' } };
  await assert.rejects(client.modelInfer(req, 10_000), (err: FramewireError) => err.code === 'INFER_INVALID_ARGUMENT' && !err.retriable);
});

test('a passed deadline surfaces as a typed retriable error (unary and stream)', async () => {
  const frames = solidFrames(spec, new Array(32).fill('magenta'));
  await assert.rejects(client.modelInfer(classificationRequest(spec, frames, 32, 1, 'late'), 1), (err: FramewireError) => {
    assert.equal(err.code, 'INFER_DEADLINE_EXCEEDED');
    assert.equal(err.retriable, true);
    return true;
  });
  const stream = client.modelStreamInfer();
  try {
    await assert.rejects(stream.infer(classificationRequest(spec, frames, 32, 1, 'late-s'), 1), (err: FramewireError) => err.code === 'INFER_DEADLINE_EXCEEDED' && err.retriable);
    // The stream survives a late request.
    const res = await stream.infer(classificationRequest(spec, solidFrames(spec, ['red']), 1, 1, 'next'), 10_000);
    assert.equal(res.id, 'next');
  } finally {
    stream.end();
  }
});

test('ModelInfer without the tensor copy: same answers as grpc-js\'s generic call, Triton\'s errors typed the same, buffers reused', async () => {
  for (const model of ['colour_probe', 'colour_probe_fp32']) {
    const s = await describeModel(client, model);
    // One pooled-style buffer reused for different batches and sizes (only a prefix is sent).
    const pooled = Buffer.alloc(8 * s.height * s.width * 3 * s.elementBytes);
    for (const colours of [['red', 'green', 'blue'], ['white'], ['cyan', 'black', 'magenta', 'yellow', 'red', 'green', 'blue', 'white']]) {
      solidFrames(s, colours).copy(pooled);
      const req = classificationRequest(s, pooled.subarray(0, colours.length * s.height * s.width * 3 * s.elementBytes), colours.length, 2, `eq-${model}-${colours.length}`);
      req.parameters = { priority: { int64_param: 0 } };
      const [ours, generic] = await Promise.all([client.modelInfer(req, 10_000), client.modelInferGrpcJs(req, 10_000)]);
      assert.equal(ours.id, req.id);
      assert.deepEqual(ours.outputs, generic.outputs);
      assert.deepEqual(ours.raw_output_contents, generic.raw_output_contents);
      assert.deepEqual(parseClassification(ours.raw_output_contents[0]!, colours.length, 2).map((l) => l[0]!.label), colours);
    }
  }
  // A tensor whose size does not match its shape: Triton's INVALID_ARGUMENT, not retriable, from both paths.
  const bad = classificationRequest(spec, Buffer.alloc(100), 1, 1, 'bad');
  // One at a time: a rejection not yet awaited would surface as an unhandled one.
  for (const call of [() => client.modelInfer(bad, 10_000), () => client.modelInferGrpcJs(bad, 10_000)]) {
    await assert.rejects(call(), (err: FramewireError) => err.code === 'INFER_INVALID_ARGUMENT' && !err.retriable && /ModelInfer: 3 INVALID_ARGUMENT/.test(err.message));
  }
  // Concurrency on one connection, answers matched to their own requests.
  const colours = ['red', 'green', 'blue', 'yellow', 'cyan', 'magenta', 'white', 'black'];
  const answers = await Promise.all(colours.map((c, i) => client.modelInfer(classificationRequest(spec, solidFrames(spec, [c]), 1, 1, `c${i}`), 10_000)));
  assert.deepEqual(answers.map((r) => parseClassification(r.raw_output_contents[0]!, 1, 1)[0]![0]!.label), colours);
});
