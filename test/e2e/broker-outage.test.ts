/**
 * Broker outage (issue #12): the private second-stack broker is killed with SIGKILL in the middle
 * of two live camera streams and restarted 6 s later. The cameras keep running: one whose buffer
 * (--buffer-ms) outlasts the outage resumes its session in order; one with a short buffer drops
 * its oldest chunks and goes on in a new session from the next keyframe. Every frame the cameras
 * report as sent is labelled or reported `dropped`, and the frames the cameras report lost in
 * gaps are exactly the ones missing. The processor recovers by itself.
 *
 * The cameras run until the claim is shown: both streams labelled for 2 s after the broker is
 * back and the short camera's new session labelled; then they stop (fw-eos). A fixed 40 s video
 * outlasted a typical restart (10-25 s for the JVM) by 10-20 s of play that showed nothing more.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { runIngest, type IngestResult } from '../../src/ingest/ingest.js';
import { ranges, type DroppedRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, httpGet, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { sleep, waitQuiet, waitUntil } from '../helpers/wait.js';
import type { LabelRecord } from '../../src/core/frame.js';
import { SecondStack } from '../helpers/stack2.js';

describe('broker killed mid-stream and restarted after 6 s', { timeout: 240_000 }, () => {
  const stack = new SecondStack();
  let client: Kafka;
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  const abort = new AbortController();
  const cams: Promise<IngestResult>[] = [];

  before(() => {
    ensureStack(); // Triton from the shared stack; the broker is private
    stack.down();
    stack.up('kafka');
    client = new Kafka({ clientId: 'fw-e2e-outage', brokers: stack.brokers, logLevel: logLevel.NOTHING });
  });
  after(async () => {
    abort.abort();
    await Promise.allSettled(cams);
    await Promise.allSettled([labels?.stop(), events?.stop()]);
    await stopAllProcessors(10_000);
    await removeTopology(topo, client).catch(() => undefined);
    stack.down();
  });

  test('cameras keep running; every frame sent is labelled or dropped; gaps match the missing frames', async () => {
    await withLogs(() => [proc], async () => {
      topo = await newTopology({ brokers: stack.brokers, mode: 'live', budgetMs: 1000, partitions: 2 });
      proc = Processor.run(topo.file, 'processor');
      await proc.waitReady(topo.httpBase, 60_000);
      [labels, events] = await Promise.all([TopicCollector.start(topo.labels, client), TopicCollector.start(topo.events, client)]);

      // At most 60 s at 25 fps, a keyframe every second: the broker (a JVM on a busy machine) may
      // take 10-25 s to be back, and labels must resume before the cameras end.
      const video = colourVideo(320, 240, 25, [
        { colour: 'red', frames: 300 },
        { colour: 'blue', frames: 400 },
        { colour: 'green', frames: 800 },
      ]);
      const camera = (name: string, bufferMs: number) =>
        runIngest({ stream: `${topo.name}-${name}`, input: video.input, brokers: stack.brokers, topic: topo.chunks, realtime: true, gop: 25, bufferMs, giveUpAfterMs: 120_000, signal: abort.signal });
      const t0 = Date.now();
      cams.push(camera('long', 60_000), camera('short', 2000));
      const settled = cams.map((c) => c.then(() => 'ok', (e: Error) => `failed: ${e.message}`));

      assert.ok(await waitUntil(() => labels!.records.length > 50, 30_000), 'no labels before the kill');
      stack.kill9('kafka');
      const killedAt = Date.now();
      const labelsAtKill = labels!.records.length;
      await sleep(6000);
      await stack.upAsync('kafka');
      const backAt = Date.now();
      console.log(`broker SIGKILL at ${((killedAt - t0) / 1000).toFixed(1)} s (${labelsAtKill} labels), restarted and ready ${((backAt - killedAt) / 1000).toFixed(1)} s later`);

      const labelledAfter = (name: string, ms: number) => labels!.records.some((r) => r.receivedAt > backAt + ms && r.key === `${topo.name}-${name}`);
      const shortSessions = () => new Set(labels!.json<LabelRecord>().filter((r) => r.stream === `${topo.name}-short`).map((r) => r.session)).size;
      await waitUntil(() => labelledAfter('long', 2000) && labelledAfter('short', 2000) && shortSessions() >= 2, 40_000, 200);
      const stoppedAt = Date.now();
      abort.abort();
      const outcomes = await Promise.all(settled);
      assert.deepEqual(outcomes, ['ok', 'ok'], 'a camera stopped');
      const [long, short] = (await Promise.all(cams)) as [IngestResult, IngestResult];
      const firstLabelAfter = labels!.records.find((r) => r.receivedAt > backAt);
      console.log(`first label after the broker was back: ${firstLabelAfter ? `${firstLabelAfter.receivedAt - backAt} ms` : 'none'}`);
      // The processor recovers by itself: both cameras' streams are labelled again once the broker is back.
      for (const name of ['long', 'short']) {
        const resumed = labels!.records.some((r) => r.receivedAt > backAt && r.key === `${topo.name}-${name}`);
        assert.ok(resumed, `${name}: no label after the broker was back`);
      }

      const accounted = (stream: string, session: string): Uint16Array => {
        const n = new Uint16Array(2000);
        for (const r of labels!.json<LabelRecord>()) if (r.stream === stream && r.session === session && r.frame < 2000) n[r.frame]!++;
        for (const e of events!.json<DroppedRecord>()) if (e.type === 'dropped' && e.stream === stream && e.session === session) for (let i = e.fromFrame; i <= e.toFrame && i < 2000; i++) n[i]!++;
        return n;
      };
      const complete = (): boolean =>
        [long, short].every((res, k) => res.sessions.every((s) => accounted(`${topo.name}-${k ? 'short' : 'long'}`, s.session).subarray(0, s.frames).every((c) => c > 0)));
      await waitUntil(complete, 60_000, 500);
      await waitQuiet(() => labels!.records.length + events!.records.length, 2000, 15_000);

      for (const [name, res] of [['long', long], ['short', short]] as const) {
        const stream = `${topo.name}-${name}`;
        const sent = res.sessions.reduce((n, s) => n + s.frames, 0);
        const lost = res.gaps.reduce((n, g) => n + g.frames, 0);
        const perSession = res.sessions.map((s) => {
          const n = accounted(stream, s.session);
          const missing: number[] = [];
          const twice: number[] = [];
          for (let i = 0; i < s.frames; i++) (n[i] === 0 ? missing : n[i]! > 1 ? twice : []).push(i);
          const beyond = [...n.subarray(s.frames)].some((c) => c > 0);
          const recs = labels!.json<LabelRecord>().filter((r) => r.stream === stream && r.session === s.session);
          const lbl = recs.length;
          const seen = new Set<number>();
          let labelledTwice = 0;
          for (const r of recs) (seen.has(r.frame) ? labelledTwice++ : seen.add(r.frame));
          const drops: Record<string, number> = {};
          for (const e of events!.json<DroppedRecord>()) if (e.type === 'dropped' && e.stream === stream && e.session === s.session) drops[e.reason] = (drops[e.reason] ?? 0) + e.count;
          return { ...s, labelled: lbl, drops, missing, twice, beyond, labelledTwice };
        });
        console.log(
          `camera ${name}: ${res.frames} frames from the source, ${sent} sent in ${res.sessions.length} session(s), ${res.gaps.length} gap(s) losing ${lost}; ` +
            perSession.map((s) => `[${s.session}: ${s.frames} sent, ${s.labelled} labels, dropped ${JSON.stringify(s.drops)}, missing ${s.missing.length}, counted twice ${s.twice.length} (labelled twice ${s.labelledTwice}: ${ranges(s.twice)})]`).join(' ') +
            res.gaps.map((g) => ` gap ${g.endedSession}→${g.nextSession}: ${g.frames} frames, ${g.to - g.from} ms`).join(''),
        );
        // Kept running through the outage: frames at the source's rate until it was stopped (less
        // ffmpeg's start), or the whole video.
        const due = Math.min(video.frames, Math.floor(((stoppedAt - t0) / 1000 - 3) * 25));
        assert.ok(res.frames >= due, `${name}: the source produced ${res.frames} frames, ${due} were due by the stop`);
        assert.equal(sent + lost, res.frames, `${name}: frames sent + frames the gaps report lost = frames of the source`);
        for (const s of perSession) {
          assert.deepEqual(s.missing, [], `${name} ${s.session}: frames sent but neither labelled nor dropped: ${ranges(s.missing)}`);
          // No crash here, so no frame may be published again: each is labelled or dropped exactly once.
          assert.deepEqual(s.twice, [], `${name} ${s.session}: frames labelled or dropped more than once (${s.labelledTwice} labelled twice): ${ranges(s.twice)}`);
          assert.equal(s.beyond, false, `${name} ${s.session}: frames beyond what the camera sent`);
        }
      }
      assert.equal(long.sessions.length, 1, 'the long buffer outlasted the outage: one session, resumed in order');
      assert.equal(long.gaps.length, 0);
      assert.ok(short.gaps.length >= 1 && short.sessions.length === short.gaps.length + 1, 'the short buffer overflowed: a gap and a new session after it');
      const ready = await httpGet(`${topo.httpBase}/readyz`);
      assert.equal(ready.status, 200, `processor not ready after the outage: ${ready.body}`);
      const status = await proc!.stop(20_000);
      assert.equal(status.code, 0);
    });
  });
});
