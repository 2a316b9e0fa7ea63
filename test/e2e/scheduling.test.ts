/**
 * End to end, on the real stack, with a deliberately slow model (`slow_probe`: 20 ms + 10 ms per
 * frame, about 85 frames/s at best) and more realtime load than it can take (4 streams × 30 fps):
 *  - live mode drops frames with reasons and keeps published frames within the budget (400 ms;
 *    at least 90 % of them, the median always);
 *  - replay mode drops nothing;
 *  - live mode shares what can make it fairly across the streams;
 *  - in both, labels plus `dropped` events cover every frame index of every stream exactly once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { assertCoveredOnce, type DroppedRecord, type LabelRecord, recordsAndDrops } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, type TestTopology, removeTopology } from '../helpers/topics.js';
import { waitQuiet } from '../helpers/wait.js';

const STREAMS = 4;
const FPS = 30;
const FRAMES = 150; // 5 s each
// Above the default 250 ms: ~170 ms of any budget goes to camera, Kafka and ffmpeg before a frame
// reaches the batcher, and the test needs feasible frames to show what the scheduler does with them.
const BUDGET_MS = 400;


interface Outcome {
  labels: LabelRecord[];
  dropped: DroppedRecord[];
  sessions: Map<string, string>;
}

async function runLoad(mode: 'live' | 'replay'): Promise<Outcome> {
  const topo: TestTopology = await newTopology({ mode, model: 'slow_probe', budgetMs: BUDGET_MS, idleTimeoutMs: 1000 });
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  try {
    return await withLogs(() => [proc], async () => {
      proc = Processor.run(topo.file, `${mode} processor`);
      await proc.waitReady(topo.httpBase);
      [labels, events] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events)]);
      const video = colourVideo(320, 240, FPS, [
        { colour: 'red', frames: FRAMES / 2 },
        { colour: 'blue', frames: FRAMES / 2 },
      ]);
      const results = await Promise.all(
        Array.from({ length: STREAMS }, (_, i) =>
          runIngest({ stream: `${topo.name}-s${i}`, input: video.input, brokers: BROKERS, topic: topo.chunks, realtime: true, gop: FPS }),
        ),
      );
      const sessions = new Map(results.map((r, i) => [`${topo.name}-s${i}`, r.session]));
      const covered = () => recordsAndDrops(labels!, events!);
      // Replay catches up at the model's pace after the cameras stop.
      await waitQuiet(covered, 3000, 60_000);
      return { labels: labels!.json<LabelRecord>(), dropped: events!.json<DroppedRecord>().filter((e) => e.type === 'dropped'), sessions };
    });
  } finally {
    await Promise.all([labels?.stop(), events?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
  }
}

/** Every frame index of every stream is labelled or dropped, exactly once. */
function assertExactCoverage(o: Outcome): void {
  for (const [stream, session] of o.sessions) assertCoveredOnce(o.labels, o.dropped, stream, session, FRAMES);
}

describe('scheduling under overload with a slow model', { timeout: 240_000 }, () => {
  before(() => ensureStack());
  after(() => stopAllProcessors());

  test('live mode: drops with reasons, published frames within the budget, every frame accounted once', async () => {
    const o = await runLoad('live');
    assertExactCoverage(o);
    const byReason: Record<string, number> = {};
    for (const e of o.dropped) byReason[e.reason] = (byReason[e.reason] ?? 0) + e.count;
    const lat = o.labels.map((r) => r.publishedTs - r.captureTs).sort((a, b) => a - b);
    const p = (q: number) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!;
    const within = lat.filter((l) => l <= BUDGET_MS).length / lat.length;
    console.log(
      `live: ${o.labels.length} labelled of ${STREAMS * FRAMES}; dropped ${JSON.stringify(byReason)}; capture→publish p50 ${p(0.5)} ms, p99 ${p(0.99)} ms; ${(100 * within).toFixed(1)}% within ${BUDGET_MS} ms`,
    );
    assert.ok(Object.keys(byReason).length > 0, 'an overloaded live pipeline must drop frames');
    for (const reason of Object.keys(byReason)) assert.ok(['deadline', 'overload'].includes(reason), `unexpected reason ${reason}`);
    const perStream = [...o.sessions.keys()].map((st) => o.labels.filter((r) => r.stream === st).length);
    const droppedPerStream = [...o.sessions.keys()].map((st) => o.dropped.filter((e) => e.stream === st).reduce((n, e) => n + e.count, 0));
    console.log(`live: labelled per stream ${perStream.join(', ')}; dropped per stream ${droppedPerStream.join(', ')}`);
    // One busy (or unlucky) stream cannot take the others' share: the least-served stream goes
    // first when not every frame can make it (measured: 39/39/39/41; pure EDF gave 40/36/60/12).
    const mean = perStream.reduce((a, b) => a + b, 0) / perStream.length;
    for (const [i, n] of perStream.entries()) assert.ok(n >= 0.6 * mean, `stream ${i} got ${n} labels, the mean is ${mean.toFixed(1)}`);
    // What it can: ~85 frames/s at best, so at most ~425 of the 600 in the 5 s; measured 158 and 180
    // (loads 3.6-4.4 on the 2-core machine). 100 leaves room for a busier machine and still fails a
    // scheduler that wastes most of the model's capacity (20, before, passed almost anything).
    assert.ok(o.labels.length >= 100, `an overloaded model still labels what it can in time (${o.labels.length} of ${STREAMS * FRAMES})`);
    // Typically 96–100 %; the rest are frames whose batch met a hiccup on the busy 2-core machine.
    assert.ok(within >= 0.9, `${(100 * within).toFixed(1)}% of published frames within the budget`);
    assert.ok(p(0.5) <= BUDGET_MS, `median capture→publish ${p(0.5)} ms over the budget`);
  });

  test('replay mode: nothing dropped, every frame labelled', async () => {
    const o = await runLoad('replay');
    assertExactCoverage(o);
    console.log(`replay: ${o.labels.length} labelled of ${STREAMS * FRAMES}; ${o.dropped.length} dropped events`);
    assert.deepEqual(o.dropped, []);
    assert.equal(new Set(o.labels.map((r) => `${r.stream}/${r.frame}`)).size, STREAMS * FRAMES);
  });
});
