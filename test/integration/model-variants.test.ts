/**
 * The INT8 and FP16 variants of open_nsfw (scripts/models/variants.py) answer through Triton with
 * the same input contract and labels as open_nsfw, and score a handful of fixed images (photographs
 * and faces shipped in scikit-image, an H.264 frame of an ffmpeg pattern) within a measured
 * tolerance of FP32.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TritonClient } from '../../src/infer/triton/client.js';
import { classificationRequest, describeModel, parseClassification, type ModelSpec } from '../../src/infer/triton/model.js';
import { ensureStack, ROOT, TRITON_URL } from '../helpers/stack.js';
import { IMAGE_BYTES, modelImages, type ImageSet } from '../helpers/images.js';

/**
 * Largest |Δ nsfw| allowed against FP32 per image. Measured by bench/models.ts over the 288
 * evaluation images: INT8 at most 0.106 (mean 0.0071; the largest on small grey lfw images),
 * FP16 at most 0.0024. The bounds leave a little room above those, and stay far below what
 * flips a label on these images.
 */
const TOLERANCE: Record<string, number> = { open_nsfw_int8: 0.12, open_nsfw_fp16: 0.01 };
const VARIANTS = Object.keys(TOLERANCE);

let client: TritonClient;
let fixed: ImageSet;
before(() => {
  ensureStack();
  client = new TritonClient({ url: TRITON_URL, controlDeadlineMs: 10_000 });
  fixed = modelImages('fixed');
});
after(() => client.close());

async function scores(spec: ModelSpec): Promise<{ top: string[]; nsfw: number[] }> {
  const n = fixed.names.length;
  const res = await client.modelInfer(classificationRequest(spec, fixed.pixels, n, 2, `variants-${spec.name}`), 60_000);
  assert.deepEqual(res.outputs[0]!.shape, [n, 2]);
  const labels = parseClassification(res.raw_output_contents[0]!, n, 2);
  for (const l of labels) assert.deepEqual(l.map((x) => x.label).sort(), ['nsfw', 'sfw'], `${spec.name} answers with the labels file's classes`);
  return { top: labels.map((l) => l[0]!.label), nsfw: labels.map((l) => l.find((x) => x.label === 'nsfw')!.score) };
}

test('the fixed images are the ones the tolerance was measured on', () => {
  assert.equal(fixed.pixels.length, fixed.names.length * IMAGE_BYTES);
  assert.deepEqual(fixed.names, ['photo:chelsea.png:0', 'photo:retina.jpg:2', 'photo:color.png:0', 'lfw:0', 'lfw:142', 'pattern:1:3']);
});

test('each variant has open_nsfw input contract, output and labels file', async () => {
  const reference = await describeModel(client, 'open_nsfw');
  const labels = readFileSync(path.join(ROOT, 'deploy/triton/models/open_nsfw/labels.txt'), 'utf8');
  for (const name of VARIANTS) {
    assert.equal(await client.modelReady(name), true, `${name} is loaded by the stack`);
    const spec = await describeModel(client, name);
    assert.deepEqual({ ...spec, name: 'open_nsfw', version: reference.version }, reference, `${name} takes and returns what open_nsfw does`);
    assert.equal(readFileSync(path.join(ROOT, `deploy/triton/models/${name}/labels.txt`), 'utf8'), labels, `${name} has open_nsfw's labels file`);
    const config = await client.modelConfig(name);
    assert.ok(config.dynamic_batching, `${name} is served with dynamic batching`);
  }
});

test('each variant scores the fixed images within its measured tolerance of FP32, with the same top label', async () => {
  const fp32 = await scores(await describeModel(client, 'open_nsfw'));
  // Not a trivial comparison: the set holds a high and a middling nsfw score, not only near-zero ones.
  assert.ok(Math.max(...fp32.nsfw) > 0.5, `FP32 max nsfw ${Math.max(...fp32.nsfw)}`);
  for (const name of VARIANTS) {
    const v = await scores(await describeModel(client, name));
    assert.deepEqual(v.top, fp32.top, `${name}: top labels`);
    v.nsfw.forEach((s, i) => {
      const d = Math.abs(s - fp32.nsfw[i]!);
      assert.ok(d <= TOLERANCE[name]!, `${name} on ${fixed.names[i]}: nsfw ${s.toFixed(4)} vs FP32 ${fp32.nsfw[i]!.toFixed(4)} (|Δ| ${d.toFixed(4)} > ${TOLERANCE[name]})`);
    });
  }
});
