/**
 * End to end, on the real stack: load shedding at the decoder in live mode. A realtime camera
 * starts publishing before the processor is up, so when the processor starts consuming its first
 * seconds of video are already far past the 250 ms budget.
 *  - A backlog the decoder can get through within `decode.shedCatchUpMs` (3 s of 320×240 video:
 *    ~75 frames at a few ms each) is decoded without classifying: its frames are `deadline`, none
 *    is skipped undecoded, and the stream is labelled within budget a moment later (no GOP lost).
 *  - With a bound the backlog cannot meet (`shedCatchUpMs: 20`), live mode does not decode it
 *    frame by frame only to drop it: chunks are skipped without decoding until a keyframe from
 *    which the stream can catch up, and the skipped frames are `overload`.
 * Either way the stream then keeps its budget, and every frame index is covered exactly once by a
 * label or a `dropped` event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { ensureTopics } from '../../src/topology/kafka.js';
import { ranges, assertCoveredOnce, type DroppedRecord, type LabelRecord } from '../helpers/accounting.js';
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


interface Outcome {
  byReason: Record<string, number>;
  decoded: number;
  sheds: number;
  framesShed: number;
  labelled: LabelRecord[];
  within: number;
}

/** A camera with a head start on its processor; what became of its frames. */
async function lateCamera(decodeFields?: string): Promise<Outcome> {
  const topo = await newTopology({ mode: 'live', budgetMs: BUDGET_MS, idleTimeoutMs: 1000, decodeFields });
  topos.push(topo);
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
  let proc: Processor | undefined;
  try {
    return await withLogs(() => [proc], async () => {
      const camera = runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo.chunks, realtime: true, gop: FPS });
      await sleep(HEAD_START_MS);
      proc = Processor.run(topo.file, 'late processor');
      await proc.waitReady(topo.httpBase);
      [labels, events] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events)]);
      const { session } = await camera;
      const covered = () => labels!.records.length + events!.json<DroppedRecord>().reduce((n, e) => n + (e.type === 'dropped' ? e.count : 0), 0);
      await waitQuiet(covered, 2500, 30_000);
      const metrics = await scrapeMetrics(topo.httpBase);

      const mine = labels!.json<LabelRecord>().filter((r) => r.stream === stream && r.session === session);
      const dropped = events!.json<DroppedRecord>().filter((e) => e.type === 'dropped' && e.stream === stream && e.session === session);
      assertCoveredOnce(mine, dropped, stream, session, FRAMES);
      for (const r of mine) assert.equal(r.labels[0]!.label, video.expected[r.frame], `frame ${r.frame}`);

      const byReason: Record<string, number> = {};
      for (const e of dropped) byReason[e.reason] = (byReason[e.reason] ?? 0) + e.count;
      const decoded = metricValue(metrics, 'framewire_frames_decoded_total');
      const sheds = metricValue(metrics, 'framewire_load_sheds_total');
      const framesShed = metricValue(metrics, 'framewire_frames_shed_total');
      const lat = mine.map((r) => r.publishedTs - r.captureTs).sort((a, b) => a - b);
      const within = lat.filter((l) => l <= BUDGET_MS).length / Math.max(1, lat.length);
      console.log(
        `late stream (${decodeFields ?? 'defaults'}): ${mine.length} labelled, dropped ${JSON.stringify(byReason)}; ${decoded} of ${FRAMES} frames decoded; ${sheds} sheds, ${framesShed} frames skipped undecoded; ` +
          `labelled ${ranges(mine.map((r) => r.frame).sort((a, b) => a - b))}; ${(100 * within).toFixed(1)}% within ${BUDGET_MS} ms (p50 ${lat[Math.floor(lat.length / 2)]} ms)`,
      );
      for (const reason of Object.keys(byReason)) assert.ok(['deadline', 'overload'].includes(reason), `unexpected reason ${reason}`);
      return { byReason, decoded, sheds, framesShed, labelled: mine, within };
    });
  } finally {
    await Promise.all([labels?.stop(), events?.stop()]);
    await proc?.stop();
  }
}

const topos: TestTopology[] = [];

describe('live mode sheds a backlog at the decoder', { timeout: 180_000 }, () => {
  before(() => ensureStack());
  after(async () => {
    await stopAllProcessors();
    for (const t of topos) await removeTopology(t);
  });

  test('a backlog it can decode through quickly is decoded without classifying: no GOP lost, then within budget', async () => {
    const o = await lateCamera();
    assert.equal(o.byReason.overload ?? 0, 0, 'nothing skipped undecoded');
    assert.equal(o.sheds, 0);
    assert.equal(o.decoded, FRAMES, 'every frame decoded');
    // The head start (3 s and the processor's start-up) is past its budget: dropped as deadline.
    assert.ok((o.byReason.deadline ?? 0) >= FPS * 2, `only ${o.byReason.deadline ?? 0} frames dropped as deadline`);
    // Caught up in well under a second of video after the backlog, not at the next keyframe or later.
    assert.ok(o.labelled.length >= FRAMES - (o.byReason.deadline ?? 0) - FPS, `only ${o.labelled.length} frames labelled after catching up`);
    assert.ok(o.within >= 0.9, `${(100 * o.within).toFixed(1)}% of labelled frames within ${BUDGET_MS} ms`);
  });

  test('a backlog it cannot decode through within shedCatchUpMs skips ahead to a keyframe, then keeps its budget', async () => {
    const o = await lateCamera('shedCatchUpMs: 20');
    assert.ok(o.sheds >= 1, 'the late stream never shed load');
    assert.ok(o.framesShed >= FPS * 2, `only ${o.framesShed} frames were skipped before decoding`);
    // The head start is skipped, not decoded and dropped.
    assert.ok((o.byReason.overload ?? 0) >= FPS * 2, `only ${o.byReason.overload ?? 0} frames skipped as overload`);
    assert.ok(o.decoded <= FRAMES - FPS * 2, `${o.decoded} of ${FRAMES} frames were decoded: the backlog was not skipped`);
    assert.ok(o.labelled.length >= FPS * 3, `only ${o.labelled.length} frames labelled after catching up`);
    assert.ok(o.within >= 0.9, `${(100 * o.within).toFixed(1)}% of labelled frames within ${BUDGET_MS} ms`);
  });
});
