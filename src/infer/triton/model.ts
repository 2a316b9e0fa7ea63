/**
 * A classification model served by Triton, described by what Triton itself reports
 * (ModelMetadata + ModelConfig): input name, shape, datatype, batch limit, output, labels.
 * Nothing about the model is hard-coded in the pipeline.
 */
import { FramewireError } from '../../core/errors.js';
import type { Label } from '../../core/frame.js';
import type { TritonClient } from './client.js';
import type { InferRequest } from './types.js';

export interface ModelSpec {
  name: string;
  version: string;
  inputName: string;
  /** Frame geometry the model takes (NHWC, 3 channels, UINT8). */
  height: number;
  width: number;
  maxBatchSize: number;
  outputName: string;
  /** Number of classes (the output's last dimension). */
  classes: number;
}

export async function describeModel(client: TritonClient, name: string, version = ''): Promise<ModelSpec> {
  const [meta, config] = await Promise.all([client.modelMetadata(name, version), client.modelConfig(name, version)]);
  const bad = (problem: string) =>
    new FramewireError('MODEL_UNSUPPORTED', 'infer', `model '${name}': ${problem}`, { retriable: false });
  if (meta.inputs.length !== 1) throw bad(`expected one input, Triton reports ${meta.inputs.length}`);
  const input = meta.inputs[0]!;
  const batched = config.max_batch_size > 0;
  // Metadata shapes include the batch dimension (-1) when the model batches.
  const dims = batched ? input.shape.slice(1) : input.shape;
  if (input.datatype !== 'UINT8') throw bad(`input '${input.name}' is ${input.datatype}; the pipeline feeds UINT8 RGB frames`);
  if (dims.length !== 3 || dims[2] !== 3 || dims[0]! <= 0 || dims[1]! <= 0) {
    throw bad(`input '${input.name}' has shape [${dims.join(',')}]; expected a fixed [height, width, 3]`);
  }
  if (meta.outputs.length < 1) throw bad('no outputs');
  const output = meta.outputs[0]!;
  const outDims = batched ? output.shape.slice(1) : output.shape;
  const classes = outDims[outDims.length - 1] ?? 0;
  const outCfg = config.output.find((o) => o.name === output.name);
  if (!outCfg?.label_filename) throw bad(`output '${output.name}' has no label_filename; labels come from Triton's classification extension`);
  return {
    name,
    version: meta.versions[meta.versions.length - 1] ?? version,
    inputName: input.name,
    height: dims[0]!,
    width: dims[1]!,
    maxBatchSize: Math.max(1, config.max_batch_size),
    outputName: output.name,
    classes,
  };
}

/** Builds a ModelInfer request for `count` frames packed in `pixels` (count × H × W × 3 bytes). */
export function classificationRequest(spec: ModelSpec, pixels: Buffer, count: number, topK: number, id: string): InferRequest {
  return {
    model_name: spec.name,
    model_version: '',
    id,
    inputs: [{ name: spec.inputName, datatype: 'UINT8', shape: [count, spec.height, spec.width, 3] }],
    // Triton's classification extension returns "score:index:label" strings, top-k per frame.
    outputs: [{ name: spec.outputName, parameters: { classification: { int64_param: Math.min(topK, spec.classes) } } }],
    raw_input_contents: [pixels],
  };
}

/**
 * Parses a BYTES classification output (each element: u32 little-endian length + "score:index:label")
 * into `count` label lists of `k` entries each, highest score first.
 */
export function parseClassification(raw: Buffer, count: number, k: number): Label[][] {
  const out: Label[][] = new Array(count);
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const labels: Label[] = new Array(k);
    for (let j = 0; j < k; j++) {
      if (pos + 4 > raw.length) throw new FramewireError('INFER_FAILED', 'postprocess', 'classification output shorter than expected');
      const len = raw.readUInt32LE(pos);
      pos += 4;
      const s = raw.toString('utf8', pos, pos + len);
      pos += len;
      const c1 = s.indexOf(':');
      const c2 = s.indexOf(':', c1 + 1);
      labels[j] = { label: c2 >= 0 ? s.slice(c2 + 1) : s.slice(c1 + 1), score: Number(s.slice(0, c1)) };
    }
    out[i] = labels;
  }
  return out;
}
