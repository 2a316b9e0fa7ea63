/**
 * End to end, on the real stack: load shedding at the decoder in live mode. A realtime camera
 * starts publishing before the processor is up, so when the processor starts consuming its first
 * seconds of video are already far past the 250 ms budget. Live mode must not decode that
 * backlog frame by frame only to drop it: the stream's decoder is stopped, chunks are skipped
 * without decoding until one starts a fresh keyframe, and the skipped frames are reported as
 * `overload`. After that the stream is labelled within its budget. Every frame index is still
 * covered exactly once by a label or a `dropped` event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { ensureTopics } from '../../src/kafka/topics.js';
import { ranges, assertCoveredOnce, type DroppedRecord, type LabelRecord, recordsAndDrops } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { kafka, newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { sleep, waitQuiet } from '../helpers/wait.js';

const FPS = 25;
const FRAMES = 250; // 10 s
const BUDGET_MS = 250;
/** How long the camera runs before the processor starts. */
const HEAD_START_MS = 3000;


describe('live mode sheds a backlog at the decoder', { timeout: 120_000 }, () => {
  let topo: TestTopology | undefined;
  let proc: Processor | undefined;
  before(() => ensureStack());
  after(async () => {
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('a stream that arrives late skips ahead to a fresh keyframe, then keeps its budget', async () => {
    topo = await newTopology({ mode: 'live', budgetMs: BUDGET_MS, idleTimeoutMs: 1000 });
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic: topo.chunks, numPartitions: 3 }]);
    await admin.disconnect();

    const stream = `${topo.name}-late`;
    const video = colourVideo(320, 240, FPS, [
      { colour: 'red', frames: FRAMES / 2 },
      { colour: 'green', frames: FRAMES / 2 },
    ]);
    let labels: TopicCollector | undefined;
    let events: TopicCollector | undefined;
    try {
      await withLogs(() => [proc], async () => {
        const camera = runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo!.chunks, realtime: true, gop: FPS });
        await sleep(HEAD_START_MS);
        proc = Processor.run(topo!.file, 'late processor');
        await proc.waitReady(topo!.httpBase);
        [labels, events] = await Promise.all([TopicCollector.start(topo!.labels), TopicCollector.start(topo!.events)]);
        const { session } = await camera;
        const covered = () => recordsAndDrops(labels!, events!);
        await waitQuiet(covered, 2500, 30_000);
        const metrics = await scrapeMetrics(topo!.httpBase);

        const mine = labels!.json<LabelRecord>().filter((r) => r.stream === stream && r.session === session);
        const dropped = events!.json<DroppedRecord>().filter((e) => e.type === 'dropped' && e.stream === stream && e.session === session);
        assertCoveredOnce(mine, dropped, stream, session, FRAMES);

        const byReason: Record<string, number> = {};
        for (const e of dropped) byReason[e.reason] = (byReason[e.reason] ?? 0) + e.count;
        const decoded = metricValue(metrics, 'framewire_frames_decoded_total');
        const sheds = metricValue(metrics, 'framewire_load_sheds_total');
        const framesShed = metricValue(metrics, 'framewire_frames_shed_total');
        const lat = mine.map((r) => r.publishedTs - r.captureTs).sort((a, b) => a - b);
        const within = lat.filter((l) => l <= BUDGET_MS).length / Math.max(1, lat.length);
        console.log(
          `late stream: ${mine.length} labelled, dropped ${JSON.stringify(byReason)}; ${decoded} of ${FRAMES} frames decoded; ${sheds} sheds, ${framesShed} frames skipped undecoded; ` +
            `labelled ${ranges(mine.map((r) => r.frame).sort((a, b) => a - b))}; ${(100 * within).toFixed(1)}% within ${BUDGET_MS} ms (p50 ${lat[Math.floor(lat.length / 2)]} ms)`,
        );

        for (const reason of Object.keys(byReason)) assert.ok(['deadline', 'overload'].includes(reason), `unexpected reason ${reason}`);
        assert.ok(sheds >= 1, 'the late stream never shed load');
        assert.ok(framesShed >= FPS * 2, `only ${framesShed} frames were skipped before decoding`);
        // The head start (3 s and the processor's start-up) is skipped, not decoded and dropped.
        assert.ok((byReason.overload ?? 0) >= FPS * 2, `only ${byReason.overload ?? 0} frames skipped as overload`);
        assert.ok(decoded <= FRAMES - FPS * 2, `${decoded} of ${FRAMES} frames were decoded: the backlog was not skipped`);
        // Once caught up, the stream is labelled within its budget.
        assert.ok(mine.length >= FPS * 3, `only ${mine.length} frames labelled after catching up`);
        assert.ok(within >= 0.9, `${(100 * within).toFixed(1)}% of labelled frames within ${BUDGET_MS} ms`);
      });
    } finally {
      await Promise.all([labels?.stop(), events?.stop()]);
    }
  });
});
