/** packFrame: the typed-array FP32/FP16 paths write exactly what per-element little-endian writes would. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packFrame, type ModelSpec } from '../../src/infer/triton/model.js';

const spec = (inputDatatype: 'UINT8' | 'FP32' | 'FP16', clipFrames = 0): ModelSpec => ({
  name: 'm', version: '1', requestVersion: '', inputName: 'X', inputDatatype, elementBytes: { UINT8: 1, FP32: 4, FP16: 2 }[inputDatatype],
  height: 4, width: 8, clipFrames, maxBatchSize: 4, outputName: 'Y', classes: 2,
});
const pixels = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + seed) & 0xff));

/** Half-precision bits → number (reference decoder). */
function halfToNumber(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return frac * 2 ** -24;
  return (1 + frac / 1024) * 2 ** (exp - 15);
}

for (const dt of ['FP32', 'FP16'] as const) {
  for (const clip of [0, 3]) {
    test(`${dt}${clip ? ' clip' : ''}: every item lands at its position with the exact values, aligned or not`, () => {
      const s = spec(dt, clip);
      const n = 4 * 8 * 3 * Math.max(1, clip);
      const items = [pixels(n, 1), pixels(n, 200)];
      for (const shift of [0, 1, 2]) {
        // A view at an odd offset of a larger buffer: the per-element fallback.
        const backing = Buffer.alloc(2 * n * s.elementBytes + 8);
        const out = backing.subarray(shift, shift + 2 * n * s.elementBytes);
        items.forEach((p, i) => packFrame(s, p, out, i));
        for (let i = 0; i < 2; i++) {
          for (let j = 0; j < n; j++) {
            const at = (i * n + j) * s.elementBytes;
            const v = dt === 'FP32' ? out.readFloatLE(at) : halfToNumber(out.readUInt16LE(at));
            assert.equal(v, items[i]![j]!, `item ${i} element ${j} (offset ${shift})`);
          }
        }
      }
    });
  }
}

test('FP16 table: all 256 byte values are exact halves', () => {
  const s = { ...spec('FP16'), height: 1, width: 256 / 3 + 1 };
  const n = s.height * Math.floor(s.width) * 3;
  const p = Buffer.from(Array.from({ length: n }, (_, i) => i & 0xff));
  const out = Buffer.alloc(n * 2);
  packFrame({ ...s, width: Math.floor(s.width) }, p, out, 0);
  for (let i = 0; i < n; i++) assert.equal(halfToNumber(out.readUInt16LE(2 * i)), i & 0xff);
});

test('UINT8 copies the bytes; an item past the buffer is refused', () => {
  const s = spec('UINT8');
  const n = 4 * 8 * 3;
  const out = Buffer.alloc(2 * n);
  packFrame(s, pixels(n, 5), out, 1);
  assert.deepEqual(out.subarray(n), pixels(n, 5));
  assert.throws(() => packFrame(spec('FP32'), pixels(n, 5), Buffer.alloc(n * 4), 1), RangeError);
});
