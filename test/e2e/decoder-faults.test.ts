/**
 * Decoder faults (issue #12): with three live streams running, one stream's ffmpeg decoder is
 * killed with SIGKILL and another's is frozen with SIGSTOP (fed but silent: the watchdog must
 * kill it after decode.stallMs). Both streams recover from their next keyframe, the frames their
 * decoders held are `decoder-reset`, every frame is accounted for exactly once, and the third
 * stream is unaffected.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest, type IngestResult } from '../../src/ingest/ingest.js';
import { assertCoveredOnce, type DroppedRecord, framesCovered } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, childProcesses, cpuTicks, isAlive, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { sleep, waitQuiet, waitUntil } from '../helpers/wait.js';
import type { LabelRecord } from '../../src/core/frame.js';

const DECODER_RE = /ffmpeg .*-f h(264|evc) .*-i pipe:0/;


describe('decoder killed and decoder stopped', { timeout: 150_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  const abort = new AbortController();
  const cams: Promise<IngestResult>[] = [];
  let stopped: number | undefined;

  before(async () => {
    ensureStack();
    topo = await newTopology({ mode: 'live', budgetMs: 1000, partitions: 3, decodeFields: 'stallMs: 1500' });
  });
  after(async () => {
    if (stopped !== undefined && isAlive(stopped)) process.kill(stopped, 'SIGKILL');
    abort.abort();
    await Promise.allSettled(cams);
    await Promise.allSettled([labels?.stop(), events?.stop()]);
    await stopAllProcessors(10_000);
    await removeTopology(topo);
  });

  test('both recover from their next keyframe; the third stream is unaffected', async () => {
    await withLogs(() => [proc], async () => {
      proc = Processor.run(topo.file, 'processor');
      await proc.waitReady(topo.httpBase);
      [labels, events] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events)]);
      const video = colourVideo(320, 240, 25, [
        { colour: 'red', frames: 150 },
        { colour: 'cyan', frames: 150 },
        { colour: 'yellow', frames: 150 },
      ]);
      const names = ['a', 'b', 'c'].map((n) => `${topo.name}-${n}`);
      for (const stream of names) cams.push(runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo.chunks, realtime: true, gop: 25, signal: abort.signal }));
      assert.ok(await waitUntil(() => new Set(labels!.json<LabelRecord>().map((r) => r.stream)).size === 3, 20_000), 'not all three streams labelled');
      await sleep(3000);

      // The decoders working (spares sit idle on stdin): the three with CPU time growing.
      const before1 = new Map(childProcesses(proc.pid).filter((c) => DECODER_RE.test(c.cmd)).map((c) => [c.pid, cpuTicks(c.pid)]));
      await sleep(2000);
      const busy = [...before1].map(([pid, t]) => ({ pid, used: cpuTicks(pid) - t })).sort((x, y) => y.used - x.used);
      assert.ok(busy.length >= 3, `expected ≥ 3 decoders, found ${busy.length}`);
      const [killed, frozen] = [busy[0]!.pid, busy[1]!.pid];
      process.kill(killed, 'SIGKILL');
      process.kill(frozen, 'SIGSTOP');
      stopped = frozen;
      const t0 = Date.now();
      console.log(`SIGKILL decoder ${killed}, SIGSTOP decoder ${frozen} (CPU ticks over 2 s: ${busy.map((b) => `${b.pid}:${b.used}`).join(' ')})`);
      assert.ok(await waitUntil(() => !isAlive(frozen), 10_000, 100), 'the stopped decoder was not killed by the watchdog');
      console.log(`watchdog killed the stopped decoder ${Date.now() - t0} ms after SIGSTOP (stallMs 1500)`);

      const results = await Promise.all(cams);
      const complete = (): boolean =>
        names.every((stream, k) => {
          const s = results[k]!.sessions[0]!;
          return framesCovered(labels!.json<LabelRecord>(), events!.json<DroppedRecord>(), stream, s.session).size >= s.frames;
        });
      await waitUntil(complete, 30_000, 250);
      await waitQuiet(() => labels!.records.length + events!.records.length, 1500, 10_000);

      const m = await scrapeMetrics(topo.httpBase);
      const summary = names.map((stream, k) => {
        const s = results[k]!.sessions[0]!;
        const recs = labels!.json<LabelRecord>().filter((r) => r.stream === stream && r.session === s.session);
        const drops = events!.json<DroppedRecord>().filter((e) => e.type === 'dropped' && e.stream === stream && e.session === s.session);
        const resets = drops.filter((d) => d.reason === 'decoder-reset' && d.fromFrame > 0);
        const byReason: Record<string, number> = {};
        for (const d of drops) byReason[d.reason] = (byReason[d.reason] ?? 0) + d.count;
        const lastReset = Math.max(-1, ...resets.map((d) => d.toFrame));
        const labelledAfter = recs.filter((r) => r.frame > lastReset).length;
        return { stream, session: s.session, frames: s.frames, labelled: new Set(recs.map((r) => r.frame)).size, byReason, resets: resets.length, lastReset, labelledAfter };
      });
      for (const s of summary) console.log(`${s.stream}: ${s.frames} frames, ${s.labelled} labelled, dropped ${JSON.stringify(s.byReason)}, decoder-reset ranges after frame 0: ${s.resets}, labels after the last reset ${s.labelledAfter}`);
      console.log(`metrics: decoder restarts ${metricValue(m, 'framewire_decoder_restarts_total')}, watchdog kills (stalled) ${metricValue(m, 'framewire_decoder_kills_total', { reason: 'stalled' })}`);

      for (const [k, stream] of names.entries()) {
        const s = results[k]!.sessions[0]!;
        assertCoveredOnce(labels!.json<LabelRecord>(), events!.json<DroppedRecord>(), stream, s.session, s.frames);
      }
      const hit = summary.filter((s) => s.resets > 0);
      const spared = summary.filter((s) => s.resets === 0);
      assert.equal(hit.length, 2, 'two streams lost frames to a decoder reset');
      for (const s of hit) assert.ok(s.labelledAfter >= 100, `${s.stream} did not recover: ${s.labelledAfter} labels after its reset`);
      assert.equal(spared.length, 1);
      assert.ok(spared[0]!.labelled >= 0.97 * spared[0]!.frames, `the unaffected stream labelled only ${spared[0]!.labelled}/${spared[0]!.frames}`);
      assert.ok(metricValue(m, 'framewire_decoder_kills_total', { reason: 'stalled' }) >= 1);
      assert.ok(metricValue(m, 'framewire_decoder_restarts_total') >= 2);
      const status = await proc.stop();
      assert.equal(status.code, 0);
    });
  });
});
