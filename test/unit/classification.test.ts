import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClassification } from '../../src/infer/triton/model.js';

function bytesTensor(items: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const s of items) {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    parts.push(len, b);
  }
  return Buffer.concat(parts);
}

test("Triton's classification strings become label lists per frame", () => {
  const raw = bytesTensor(['0.97:2:red', '0.02:0:black', '0.6:4:blue', '0.4:6:cyan']);
  assert.deepEqual(parseClassification(raw, 2, 2), [
    [{ label: 'red', score: 0.97 }, { label: 'black', score: 0.02 }],
    [{ label: 'blue', score: 0.6 }, { label: 'cyan', score: 0.4 }],
  ]);
});

test('labels containing colons survive', () => {
  assert.deepEqual(parseClassification(bytesTensor(['0.5:1:a:b']), 1, 1), [[{ label: 'a:b', score: 0.5 }]]);
});

test('a short tensor is an error, not garbage', () => {
  assert.throws(() => parseClassification(bytesTensor(['0.5:1:a']), 2, 1), /shorter/);
});
