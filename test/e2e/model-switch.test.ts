/**
 * Switching a running pipeline to another model variant (docs/contracts.md, "Model variants"):
 * one realtime 25 fps camera labelled by open_nsfw (FP32, version 1); mid-stream the topology file
 * is rewritten to open_nsfw_int8 version 1 and the processor gets SIGHUP. Before that, a reload to
 * a model Triton does not have is refused and changes nothing.
 *  - every frame is accounted for (a label record or a `dropped` event, exactly once);
 *  - no frame has two label records;
 *  - each stream's records switch once: every record before the switch names the old model and
 *    version, every one after it the new, and both are there.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { TopicCollector } from '../helpers/collectors.js';
import { Processor, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { assertCoveredOnce, type DroppedRecord, type LabelRecord } from '../helpers/accounting.js';
import { sleep, waitQuiet, waitUntil } from '../helpers/wait.js';
import { encodeVideo, sendVideo } from '../helpers/cameras.js';

const FPS = 25;
const SECONDS = 8;
const OLD = { name: 'open_nsfw', version: '1' };
const NEW = { name: 'open_nsfw_int8', version: '1' };

let topo: TestTopology | undefined;
before(() => ensureStack());
after(async () => {
  await stopAllProcessors();
  await removeTopology(topo);
});

function setModel(file: string, model: string, version: string): void {
  const text = readFileSync(file, 'utf8').replace(/models: \[ \{ name: [^,]+, topK: 3(, version: \d+)? \} \]/, `models: [ { name: ${model}, topK: 3, version: ${version} } ]`);
  assert.ok(text.includes(`name: ${model}, topK: 3, version: ${version}`), 'topology rewritten');
  writeFileSync(file, text);
}

test('a SIGHUP reload moves new batches to the new model version; every frame is labelled or dropped once', { timeout: 120_000 }, async () => {
  // A 1 s budget, as for the content-safety streams of topology/local.yaml: FP32 takes ~40 ms a frame here.
  topo = await newTopology({ mode: 'live', model: OLD.name, modelFields: `version: ${OLD.version}`, budgetMs: 1000, idleTimeoutMs: 1500 });
  const t = topo;
  let proc: Processor | undefined;
  const collectors: TopicCollector[] = [];
  const kafka = new kafkajs.Kafka({ clientId: 'fw-e2e-switch', brokers: BROKERS, logLevel: kafkajs.logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  try {
    await withLogs(() => [proc], async () => {
      proc = Processor.run(t.file, 'switch processor');
      await proc.waitReady(t.httpBase);
      const [labels, events] = await Promise.all([TopicCollector.start(t.labels), TopicCollector.start(t.events)]);
      collectors.push(labels, events);
      await producer.connect();
      const video = encodeVideo(`testsrc2=s=320x240:r=${FPS}:d=${SECONDS},format=yuv420p`, FPS);
      const stream = `${t.name}-cam`;
      const session = `sw-${Date.now().toString(36)}`;
      const epochMs = Date.now() + 300;
      const sending = sendVideo(producer, video, { topic: t.chunks, stream, session, epochMs, paced: true, eos: true });
      const reloads = () => proc!.logs().filter((l) => l.msg === 'reload done' || l.msg === 'reload failed; the pipeline goes on as it was');

      // A reload the pipeline cannot apply is refused; labels go on from the running model.
      await waitUntil(() => labels.records.length >= 5, 20_000);
      setModel(t.file, 'no_such_model', '1');
      proc.child.kill('SIGHUP');
      assert.ok(await waitUntil(() => reloads().length >= 1, 10_000), 'the bad reload is reported');
      assert.equal(reloads()[0]!.msg, 'reload failed; the pipeline goes on as it was');

      // The real switch, about half-way through the stream.
      await sleep(Math.max(0, epochMs + (SECONDS * 1000) / 2 - Date.now()));
      setModel(t.file, NEW.name, NEW.version);
      proc.child.kill('SIGHUP');
      assert.ok(await waitUntil(() => reloads().length >= 2, 10_000), 'the reload is reported');
      const done = reloads()[1]!;
      assert.equal(done.msg, 'reload done', JSON.stringify(done));
      assert.deepEqual(done.switched, [`${OLD.name} v${OLD.version} -> ${NEW.name} v${NEW.version}`]);

      await sending;
      const frames = video.frames.length;
      const accounted = () => {
        const l = labels.json<LabelRecord>().filter((r) => r.stream === stream).length;
        const d = events.json<DroppedRecord>().filter((e) => e.type === 'dropped' && e.stream === stream).reduce((a, e) => a + e.count, 0);
        return l + d;
      };
      await waitUntil(() => accounted() >= frames, 30_000);
      await waitQuiet(() => labels.records.length + events.records.length, 1500, 10_000);

      const recs = labels.json<LabelRecord>().filter((r) => r.stream === stream);
      const dropped = events.json<DroppedRecord>().filter((e) => e.type === 'dropped');
      assertCoveredOnce(recs, dropped, stream, session, frames);
      const seen = new Set<number>();
      for (const r of recs) {
        assert.ok(!seen.has(r.frame), `frame ${r.frame} has two label records`);
        seen.add(r.frame);
      }
      // In frame order, the records name the old model and version, then the new, switching once.
      recs.sort((a, b) => a.frame - b.frame);
      const tag = (r: LabelRecord) => `${r.model} v${r.modelVersion}`;
      const oldTag = `${OLD.name} v${OLD.version}`;
      const newTag = `${NEW.name} v${NEW.version}`;
      const firstNew = recs.findIndex((r) => tag(r) === newTag);
      assert.ok(firstNew > 0, `records from both models (first ${newTag} record at ${firstNew} of ${recs.length})`);
      const before = recs.slice(0, firstNew).map(tag);
      const after = recs.slice(firstNew).map(tag);
      assert.deepEqual([...new Set(before)], [oldTag], 'every record before the switch names the old model version');
      assert.deepEqual([...new Set(after)], [newTag], 'every record after the switch names the new model version');
      const drops = dropped.filter((e) => e.stream === stream).reduce((a, e) => a + e.count, 0);
      console.log(`${frames} frames: ${recs.length} labelled (${firstNew} by ${oldTag}, ${recs.length - firstNew} by ${newTag}, first at frame ${recs[firstNew]!.frame}), ${drops} dropped`);
    });
  } finally {
    await producer.disconnect().catch(() => {});
    for (const c of collectors) await c.stop();
    await proc?.stop();
  }
});
