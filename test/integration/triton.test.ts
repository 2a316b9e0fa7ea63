import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { TritonClient } from '../../src/infer/triton/client.js';
import { describeModel, classificationRequest, parseClassification } from '../../src/infer/triton/model.js';
import { ensureStack, TRITON_URL } from '../helpers/stack.js';

const COLOURS: [string, [number, number, number]][] = [
  ['black', [0, 0, 0]],
  ['white', [255, 255, 255]],
  ['red', [255, 0, 0]],
  ['green', [0, 255, 0]],
  ['blue', [0, 0, 255]],
  ['yellow', [255, 255, 0]],
  ['cyan', [0, 255, 255]],
  ['magenta', [255, 0, 255]],
];

let client: TritonClient;
before(() => {
  ensureStack();
  client = new TritonClient({ url: TRITON_URL });
});
after(() => client.close());

test('Triton is live and ready and reports both models READY over gRPC', async () => {
  assert.equal(await client.serverLive(), true);
  assert.equal(await client.serverReady(), true);
  assert.equal(await client.modelReady('colour_probe'), true);
  assert.equal(await client.modelReady('open_nsfw'), true);
  const index = await client.repositoryIndex();
  const states = Object.fromEntries(index.map((m) => [m.name, m.state]));
  assert.equal(states.colour_probe, 'READY');
  assert.equal(states.open_nsfw, 'READY');
  const meta = await client.serverMetadata();
  assert.ok(meta.extensions.includes('classification'), 'the classification extension is what our labels rely on');
});

test('model metadata and config describe the inputs the pipeline will feed', async () => {
  const spec = await describeModel(client, 'colour_probe');
  assert.deepEqual(
    { input: spec.inputName, h: spec.height, w: spec.width, batch: spec.maxBatchSize, classes: spec.classes },
    { input: 'FRAME', h: 224, w: 224, batch: 32, classes: 8 },
  );
  const config = await client.modelConfig('colour_probe');
  assert.ok(config.dynamic_batching, 'colour_probe is served with dynamic batching');
  const nsfw = await describeModel(client, 'open_nsfw');
  assert.equal(nsfw.classes, 2);
});

test('colour_probe labels a batch of 8 solid-colour frames, one per class, in one request', async () => {
  const spec = await describeModel(client, 'colour_probe');
  const frameBytes = spec.height * spec.width * 3;
  const pixels = Buffer.alloc(COLOURS.length * frameBytes);
  COLOURS.forEach(([, [r, g, b]], i) => {
    for (let p = i * frameBytes; p < (i + 1) * frameBytes; p += 3) {
      pixels[p] = r;
      pixels[p + 1] = g;
      pixels[p + 2] = b;
    }
  });
  const before = (await client.modelStatistics('colour_probe'))[0]!.inference_stats!.success!.count;
  const res = await client.modelInfer(classificationRequest(spec, pixels, COLOURS.length, 3, 'colours'), 10_000);
  assert.deepEqual(res.outputs[0]!.shape, [8, 3]);
  const labels = parseClassification(res.raw_output_contents[0]!, 8, 3);
  assert.deepEqual(labels.map((l) => l[0]!.label), COLOURS.map(([name]) => name));
  for (const l of labels) {
    assert.ok(l[0]!.score > 0.9, `top score ${l[0]!.score}`);
    assert.ok(l[0]!.score >= l[1]!.score && l[1]!.score >= l[2]!.score, 'highest first');
  }
  const after = (await client.modelStatistics('colour_probe'))[0]!.inference_stats!.success!.count;
  assert.equal(after - before, 1, 'one request for the whole batch');
});

test('errors are typed: an unknown model is not retriable, an unreachable server is', async () => {
  await assert.rejects(client.modelMetadata('no_such_model'), (err: { code: string; retriable: boolean }) => {
    assert.equal(err.retriable, false);
    return true;
  });
  const dead = new TritonClient({ url: '127.0.0.1:1', controlDeadlineMs: 1000 });
  await assert.rejects(dead.serverLive(), (err: { code: string; retriable: boolean }) => {
    assert.ok(['INFER_UNAVAILABLE', 'INFER_DEADLINE_EXCEEDED'].includes(err.code), err.code);
    assert.equal(err.retriable, true);
    return true;
  });
  dead.close();
});

test('a clip model is described by its time axis and classifies a whole window in one item', async () => {
  const spec = await describeModel(client, 'colour_clip');
  assert.deepEqual(
    { input: spec.inputName, clip: spec.clipFrames, h: spec.height, w: spec.width, batch: spec.maxBatchSize },
    { input: 'CLIP', clip: 8, h: 64, w: 64, batch: 8 },
  );
  await assert.rejects(describeModel(client, 'colour_clip', { clipFrames: 4 }), /takes 8 frames/);
  // Two clips: 5 green frames then 3 black (mean nearer green), and 3 green then 5 black (nearer
  // black). A model that looked at one frame only could not tell them apart.
  const frameBytes = spec.height * spec.width * 3;
  const clipBytes = spec.clipFrames * frameBytes;
  const pixels = Buffer.alloc(2 * clipBytes);
  for (const [c, greens] of [[0, 5], [1, 3]] as const) {
    for (let f = 0; f < greens; f++) {
      const start = c * clipBytes + f * frameBytes;
      for (let p = start; p < start + frameBytes; p += 3) pixels[p + 1] = 255;
    }
  }
  const res = await client.modelInfer(classificationRequest(spec, pixels, 2, 1, 'clips'), 10_000);
  assert.deepEqual(res.outputs[0]!.shape, [2, 1]);
  const labels = parseClassification(res.raw_output_contents[0]!, 2, 1);
  assert.deepEqual(labels.map((l) => l[0]!.label), ['green', 'black']);
});
