/**
 * The open_nsfw variants' Triton configs agree where a topology relies on them: the CPU repository
 * (deploy/triton/models) and the GPU one (deploy/triton/tensorrt) name the same models with the
 * same input, output, batch limit and labels file, so switching variants, or moving a topology from
 * a CPU node to a GPU node, changes nothing a label consumer sees.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/stack.js';

interface Contract {
  name: string;
  maxBatch: string;
  io: string;
  labels: string;
}

function contract(dir: string): Contract {
  const cfg = readFileSync(path.join(dir, 'config.pbtxt'), 'utf8').replace(/#.*$/gm, '');
  const field = (re: RegExp) => re.exec(cfg)?.[1] ?? '';
  // input and output blocks without whitespace: name, data_type, format, dims, label_filename.
  const io = ['input', 'output'].map((k) => field(new RegExp(`\\b${k}\\s*\\[([\\s\\S]*?)\\n\\]`)).replace(/\s+/g, '')).join('|');
  return { name: field(/^name:\s*"([^"]+)"/m), maxBatch: field(/max_batch_size:\s*(\d+)/), io, labels: readFileSync(path.join(dir, 'labels.txt'), 'utf8') };
}

const CPU = path.join(ROOT, 'deploy/triton/models');
const GPU = path.join(ROOT, 'deploy/triton/tensorrt');

test('open_nsfw, open_nsfw_int8 and open_nsfw_fp16 take and return the same, with the same labels', () => {
  const ref = contract(path.join(CPU, 'open_nsfw'));
  assert.match(ref.io, /name:"FRAME"data_type:TYPE_UINT8/);
  for (const m of ['open_nsfw_int8', 'open_nsfw_fp16']) {
    const c = contract(path.join(CPU, m));
    assert.equal(c.name, m, `${m}: config name matches its folder`);
    assert.deepEqual({ ...c, name: ref.name }, ref, `${m} differs from open_nsfw`);
  }
});

test('each TensorRT model has the name, input, output, batch limit and labels of its CPU namesake', () => {
  const gpuModels = ['colour_probe', 'open_nsfw', 'open_nsfw_int8'];
  for (const m of gpuModels) {
    assert.ok(existsSync(path.join(GPU, m, 'config.pbtxt')), `${m} has a TensorRT config`);
    assert.deepEqual(contract(path.join(GPU, m)), contract(path.join(CPU, m)), `${m}: GPU and CPU configs disagree`);
  }
  assert.match(readFileSync(path.join(GPU, 'open_nsfw_int8/config.pbtxt'), 'utf8'), /platform:\s*"tensorrt_plan"/);
});
