import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTopology, interpolateEnv } from '../../src/config/load.js';
import { FramewireError } from '../../src/core/errors.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const minimal = `
sources: [{ type: kafka }]
models: [{ name: colour_probe }]
sinks: [{ type: kafka }]
`;

function errorOf(text: string): FramewireError {
  try {
    parseTopology(text, 'topo.yaml');
  } catch (err) {
    assert.ok(err instanceof FramewireError);
    return err;
  }
  assert.fail('expected a topology error');
}

test('a minimal topology gets every default', () => {
  const t = parseTopology(minimal, 'topo.yaml');
  assert.equal(t.latency.budgetMs, 250);
  assert.equal(t.sources[0]!.topic, 'video.chunks');
  assert.equal(t.sinks[0]!.type === 'kafka' && t.sinks[0]!.topic, 'video.labels');
  assert.equal(t.http.listen, '127.0.0.1:8080');
  assert.equal(t.models[0]!.topK, 3);
});

test('topology/local.yaml is valid and uses the local stack', () => {
  const file = path.join(root, 'topology/local.yaml');
  const t = parseTopology(readFileSync(file, 'utf8'), file, {});
  assert.deepEqual(t.kafka.brokers, ['127.0.0.1:9092']);
  assert.equal(t.triton.url, '127.0.0.1:8001');
  assert.equal(t.latency.budgetMs, 250);
  assert.ok(t.models.some((m) => m.name === 'colour_probe'));
});

test('errors name the file, the field path and the problem', () => {
  const missing = errorOf(`sources: [{ type: kafka }]\nsinks: [{ type: kafka }]\n`);
  assert.equal(missing.code, 'TOPOLOGY_INVALID');
  assert.match(missing.message, /^topo\.yaml: models: /m);
  const wrongType = errorOf(minimal + 'latency: { budgetMs: "fast" }\n');
  assert.match(wrongType.message, /topo\.yaml: latency\.budgetMs: .*number/i);
  const typo = errorOf(minimal + 'batch: { maxWaitMS: 5 }\n');
  assert.match(typo.message, /topo\.yaml: batch: .*maxWaitMS/);
  const unknownType = errorOf(minimal.replace('type: kafka }]\nmodels', 'type: kinesis }]\nmodels'));
  assert.match(unknownType.message, /sources\[0\]/);
  const nested = errorOf(minimal.replace('{ name: colour_probe }', '{ name: colour_probe, topK: 0 }'));
  assert.match(nested.message, /models\[0\]\.topK/);
  const unreachable = errorOf(minimal.replace('{ name: colour_probe }', '{ name: colour_probe, shadow: { name: colour_probe_fp16, window: 100, promoteWhen: { agreement: 0.99, frames: 500 } } }'));
  assert.match(unreachable.message, /models\[0\]\.shadow\.promoteWhen\.frames: 500 frames is more than the report's window \(100\)/);
  const bar = errorOf(minimal.replace('{ name: colour_probe }', '{ name: colour_probe, shadow: { name: colour_probe_fp16, promoteWhen: { agreement: 1.5, frames: 500 } } }'));
  assert.match(bar.message, /models\[0\]\.shadow\.promoteWhen\.agreement/);
});

test('invalid YAML is reported as unreadable', () => {
  const e = errorOf('sources: [');
  assert.equal(e.code, 'TOPOLOGY_UNREADABLE');
  assert.match(e.message, /topo\.yaml/);
});

test('environment interpolation with defaults', () => {
  assert.equal(interpolateEnv('${A:-x}/${B}/${C:-z}', { A: 'a', B: 'b' }), 'a/b/z');
});
