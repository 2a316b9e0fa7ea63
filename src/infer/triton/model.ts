/**
 * A classification model served by Triton, described by what Triton itself reports
 * (ModelMetadata + ModelConfig): input name, shape, datatype, batch limit, output, labels.
 * Nothing about the model is hard-coded in the pipeline.
 */
import { FramewireError } from '../../core/errors.js';
import type { Label } from '../../core/frame.js';
import type { TritonClient } from './client.js';
import type { InferRequest } from './types.js';

/** Input datatypes the pipeline can feed: frames are decoded as UINT8 RGB and widened as needed. */
export const INPUT_DATATYPES = ['UINT8', 'FP32', 'FP16'] as const;
export type InputDatatype = (typeof INPUT_DATATYPES)[number];
const ELEMENT_BYTES: Record<InputDatatype, number> = { UINT8: 1, FP32: 4, FP16: 2 };

export interface ModelSpec {
  name: string;
  /** The version Triton serves for these requests (pinned, or the latest it has loaded when described). */
  version: string;
  /** What requests send as `model_version`: the topology's `models[].version`, or '' for Triton's version policy. */
  requestVersion: string;
  inputName: string;
  /** UINT8 takes the pixels as they are; FP32/FP16 take the same values 0..255 as floats (the model normalises). */
  inputDatatype: InputDatatype;
  /** Bytes per tensor element of the input. */
  elementBytes: number;
  /** Frame geometry the model takes (NHWC, 3 channels). */
  height: number;
  width: number;
  /**
   * Clip models: frames per input along the time axis (input [T, H, W, 3]); 0 for per-frame
   * models (input [H, W, 3]).
   */
  clipFrames: number;
  maxBatchSize: number;
  outputName: string;
  /** Number of classes (the output's last dimension). */
  classes: number;
}

export interface DescribeOptions {
  version?: string;
  /** Window length for a clip model whose time axis is variable (-1) in its metadata. */
  clipFrames?: number;
}

export async function describeModel(client: TritonClient, name: string, opts: DescribeOptions = {}): Promise<ModelSpec> {
  const version = opts.version ?? '';
  const [meta, config] = await Promise.all([client.modelMetadata(name, version), client.modelConfig(name, version)]);
  const bad = (problem: string) =>
    new FramewireError('MODEL_UNSUPPORTED', 'infer', `model '${name}': ${problem}`, { retriable: false });
  if (meta.inputs.length !== 1) throw bad(`expected one input, Triton reports ${meta.inputs.length}`);
  const input = meta.inputs[0]!;
  const batched = config.max_batch_size > 0;
  // Metadata shapes include the batch dimension (-1) when the model batches.
  const dims = batched ? input.shape.slice(1) : input.shape;
  if (!(INPUT_DATATYPES as readonly string[]).includes(input.datatype)) {
    throw bad(`input '${input.name}' is ${input.datatype}; the pipeline feeds RGB frames as ${INPUT_DATATYPES.join(', ')}`);
  }
  const inputDatatype = input.datatype as InputDatatype;
  // A time axis in front of the frame geometry makes a clip model: [T, H, W, 3].
  const clip = dims.length === 4;
  const hw = clip ? dims.slice(1) : dims;
  if ((dims.length !== 3 && dims.length !== 4) || hw[2] !== 3 || hw[0]! <= 0 || hw[1]! <= 0) {
    throw bad(`input '${input.name}' has shape [${dims.join(',')}]; expected a fixed [height, width, 3], or [time, height, width, 3] for a clip model`);
  }
  let clipFrames = 0;
  if (clip) {
    const t = dims[0]!;
    if (t > 0) {
      if (opts.clipFrames !== undefined && opts.clipFrames !== t) throw bad(`its time axis takes ${t} frames; the topology asks for ${opts.clipFrames}`);
      clipFrames = t;
    } else {
      if (opts.clipFrames === undefined) throw bad(`input '${input.name}' has a variable time axis; set clip.frames in the topology`);
      clipFrames = opts.clipFrames;
    }
  }
  if (meta.outputs.length < 1) throw bad('no outputs');
  const output = meta.outputs[0]!;
  const outDims = batched ? output.shape.slice(1) : output.shape;
  const classes = outDims[outDims.length - 1] ?? 0;
  const outCfg = config.output.find((o) => o.name === output.name);
  if (!outCfg?.label_filename) throw bad(`output '${output.name}' has no label_filename; labels come from Triton's classification extension`);
  return {
    name,
    // A pinned version is what requests name; unpinned, Triton's version policy picks (the latest).
    version: version || (meta.versions[meta.versions.length - 1] ?? ''),
    requestVersion: version,
    inputName: input.name,
    inputDatatype,
    elementBytes: ELEMENT_BYTES[inputDatatype],
    height: hw[0]!,
    width: hw[1]!,
    clipFrames,
    maxBatchSize: Math.max(1, config.max_batch_size),
    outputName: output.name,
    classes,
  };
}

/** Why `next` cannot take over `cur`'s frames (another input datatype or geometry), or undefined when it can. */
export function inputMismatch(cur: ModelSpec, next: ModelSpec): string | undefined {
  const shape = (s: ModelSpec) => `${s.inputDatatype} ${s.clipFrames ? `${s.clipFrames}x` : ''}${s.width}x${s.height}`;
  return shape(cur) === shape(next) ? undefined : `model '${next.name}' takes ${shape(next)}, the running lane feeds ${shape(cur)}`;
}

/** Pixels (UINT8 values) of one input item: a frame, or a clip of `clipFrames` frames. */
export function itemPixels(spec: ModelSpec): number {
  return spec.height * spec.width * 3 * Math.max(1, spec.clipFrames);
}

/** Bytes of one input item (a frame, or a clip) as the model's input tensor. */
export function frameTensorBytes(spec: ModelSpec): number {
  return itemPixels(spec) * spec.elementBytes;
}

/** The input tensor's shape for `count` items. */
export function inputShape(spec: ModelSpec, count: number): number[] {
  return spec.clipFrames > 0 ? [count, spec.clipFrames, spec.height, spec.width, 3] : [count, spec.height, spec.width, 3];
}

// FP16 bit patterns of the integers 0..255 (all exact in half precision).
const FP16_OF_BYTE = new Uint16Array(256);
{
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let v = 0; v < 256; v++) {
    f32[0] = v;
    const bits = u32[0]!;
    const exp = ((bits >>> 23) & 0xff) - 127 + 15;
    FP16_OF_BYTE[v] = v === 0 ? 0 : (exp << 10) | ((bits >>> 13) & 0x3ff);
  }
}

/** Typed arrays are in platform byte order; Triton wants little-endian (every platform Node runs on today). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Writes one item's UINT8 RGB pixels (a frame, or a clip's frames in time order) into `out` at
 * item position `index` as the model's input datatype (little-endian). No allocation beyond a
 * typed-array view: `out` is a pooled batch buffer. FP32 widens through a Float32Array over
 * `out`, FP16 maps each byte to its half-precision bits through a Uint16Array (a 256-entry
 * table); a buffer not aligned to the element size falls back to per-element writes.
 */
export function packFrame(spec: ModelSpec, pixels: Buffer, out: Buffer, index: number): void {
  const n = itemPixels(spec);
  if (spec.inputDatatype === 'UINT8') {
    pixels.copy(out, index * n, 0, n);
    return;
  }
  const pos = index * n * spec.elementBytes;
  const at = out.byteOffset + pos;
  if (pos + n * spec.elementBytes > out.length) throw new RangeError(`item ${index} does not fit a ${out.length}-byte batch buffer`);
  if (spec.inputDatatype === 'FP32') {
    if (LITTLE_ENDIAN && at % 4 === 0) {
      const f32 = new Float32Array(out.buffer, at, n);
      for (let i = 0; i < n; i++) f32[i] = pixels[i]!;
    } else {
      for (let i = 0; i < n; i++) out.writeFloatLE(pixels[i]!, pos + 4 * i);
    }
  } else if (LITTLE_ENDIAN && at % 2 === 0) {
    const u16 = new Uint16Array(out.buffer, at, n);
    for (let i = 0; i < n; i++) u16[i] = FP16_OF_BYTE[pixels[i]!]!;
  } else {
    for (let i = 0; i < n; i++) out.writeUInt16LE(FP16_OF_BYTE[pixels[i]!]!, pos + 2 * i);
  }
}

/** Builds a ModelInfer request for `count` frames packed in `tensor` (count × H × W × 3 elements of the input datatype). */
export function classificationRequest(spec: ModelSpec, tensor: Buffer, count: number, topK: number, id: string): InferRequest {
  return {
    model_name: spec.name,
    model_version: spec.requestVersion,
    id,
    inputs: [{ name: spec.inputName, datatype: spec.inputDatatype, shape: inputShape(spec, count) }],
    // Triton's classification extension returns "score:index:label" strings, top-k per frame.
    outputs: [{ name: spec.outputName, parameters: { classification: { int64_param: Math.min(topK, spec.classes) } } }],
    raw_input_contents: [tensor],
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
