/**
 * Traces (issue #19, item 6) on the real stack: a processor with `telemetry.otlp` pointed at an
 * OTLP/HTTP receiver this test runs, every frame sampled (sampleRatio 1), one live camera. Each
 * labelled frame has one `process <chunk topic>` span with the messaging attributes (topic,
 * partition, the chunk's offset, the consumer group) and its decode, batch, infer and publish
 * children in order; the stage times agree with the label record (the span ends after capture).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { OtlpReceiver } from '../helpers/otlp.js';
import { Processor, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitQuiet, waitUntil } from '../helpers/wait.js';
import type { LabelRecord } from '../../src/core/frame.js';

describe('traces of sampled frames over OTLP/HTTP', { timeout: 120_000 }, () => {
  let rx: OtlpReceiver;
  let topo: TestTopology | undefined;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  before(async () => {
    ensureStack();
    rx = await OtlpReceiver.start();
  });
  after(async () => {
    await labels?.stop().catch(() => undefined);
    await stopAllProcessors();
    await removeTopology(topo);
    await rx.close();
  });

  test('one process span per labelled frame, with its stages as children', async () => {
    topo = await newTopology({ mode: 'live', budgetMs: 1000, extra: `telemetry: { otlp: { endpoint: '${rx.url}', sampleRatio: 1, serviceName: fw-e2e } }` });
    await withLogs(() => [proc], async () => {
      proc = Processor.run(topo!.file, 'processor');
      await proc.waitReady(topo!.httpBase);
      labels = await TopicCollector.start(topo!.labels);
      const video = colourVideo(320, 240, 25, [{ colour: 'red', frames: 75 }]);
      const stream = `${topo!.name}-cam`;
      const { session } = await runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo!.chunks, realtime: true, gop: 25 });
      await waitQuiet(() => labels!.records.length, 2000, 20_000);
      const mine = labels!.json<LabelRecord>().filter((r) => r.stream === stream && r.session === session);
      assert.ok(mine.length >= 50, `only ${mine.length} labels`);
      // The exporter sends every second; the processor's stop exports the rest.
      const status = await proc!.stop(20_000);
      assert.equal(status.code, 0);
      await waitUntil(() => rx.spans.filter((s) => s.name === `process ${topo!.chunks}`).length >= mine.length, 5000);

      const roots = rx.spans.filter((s) => s.name === `process ${topo!.chunks}` && s.attributes['framewire.stream'] === stream);
      const byFrame = new Map(roots.map((r) => [Number(r.attributes['framewire.frame']), r]));
      const missing = mine.filter((r) => !byFrame.has(r.frame)).map((r) => r.frame);
      console.log(`${mine.length} labels, ${roots.length} process spans (${rx.spans.length} spans in ${rx.requests} OTLP requests); labelled frames without a span: ${missing.length}`);
      assert.deepEqual(missing, [], 'labelled frames without a process span');
      assert.equal(roots.length, byFrame.size, 'one process span per frame');
      for (const r of mine) {
        const root = byFrame.get(r.frame)!;
        assert.equal(root.service, 'fw-e2e');
        assert.equal(root.kind, 5, 'CONSUMER');
        assert.equal(root.attributes['messaging.system'], 'kafka');
        assert.equal(root.attributes['messaging.destination.name'], topo!.chunks);
        assert.equal(root.attributes['messaging.consumer.group.name'], topo!.group);
        assert.equal(root.attributes['framewire.session'], session);
        // The chunk the span names is the one the label record names (lineage).
        assert.equal(root.attributes['messaging.kafka.offset'], r.offset, `frame ${r.frame}: span offset`);
        assert.equal(root.attributes['messaging.destination.partition.id'], String(r.partition), `frame ${r.frame}: span partition`);
        assert.ok(root.startMs >= r.captureTs - 1, `frame ${r.frame}: processing starts before its capture`);
        assert.ok(root.endMs >= r.publishedTs - 50, `frame ${r.frame}: the span ends before its label was published`);
        const kids = rx.spans.filter((s) => s.parentSpanId === root.spanId && s.traceId === root.traceId).sort((a, b) => a.startMs - b.startMs);
        assert.deepEqual(kids.map((k) => k.name), ['decode', 'batch', `infer ${r.model}`, `publish ${topo!.labels}`], `frame ${r.frame}`);
        assert.equal(kids[2]!.attributes['framewire.model.version'], r.modelVersion);
      }
    });
  });
});
