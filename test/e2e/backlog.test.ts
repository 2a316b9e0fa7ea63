/**
 * End to end, on the real stack, live mode: sessions that end with `fw-eos` are flushed at once
 * (not after the idle timeout), including one that ends while it is being shed; and a processor
 * that starts behind a backlog of dead sessions skips it without decoding, at the rate Kafka
 * delivers it, while a live camera in the same partitions is labelled within its budget again.
 * Every frame of every session is covered exactly once by a label or a `dropped` event.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ensureTopics } from '../../src/kafka/topics.js';
import { assertCoveredOnce, type DroppedRecord, type LabelRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { ensureStack } from '../helpers/stack.js';
import { kafka, newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';
import { encodeVideo, sendVideo } from '../helpers/cameras.js';

const FPS = 25;
const BUDGET_MS = 250;

describe('end of session and backlogs (live mode)', { timeout: 180_000 }, () => {
  let topo: TestTopology | undefined;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  let producer = kafka.producer();

  before(() => ensureStack());
  after(async () => {
    await Promise.all([labels?.stop(), events?.stop()]);
    await producer.disconnect().catch(() => undefined);
    await stopAllProcessors();
    await removeTopology(topo);
  });

  const covered = (stream: string, session: string) =>
    labels!.json<LabelRecord>().filter((r) => r.stream === stream && r.session === session).length +
    events!.json<DroppedRecord>().reduce((n, e) => n + (e.type === 'dropped' && e.stream === stream && e.session === session ? e.count : 0), 0);

  async function start(idleTimeoutMs: number): Promise<void> {
    topo = await newTopology({ mode: 'live', budgetMs: BUDGET_MS, idleTimeoutMs });
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic: topo.chunks, numPartitions: 3 }]);
    // Every partition's leader answers metadata before the first send (a new topic can take a moment).
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const md = await admin.fetchTopicMetadata({ topics: [topo.chunks] }).catch(() => undefined);
      if (md && md.topics[0]!.partitions.length === 3 && md.topics[0]!.partitions.every((p) => p.leader >= 0)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await admin.disconnect();
    // A producer per test: one whose metadata predates the topic was refused by the broker.
    await producer.disconnect().catch(() => undefined);
    producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
  }

  async function runProcessor(): Promise<number> {
    proc = Processor.run(topo!.file, 'processor');
    await proc.waitReady(topo!.httpBase);
    const ready = Date.now();
    [labels, events] = await Promise.all([TopicCollector.start(topo!.labels), TopicCollector.start(topo!.events)]);
    return ready;
  }

  test('fw-eos: a finished session is flushed at once; one that ends while shed reports every frame', async () => {
    // A 30 s idle timeout: only fw-eos can explain a prompt flush.
    await start(30_000);
    const video = encodeVideo(colourVideo(320, 240, FPS, [{ colour: 'red', frames: 50 }, { colour: 'blue', frames: 25 }]).graph, FPS);
    await withLogs(() => [proc], async () => {
      await runProcessor();
      const live = { stream: `${topo!.name}-eos`, session: 'live1' };
      const lastSent = await sendVideo(producer, video, { topic: topo!.chunks, ...live, epochMs: Date.now() + 200, paced: true, eos: true });
      assert.ok(await waitUntil(() => covered(live.stream, live.session) >= video.frames.length, 5000), 'the live session was not fully covered within 5 s of fw-eos');
      const mine = labels!.json<LabelRecord>().filter((r) => r.stream === live.stream && r.session === live.session);
      const dropped = events!.json<DroppedRecord>().filter((e) => e.type === 'dropped' && e.stream === live.stream && e.session === live.session);
      assertCoveredOnce(mine, dropped, live.stream, live.session, video.frames.length);
      const last = mine.find((r) => r.frame === video.frames.length - 1);
      assert.ok(last, `the last frame was not labelled (dropped: ${JSON.stringify(dropped)})`);
      console.log(`fw-eos: last frame published ${last.publishedTs - lastSent} ms after the eos record was acknowledged; ${mine.length} labelled`);
      assert.ok(last.publishedTs - lastSent <= 1000, `last frame published ${last.publishedTs - lastSent} ms after fw-eos`);

      // A session captured 60 s ago, arriving all at once and ending: shed from first to last frame.
      const stale = { stream: `${topo!.name}-stale`, session: 'old1' };
      const sentAt = await sendVideo(producer, video, { topic: topo!.chunks, ...stale, epochMs: Date.now() - 60_000, paced: false, eos: true, framesPerChunk: 7 });
      assert.ok(await waitUntil(() => covered(stale.stream, stale.session) >= video.frames.length, 5000), 'the stale session was not fully reported within 5 s');
      const dropped2 = events!.json<DroppedRecord>().filter((e) => e.type === 'dropped' && e.stream === stale.stream && e.session === stale.session);
      const labels2 = labels!.json<LabelRecord>().filter((r) => r.stream === stale.stream && r.session === stale.session);
      assertCoveredOnce(labels2, dropped2, stale.stream, stale.session, video.frames.length);
      assert.deepEqual([...new Set(dropped2.map((e) => e.reason))], ['overload']);
      console.log(`stale session: ${video.frames.length} frames reported overload within ${Date.now() - sentAt} ms, none decoded`);
    });
  });

  test('a backlog of dead sessions is skipped without decoding; a live camera behind it is labelled again within 2 s', async () => {
    await Promise.all([labels?.stop(), events?.stop()]);
    await stopAllProcessors();
    const first = topo;
    await start(1000);
    await removeTopology(first);
    const video = encodeVideo(colourVideo(320, 240, FPS, [{ colour: 'green', frames: 100 }]).graph, FPS);
    const DEAD = 12;
    // The backlog: dead sessions captured a minute ago (no fw-eos: they just stopped), 100 frames each.
    const t0 = Date.now();
    // allSettled: a failed send must not leave the others running past the test.
    const sends = await Promise.allSettled(
      Array.from({ length: DEAD }, (_, i) =>
        sendVideo(producer, video, { topic: topo!.chunks, stream: `${topo!.name}-dead${i}`, session: `d${i}`, epochMs: t0 - 60_000 - i * 5000, paced: false, eos: false }),
      ),
    );
    for (const r of sends) if (r.status === 'rejected') throw r.reason;
    // A live camera that started before the processor: its first seconds are backlog too.
    const live = { stream: `${topo!.name}-live`, session: 'l1' };
    const liveVideo = encodeVideo(colourVideo(320, 240, FPS, [{ colour: 'green', frames: 375 }]).graph, FPS);
    const camera = sendVideo(producer, liveVideo, { topic: topo!.chunks, ...live, epochMs: Date.now(), paced: true, eos: true });
    await new Promise((r) => setTimeout(r, 2000));
    await withLogs(() => [proc], async () => {
      const ready = await runProcessor();
      await camera;
      assert.ok(await waitUntil(() => covered(live.stream, live.session) >= liveVideo.frames.length, 10_000), 'live session not covered');
      for (let i = 0; i < DEAD; i++) {
        const s = `${topo!.name}-dead${i}`;
        assert.ok(await waitUntil(() => covered(s, `d${i}`) >= video.frames.length, 10_000), `${s} not covered`);
        assertCoveredOnce(
          labels!.json<LabelRecord>().filter((r) => r.stream === s),
          events!.json<DroppedRecord>().filter((e) => e.type === 'dropped' && e.stream === s),
          s,
          `d${i}`,
          video.frames.length,
        );
      }
      const metrics = await scrapeMetrics(topo!.httpBase);
      const decoded = metricValue(metrics, 'framewire_frames_decoded_total');
      const mine = labels!.json<LabelRecord>().filter((r) => r.stream === live.stream).sort((a, b) => a.frame - b.frame);
      const dropped = events!.json<DroppedRecord>().filter((e) => e.type === 'dropped' && e.stream === live.stream);
      assertCoveredOnce(mine, dropped, live.stream, live.session, liveVideo.frames.length);
      // When did the live stream get back within its budget: the first label after which every frame is labelled in time.
      let from = mine.length;
      while (from > 0 && mine[from - 1]!.publishedTs - mine[from - 1]!.captureTs <= BUDGET_MS && (from === mine.length || mine[from]!.frame === mine[from - 1]!.frame + 1)) from--;
      const back = mine[from];
      assert.ok(back, 'the live stream never got back within its budget');
      const backAfter = back.publishedTs - ready;
      console.log(
        `backlog: ${DEAD} dead sessions × ${video.frames.length} frames skipped; ${decoded} frames decoded in all (live: ${liveVideo.frames.length}); ` +
          `live stream within budget from frame ${back.frame}, ${backAfter} ms after the processor was ready; ${mine.length - from} frames in a row within ${BUDGET_MS} ms`,
      );
      assert.ok(decoded <= liveVideo.frames.length, `${decoded} frames decoded: the dead sessions' backlog was decoded`);
      assert.ok(backAfter <= 2000, `the live stream was back within its budget only ${backAfter} ms after the processor was ready`);
      assert.ok(mine.length - from >= 150, `only ${mine.length - from} frames in a row within the budget after catching up`);
    });
  });
});
