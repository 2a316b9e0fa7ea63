/**
 * Promotion gated on agreement (issue #19, item 5) on the real stack: open_nsfw (FP32) in
 * production with open_nsfw_int8 as its shadow and `promoteWhen: { agreement: 0.99, frames: 40 }`,
 * every batch sampled, replay mode, one testsrc2 clip. Once the report holds 40 frames at 99 %
 * (the two agree on every frame of this clip, see shadow.test.ts), the lane swaps by itself:
 *  - a `promotion` event names the new primary, the old one and the report that met the condition;
 *  - every frame has exactly one label, none dropped: the swap happens between batches, so every
 *    frame before it is labelled by open_nsfw and every frame after by open_nsfw_int8;
 *  - the old primary shadows the new one (the later reports), and it never swaps back;
 *  - `framewire_shadow_promotions_total` counts it once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { TopicCollector } from '../helpers/collectors.js';
import { Processor, framewireCommand, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitQuiet, waitUntil } from '../helpers/wait.js';
import type { LabelRecord } from '../../src/core/frame.js';
import type { PromotionEvent, ShadowSummary } from '../../src/core/events.js';

const FRAMES = 150;
const NEEDED = 40;
const INPUT = `lavfi:testsrc2=s=320x240:r=25,trim=end_frame=${FRAMES}`;

describe('shadow promoted by itself once it agrees', { timeout: 300_000 }, () => {
  let topo: TestTopology | undefined;
  before(() => ensureStack());
  after(async () => {
    await stopAllProcessors();
    if (topo) await removeTopology(topo);
  });

  test('FP32 primary, INT8 shadow, promoteWhen 99 % over 40 frames: one swap between batches, every frame labelled once', async () => {
    topo = await newTopology({
      mode: 'replay',
      model: 'open_nsfw',
      modelFields: `shadow: { name: open_nsfw_int8, sample: 1, window: 100, reportIntervalMs: 300, promoteWhen: { agreement: 0.99, frames: ${NEEDED} } }`,
      startupTimeoutMs: 60_000,
    });
    const t = topo;
    let proc: Processor | undefined;
    let labels!: TopicCollector;
    let events!: TopicCollector;
    try {
      await withLogs(() => [proc], async () => {
        proc = Processor.run(t.file, 'processor (promoteWhen)');
        await proc.waitReady(t.httpBase, 60_000);
        [labels, events] = await Promise.all([TopicCollector.start(t.labels), TopicCollector.start(t.events)]);
        const stream = `${t.name}-cam`;
        const { session } = await runIngest({ stream, input: INPUT, brokers: BROKERS, topic: t.chunks, gop: 25 });
        const mine = () => labels.json<LabelRecord>().filter((r) => r.stream === stream && r.session === session);
        assert.ok(await waitUntil(() => mine().length >= FRAMES, 90_000), `only ${mine().length} of ${FRAMES} labels`);
        const promotions = () => events.json<PromotionEvent>().filter((e) => e.type === 'promotion');
        assert.ok(await waitUntil(() => promotions().length > 0, 10_000), 'no promotion event');
        const reports = () => events.json<ShadowSummary>().filter((e) => e.type === 'shadow');
        // A report of the swapped lane: the old primary now shadows the new one.
        assert.ok(await waitUntil(() => reports().some((r) => r.model === 'open_nsfw_int8'), 10_000), 'no report of the promoted lane');
        await waitQuiet(() => labels.records.length + events.records.length, 1000, 10_000);

        const ps = promotions();
        assert.equal(ps.length, 1, `one promotion, never back: ${JSON.stringify(ps)}`);
        const p = ps[0]!;
        assert.equal(p.model, 'open_nsfw_int8');
        assert.equal(p.from, 'open_nsfw');
        assert.equal(p.stream, '*');
        assert.ok(p.agreement >= 0.99, `promoted at agreement ${p.agreement}`);
        assert.ok(p.frames >= NEEDED, `promoted after ${p.frames} frames compared`);
        assert.deepEqual(p.promoteWhen, { agreement: 0.99, frames: NEEDED });

        const byFrame = new Map<number, LabelRecord[]>();
        for (const r of mine()) byFrame.set(r.frame, [...(byFrame.get(r.frame) ?? []), r]);
        const twice = [...byFrame].filter(([, rs]) => rs.length > 1).map(([f]) => f);
        assert.deepEqual(twice, [], 'frames labelled twice');
        for (let f = 0; f < FRAMES; f++) assert.ok(byFrame.has(f), `frame ${f} has no label`);
        const dropped = events.json<{ type: string; stream: string }>().filter((e) => e.type === 'dropped' && e.stream === stream);
        assert.deepEqual(dropped, [], 'replay drops nothing, across the swap too');

        const fp32 = [...byFrame].filter(([, [r]]) => r!.model === 'open_nsfw').map(([f]) => f).sort((a, b) => a - b);
        const int8 = [...byFrame].filter(([, [r]]) => r!.model === 'open_nsfw_int8').map(([f]) => f).sort((a, b) => a - b);
        console.log(`labelled by open_nsfw: frames ${fp32[0]}-${fp32.at(-1)} (${fp32.length}); by open_nsfw_int8: ${int8[0]}-${int8.at(-1)} (${int8.length}); promotion at agreement ${p.agreement} over ${p.frames} frames`);
        assert.equal(fp32.length + int8.length, FRAMES, 'every label is by one of the two');
        assert.ok(fp32.length >= NEEDED, `the condition needs ${NEEDED} compared frames first; ${fp32.length} labelled by open_nsfw`);
        assert.ok(int8.length > 0, 'nothing labelled by the promoted model');
        assert.ok(fp32.at(-1)! < int8[0]!, 'one switch point: every frame before it by the old model, every frame after by the new');
        // The later reports compare the new primary with the old one, on frames after the swap.
        const after = reports().filter((r) => r.model === 'open_nsfw_int8');
        assert.ok(after.every((r) => r.shadow === 'open_nsfw'), 'the old primary shadows the new one');

        const m = await scrapeMetrics(t.httpBase);
        assert.equal(metricValue(m, 'framewire_shadow_promotions_total', { model: 'open_nsfw_int8', from: 'open_nsfw' }), 1);
        // `framewire shadow report` shows the swap beside the reports.
        const out = await framewireCommand(['shadow', 'report', '--brokers', BROKERS.join(','), '--events-topic', t.events]);
        assert.equal(out.code, 0, out.stdout);
        assert.match(out.stdout, /^promoted at \S+: open_nsfw_int8 v1 replaced open_nsfw v1 \(agreement \d+\.\d % over \d+ frames; promoteWhen 99\.0 % over 40\)$/m);
      });
    } finally {
      await Promise.allSettled([labels?.stop(), events?.stop()]);
      await stopAllProcessors();
    }
  });
});
