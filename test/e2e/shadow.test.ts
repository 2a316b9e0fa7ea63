/**
 * Shadow models (issue #19, item 1) on the real stack: open_nsfw (FP32) in production with
 * open_nsfw_int8 as its shadow, every batch sampled, replay mode, on the same testsrc2 clip:
 *  - the primary's labels are identical with and without the shadow (same frames, same scores);
 *  - the report's agreement and mean |Δscore| match an offline computation over the same frames:
 *    the FP32 labels against those of a run with the INT8 model as the primary;
 *  - `framewire shadow report` prints it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { TopicCollector } from '../helpers/collectors.js';
import { Processor, framewireCommand, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitQuiet, waitUntil } from '../helpers/wait.js';
import type { LabelRecord } from '../../src/core/frame.js';
import type { ShadowSummary } from '../../src/infer/shadow.js';

const FRAMES = 100;
const INPUT = `lavfi:testsrc2=s=320x240:r=25,trim=end_frame=${FRAMES}`;

interface Run {
  labels: Map<number, LabelRecord>;
  shadow: ShadowSummary | undefined;
  topo: TestTopology;
}

const topologies: TestTopology[] = [];

async function run(model: string, shadow: string | undefined, tag: string): Promise<Run> {
  const topo = await newTopology({
    mode: 'replay',
    model,
    modelFields: shadow ? `shadow: { name: ${shadow}, sample: 1, reportIntervalMs: 300 }` : undefined,
    startupTimeoutMs: 60_000,
  });
  topologies.push(topo);
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  try {
    return await withLogs(() => [proc], async () => {
      proc = Processor.run(topo.file, `processor (${tag})`);
      await proc.waitReady(topo.httpBase, 60_000);
      [labels, events] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events)]);
      const stream = `${topo.name}-cam`;
      const { session } = await runIngest({ stream, input: INPUT, brokers: BROKERS, topic: topo.chunks, gop: 25 });
      assert.ok(await waitUntil(() => labels!.records.length >= FRAMES, 60_000), `${tag}: only ${labels!.records.length} of ${FRAMES} labels`);
      const reports = () => events!.json<ShadowSummary>().filter((e) => e.type === 'shadow');
      if (shadow) assert.ok(await waitUntil(() => reports().some((r) => r.frames >= FRAMES), 10_000), `${tag}: no shadow report over ${FRAMES} frames`);
      await waitQuiet(() => labels!.records.length, 500, 5000);
      const mine = labels!.json<LabelRecord>().filter((r) => r.stream === stream && r.session === session);
      return { labels: new Map(mine.map((r) => [r.frame, r])), shadow: reports().at(-1), topo };
    });
  } finally {
    await Promise.allSettled([labels?.stop(), events?.stop()]);
    await stopAllProcessors();
  }
}

describe('shadow model beside the primary', { timeout: 300_000 }, () => {
  before(() => ensureStack());
  after(async () => {
    await stopAllProcessors();
    for (const t of topologies) await removeTopology(t);
  });

  test('FP32 primary with an INT8 shadow: primary unchanged, report = offline agreement', async () => {
    const withShadow = await run('open_nsfw', 'open_nsfw_int8', 'FP32 + INT8 shadow');
    const alone = await run('open_nsfw', undefined, 'FP32 alone');
    const int8 = await run('open_nsfw_int8', undefined, 'INT8 alone');

    assert.equal(withShadow.labels.size, FRAMES);
    assert.equal(alone.labels.size, FRAMES);
    for (const [frame, r] of alone.labels) {
      assert.deepEqual(withShadow.labels.get(frame)!.labels, r.labels, `frame ${frame}: the shadow changed the primary's labels`);
    }

    // Offline: the same frames through both models, compared as the report does.
    let agree = 0;
    let delta = 0;
    for (const [frame, p] of withShadow.labels) {
      const s = int8.labels.get(frame)!;
      const top = p.labels[0]!;
      if (top.label === s.labels[0]!.label) agree++;
      delta += Math.abs(top.score - (s.labels.find((l) => l.label === top.label)?.score ?? 0));
    }
    const offline = { agreement: agree / FRAMES, meanAbsDelta: delta / FRAMES };
    const rep = withShadow.shadow!;
    console.log(
      `report: ${rep.frames} frames, agreement ${(100 * rep.agreement).toFixed(2)} %, mean |Δ| ${rep.meanAbsDelta.toFixed(5)}, latency ${rep.latencyMs.primary.toFixed(1)} / ${rep.latencyMs.shadow.toFixed(1)} ms, skipped ${rep.skipped}; ` +
        `offline: agreement ${(100 * offline.agreement).toFixed(2)} %, mean |Δ| ${offline.meanAbsDelta.toFixed(5)}`,
    );
    assert.equal(rep.frames, FRAMES, 'replay: every sampled batch compared');
    assert.equal(rep.skipped, 0);
    assert.equal(rep.model, 'open_nsfw');
    assert.equal(rep.shadow, 'open_nsfw_int8');
    assert.ok(Math.abs(rep.agreement - offline.agreement) <= 0.01, 'agreement within a point of the offline one');
    assert.ok(Math.abs(rep.meanAbsDelta - offline.meanAbsDelta) <= 0.002, `mean |Δ| ${rep.meanAbsDelta} vs offline ${offline.meanAbsDelta}`);
    assert.ok(rep.meanAbsDelta > 0, 'INT8 and FP32 scores differ: the comparison saw the shadow\'s own scores');

    const out = await framewireCommand(['shadow', 'report', '--brokers', BROKERS.join(','), '--events-topic', withShadow.topo.events]);
    assert.equal(out.code, 0, out.stdout);
    assert.match(out.stdout, /open_nsfw v1 ← shadow open_nsfw_int8 v1/);
    assert.match(out.stdout, new RegExp(`frames compared ${FRAMES}, top-1 agreement`));
  });
});
