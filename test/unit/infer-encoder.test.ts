/** The ModelInfer encoder: a cached header + the caller's tensor buffers is the same protobuf message grpc-js would send. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { InferRequestEncoder } from '../../src/infer/triton/unary.js';
import type { InferRequest } from '../../src/infer/triton/types.js';

const PROTO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../proto');
const def = protoLoader.loadSync(path.join(PROTO_DIR, 'grpc_service.proto'), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] });
const method = (def['inference.GRPCInferenceService'] as protoLoader.ServiceDefinition).ModelInfer!;

function frame(chunks: Buffer[]): { message: Buffer; length: number } {
  const all = Buffer.concat(chunks);
  assert.equal(all[0], 0, 'uncompressed');
  return { length: all.readUInt32BE(1), message: all.subarray(5) };
}

const base = (tensors: Buffer[], extra: Partial<InferRequest> = {}): InferRequest => ({
  model_name: 'colour_probe',
  inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [2, 4, 4, 3] }],
  outputs: [{ name: 'SCORES', parameters: { classification: { int64_param: 3 } } }],
  raw_input_contents: tensors,
  ...extra,
});

test('header + tensors decode to the same ModelInferRequest as protobufjs encodes, with the tensor not copied', () => {
  const enc = new InferRequestEncoder((m) => method.requestSerialize(m as object));
  // A tensor longer than 127 bytes needs a multi-byte varint length; 300 KB a three-byte one.
  for (const size of [0, 5, 200, 300_000]) {
    const tensor = Buffer.alloc(size, 7);
    const req = base([tensor], { id: `r${size}`, parameters: { timeout: { int64_param: 123_456 }, priority: { int64_param: 2 } } });
    const chunks = enc.encode(req);
    assert.equal(chunks.length, 2);
    assert.equal(chunks[1], tensor, 'the caller\'s buffer itself, not a copy');
    const { message, length } = frame(chunks);
    assert.equal(length, message.length, 'gRPC length prefix');
    assert.deepEqual(method.requestDeserialize(message), method.requestDeserialize(method.requestSerialize(req)));
  }
  assert.equal(enc.cachedHeaders, 1, 'one fixed part for one model and shape');
});

test('several tensors, shared memory (no tensor), no id/parameters; one cached header per distinct shape', () => {
  const enc = new InferRequestEncoder((m) => method.requestSerialize(m as object));
  const two = base([Buffer.alloc(130, 1), Buffer.alloc(3, 2)], {
    inputs: [
      { name: 'A', datatype: 'UINT8', shape: [1, 130] },
      { name: 'B', datatype: 'UINT8', shape: [1, 3] },
    ],
  });
  const chunks = enc.encode(two);
  assert.equal(chunks.length, 4);
  assert.deepEqual(method.requestDeserialize(frame(chunks).message), method.requestDeserialize(method.requestSerialize(two)));

  const shm = base([], { inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [2, 4, 4, 3], parameters: { shared_memory_region: { string_param: 'r' }, shared_memory_byte_size: { int64_param: 96 }, shared_memory_offset: { int64_param: 0 } } }] });
  assert.deepEqual(method.requestDeserialize(frame(enc.encode(shm)).message), method.requestDeserialize(method.requestSerialize(shm)));
  for (let n = 1; n <= 4; n++) enc.encode(base([Buffer.alloc(n * 48)], { inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [n, 4, 4, 3] }] }));
  assert.equal(enc.cachedHeaders, 2 + 4);
});
