/**
 * End to end, on the real stack: a label record the Kafka sink refuses with an error that is not
 * retriable is reported `dropped` with reason `publish-failed` (docs/contracts.md, events), so
 * the frames are still accounted for exactly once, and the processor carries on. The refusal is
 * real: the labels topic is created beforehand with max.message.bytes=200, below one label batch,
 * so the broker answers MESSAGE_TOO_LARGE (kafkajs: not retriable).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { assertCoveredOnce, type DroppedRecord, framesCovered, type LabelRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, httpGet, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { kafka, newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitQuiet, waitUntil } from '../helpers/wait.js';

describe('publish-failed: a refused label record is reported dropped', { timeout: 120_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;

  before(async () => {
    ensureStack();
    topo = await newTopology({ partitions: 1 });
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic: topo.labels, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '200' }] }] });
    } finally {
      await admin.disconnect();
    }
    proc = Processor.run(topo.file, 'processor');
    await proc.waitReady(topo.httpBase);
    [labels, events] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events)]);
  });

  after(async () => {
    await Promise.all([labels?.stop(), events?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('every frame dropped publish-failed exactly once, no label on Kafka, the processor still ready', async () => {
    await withLogs(() => [proc], async () => {
      const stream = `${topo.name}-refused`;
      const video = colourVideo(320, 240, 25, [{ colour: 'red', frames: 25 }, { colour: 'blue', frames: 25 }]);
      const res = await runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo.chunks, gop: 25 });
      const dropped = () => events!.json<DroppedRecord>();
      assert.ok(await waitUntil(() => framesCovered([], dropped(), stream, res.session).size >= video.frames, 45_000), 'not every frame reported');
      await waitQuiet(() => events!.records.length + labels!.records.length, 1500, 10_000);

      const reasons: Record<string, number> = {};
      for (const e of dropped()) if (e.type === 'dropped' && e.stream === stream) reasons[e.reason] = (reasons[e.reason] ?? 0) + e.count;
      const m = await scrapeMetrics(topo.httpBase);
      console.log(`refused stream: ${labels!.records.length} label records on Kafka, dropped ${JSON.stringify(reasons)}; framewire_frames_dropped_total{reason="publish-failed"} ${metricValue(m, 'framewire_frames_dropped_total', { reason: 'publish-failed' })}`);
      assert.equal(labels!.records.length, 0, 'a label record got through a topic that refuses them');
      assert.deepEqual(reasons, { 'publish-failed': video.frames });
      assertCoveredOnce(labels!.json<LabelRecord>(), dropped(), stream, res.session, video.frames);
      assert.equal(metricValue(m, 'framewire_frames_dropped_total', { reason: 'publish-failed' }), video.frames, 'publish-failed drops counted');
      const ready = await httpGet(`${topo.httpBase}/readyz`);
      assert.equal(ready.status, 200, `not ready after refused records: ${ready.body}`);
      assert.deepEqual(await proc!.stop(), { code: 0, signal: null });
    });
  });
});
