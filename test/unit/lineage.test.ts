/**
 * Lineage on records (docs/contracts.md "Lineage"): the topology's content hash, the chunk offset
 * each frame is remembered by, and the label, dropped, change and alert records built from them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTopology } from '../../src/config/load.js';
import { canonicalJson, topologyHash } from '../../src/config/hash.js';
import { labelRecordOf, type BatchLineage } from '../../src/sinks/labels.js';
import { DropPublisher, droppedEvent } from '../../src/topology/drops.js';
import { PartitionTracker } from '../../src/sources/kafka/checkpoint.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { OutputStage } from '../../src/sinks/output.js';
import { Smoother, smoothingSchema } from '../../src/postprocess/smoothing.js';
import { AlertEngine } from '../../src/alerts/engine.js';
import { alertsSchema } from '../../src/alerts/config.js';
import type { DroppedEvent, Frame, FrameOwner, LabelRecord } from '../../src/core/frame.js';
import type { EventBatch, Sink } from '../../src/core/sink.js';

const TOPO = `name: lineage
sources: [{ type: kafka, topic: video.chunks }]
sinks: [{ type: kafka }]
models: [{ name: colour_probe, topK: 3 }]
`;

test('the topology hash ignores comments, key order and defaults spelled out, and changes with the config', () => {
  const base = topologyHash(parseTopology(TOPO, 'a.yaml'));
  assert.match(base, /^sha256:[0-9a-f]{16}$/);
  const reordered = `# the same pipeline, written differently
models:
  - topK: 3        # the default
    name: "colour_probe"
sinks: [{ type: kafka }]
sources: [{ topic: video.chunks, type: kafka }]
name: lineage
`;
  assert.equal(topologyHash(parseTopology(reordered, 'b.yaml')), base);
  assert.equal(topologyHash(parseTopology(TOPO, 'a.yaml')), base, 'the same file twice');
  assert.notEqual(topologyHash(parseTopology(TOPO.replace('topK: 3', 'topK: 2'), 'c.yaml')), base);
  assert.notEqual(topologyHash(parseTopology(TOPO.replace('video.chunks', 'other.chunks'), 'd.yaml')), base);
});

test('canonical JSON sorts object keys, keeps array order, drops undefined fields', () => {
  assert.equal(canonicalJson({ b: 1, a: [3, { d: undefined, c: 'x' }, 1] }), '{"a":[3,{"c":"x"},1],"b":1}');
  assert.notEqual(canonicalJson([1, 2]), canonicalJson([2, 1]));
});

const owner: FrameOwner = { framePublished() {}, framesDropped() {} };

function frame(index: number, over: Partial<Frame> = {}): Frame {
  return { stream: 'cam-1', session: 's1', index, ptsMs: index * 40, captureTs: 1000 + index * 40, deadlineTs: 2000, keyframe: false, data: Buffer.alloc(0), traceparent: undefined, decodedAt: 100, owner, partition: 2, offset: 500 + index, ...over };
}

const batch: BatchLineage = { model: 'colour_probe', modelVersion: '1', batchSize: 4, takenAt: 112.34, inferMs: 7.06, topologyHash: 'sha256:00112233aabbccdd', publishedTs: 5000 };

test('a label record carries its frame chunk, the batch it was labelled in and the topology hash', () => {
  const r = labelRecordOf(frame(7), undefined, [{ label: 'red', score: 0.9 }], batch);
  assert.equal(r.frame, 7);
  assert.equal(r.partition, 2);
  assert.equal(r.offset, 507);
  assert.equal(r.topologyHash, 'sha256:00112233aabbccdd');
  assert.equal(r.batchSize, 4);
  assert.equal(r.queueMs, 12.3, 'decoded at 100 ms, taken at 112.34 ms');
  assert.equal(r.inferMs, 7.1);
  assert.equal(r.model, 'colour_probe');
  assert.equal(r.modelVersion, '1');
  assert.equal(r.clip, undefined);
});

test('each frame a clip labels names its own chunk; a frame without a partition gets no offset', () => {
  const clip = frame(9, { clip: { fromFrame: 6, covered: [{ index: 8, ptsMs: 320, captureTs: 1320, traceparent: undefined, offset: 480 }, { index: 9, ptsMs: 360, captureTs: 1360, traceparent: undefined, offset: 481 }] } });
  const recs = clip.clip!.covered.map((c) => labelRecordOf(clip, c, [], batch));
  assert.deepEqual(recs.map((r) => [r.frame, r.partition, r.offset, r.clip?.fromFrame, r.clip?.toFrame]), [[8, 2, 480, 6, 9], [9, 2, 481, 6, 9]]);
  const bare = labelRecordOf(frame(3, { partition: undefined, offset: undefined }), undefined, [], { ...batch, topologyHash: undefined });
  assert.ok(!('partition' in bare) && !('offset' in bare) && !('topologyHash' in bare), JSON.stringify(bare));
});

test('the session tracker remembers the chunk each unfinished frame began in, also past its ring size', () => {
  const s = new PartitionTracker('video.chunks', 3).openSession('cam-1', 's1', undefined);
  s.chunkFed(0, '100');
  // 3000 frames (the ring starts at 1024), 10 per chunk.
  for (let i = 0; i < 3000; i++) s.frameFound(i, i * 0.04, i % 50 === 0, Math.floor(i / 10), String(100 + Math.floor(i / 10)));
  assert.equal(s.chunkPartition, 3);
  assert.equal(s.chunkOffset(0), 100);
  assert.equal(s.chunkOffset(19), 101);
  assert.equal(s.chunkOffset(2999), 399);
  assert.equal(s.chunkOffset(3000), undefined, 'not found yet');
  s.framePublished(0);
  assert.equal(s.chunkOffset(0), undefined, 'finished and forgotten');
});

test('a dropped range names the chunks of its first and last frame', async () => {
  const events: DroppedEvent[] = [];
  const sink: Sink = { name: 'mem', publishLabels: async () => {}, publishEvents: async (b: EventBatch) => void events.push(...(b.records as DroppedEvent[])), close: async () => {} };
  const r = new DropPublisher(new OutputStage([sink], new Metrics()), new Metrics(), 10_000);
  r.topologyHash = 'sha256:0000000000000001';
  const o: FrameOwner = { framePublished() {}, framesDropped() {}, chunkPartition: 1, chunkOffset: (i) => 40 + Math.floor(i / 4) };
  for (let i = 3; i <= 9; i++) r.drop(o, 'cam-1', 's1', i, i, 'deadline');
  await r.flush();
  assert.equal(events.length, 1);
  const e = events[0]!;
  assert.deepEqual([e.fromFrame, e.toFrame, e.partition, e.offset, e.toOffset, e.topologyHash], [3, 9, 1, 40, 42, 'sha256:0000000000000001']);
  // An owner that cannot tell (not a Kafka input): no lineage fields, the rest as before.
  const plain = droppedEvent({ stream: 'x', session: 's', from: 0, to: 1, reason: 'sampled', fromOffset: undefined, toOffset: undefined, owner }, undefined);
  assert.deepEqual(plain, { type: 'dropped', stream: 'x', session: 's', fromFrame: 0, toFrame: 1, reason: 'sampled', count: 2 });
});

function labelled(labels: string[]): LabelRecord[] {
  return labels.map((label, i) => ({ type: 'label', stream: 'cam-1', session: 's1', frame: i, ptsMs: i * 40, captureTs: 1000 + i * 40, model: 'colour_probe', modelVersion: '2', labels: [{ label, score: 0.9 }], publishedTs: 0, partition: 4, offset: 700 + Math.floor(i / 5), topologyHash: 'sha256:00000000000000aa' }));
}

test('a change event carries the lineage of the frame it happened at', () => {
  const events = new Smoother(smoothingSchema.parse({ method: 'majority', window: 1, hysteresis: 2 })).observe(labelled(['blue', 'blue', 'blue', 'red', 'red', 'red', 'red', 'red', 'red', 'red', 'red', 'red']));
  assert.equal(events.length, 1);
  const c = events[0]!;
  assert.deepEqual([c.atFrame, c.partition, c.offset, c.model, c.modelVersion, c.topologyHash], [4, 4, 700, 'colour_probe', '2', 'sha256:00000000000000aa']);
});

test('alert records carry the chunks of fromFrame and atFrame, and atFrame\'s model and topology', () => {
  const e = new AlertEngine(alertsSchema.parse([{ name: 'red', label: 'red', forMs: 200, clearMs: 200 }]));
  const out = e.labels(labelled([...Array<string>(3).fill('blue'), ...Array<string>(12).fill('red'), ...Array<string>(10).fill('blue')]));
  assert.deepEqual(out.map((a) => a.state), ['firing', 'resolved']);
  const [firing, resolved] = out;
  // Red from frame 3; fires at frame 8 (200 ms later); last red frame 14; chunks of 5 frames from 700.
  assert.deepEqual([firing!.fromFrame, firing!.atFrame, firing!.partition, firing!.fromOffset, firing!.offset], [3, 8, 4, 700, 701]);
  assert.deepEqual([resolved!.fromFrame, resolved!.atFrame, resolved!.fromOffset, resolved!.offset], [3, 14, 700, 702]);
  assert.equal(firing!.modelVersion, '2');
  assert.equal(resolved!.topologyHash, 'sha256:00000000000000aa');
});

test('a reload that applies gives the running topology (the new models, the rest as started) a new hash', async () => {
  const { ModelReloader } = await import('../../src/topology/reload.js');
  const client = {
    url: 'fake:8001',
    modelReady: async () => true,
    modelMetadata: async (name: string) => ({ name, versions: ['1'], platform: 'python', inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [-1, 224, 224, 3] }], outputs: [{ name: 'SCORES', datatype: 'FP32', shape: [-1, 8] }] }),
    modelConfig: async () => ({ max_batch_size: 32, output: [{ name: 'SCORES', label_filename: 'labels.txt' }] }),
  };
  const spec = { name: 'colour_probe', version: '1', requestVersion: '', inputName: 'FRAME', inputDatatype: 'UINT8', elementBytes: 1, height: 224, width: 224, clipFrames: 0, maxBatchSize: 32, outputName: 'SCORES', classes: 8 };
  const stage = { spec, switchModel() {} };
  const start = parseTopology(TOPO, 'a.yaml');
  const hashes: string[] = [];
  const reloader = new ModelReloader(start, [{ stage } as never], { primary: client, setModels() {} } as never, (now) => hashes.push(topologyHash(now)));
  await reloader.reload(parseTopology(TOPO.replace('name: lineage', 'name: renamed'), 'a.yaml'));
  assert.deepEqual(hashes, [topologyHash(start)], 'a section that needs a restart is not running: same hash');
  await reloader.reload(parseTopology(TOPO.replace('topK: 3', 'topK: 2'), 'a.yaml'));
  assert.equal(hashes[1], topologyHash(parseTopology(TOPO.replace('topK: 3', 'topK: 2'), 'a.yaml')));
  assert.notEqual(hashes[1], hashes[0]);
});
