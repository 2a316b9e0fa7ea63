/**
 * Clean starts and stops (issue #12, docs/contracts.md "Command line"): a processor that cannot
 * start exits promptly, non-zero, with one line, holding no consumer-group membership; SIGTERM
 * exits within shutdown.drainTimeoutMs + 5 s even with the broker gone; a second signal forces
 * the exit. The broker that is killed is a private second stack (test/helpers/stack2.ts); with it
 * goes the broker of a `framewire ingest --give-up-after 3000`, which must then exit 1 saying so.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { runIngest } from '../../src/ingest/ingest.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, fmtStatus, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { ensureStack, freePort } from '../helpers/stack.js';
import { kafka, newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { sleep, waitUntil, withTimeout } from '../helpers/wait.js';
import { SecondStack } from '../helpers/stack2.js';

/** Members of a consumer group as the broker sees them (kafkajs admin describeGroups). */
async function groupMembers(client: Kafka, group: string): Promise<number> {
  const admin = client.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([group]);
    return groups[0]?.members.length ?? 0;
  } finally {
    await admin.disconnect();
  }
}

/** The processor's own last stderr line (not a JSON log line). */
function finalLine(p: Processor): string {
  return p.stderr.trimEnd().split('\n').filter((l) => !l.startsWith('{')).join(' | ');
}

describe('failed starts exit promptly, 1, with one line and no group membership', { timeout: 90_000 }, () => {
  const topos: TestTopology[] = [];
  before(() => ensureStack());
  after(async () => {
    await stopAllProcessors(5000);
    for (const t of topos) await removeTopology(t);
  });

  test('port in use: exit 1 within 15 s, nothing joined the group', async () => {
    const topo = await newTopology();
    topos.push(topo);
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(topo.port, '127.0.0.1', () => r()));
    try {
      const p = Processor.run(topo.file, 'port-in-use processor');
      let maxMembers = 0;
      const t0 = Date.now();
      // Watch the group while it lives: a processor that joined before failing would show here.
      while (p.running && Date.now() - t0 < 15_000) {
        maxMembers = Math.max(maxMembers, await groupMembers(kafka, topo.group).catch(() => 0));
        await sleep(200);
      }
      const status = await withTimeout(p.exited, Math.max(1, 15_000 - (Date.now() - t0)), 'processor exiting with its port in use');
      const ms = Date.now() - t0;
      const after = await groupMembers(kafka, topo.group);
      console.log(`port in use: ${fmtStatus(status)} after ${ms} ms; group members seen ${maxMembers}, after exit ${after}; "${finalLine(p)}"`);
      assert.equal(status.code, 1, 'a failed start of a valid topology exits 1 (docs/contracts.md; 2 is an invalid one)');
      assert.equal(status.signal, null, 'exited by itself');
      assert.match(finalLine(p), /HTTP_LISTEN_FAILED.*address already in use/);
      assert.equal(maxMembers, 0, 'a member joined the consumer group');
      assert.equal(after, 0, 'a member is left in the consumer group');
    } finally {
      blocker.close();
    }
  });

  for (const dep of ['kafka', 'triton'] as const) {
    test(`${dep} unreachable: exit 1 once startupTimeoutMs has passed, naming it`, async () => {
      const dead = `127.0.0.1:${await freePort()}`;
      const topo = await newTopology({ startupTimeoutMs: 3000, ...(dep === 'kafka' ? { brokers: [dead] } : { tritonUrl: dead }) });
      topos.push(topo);
      const p = Processor.run(topo.file, `${dep}-unreachable processor`);
      const t0 = Date.now();
      const status = await withTimeout(p.exited, 15_000, `processor exiting with ${dep} unreachable`);
      const ms = Date.now() - t0;
      console.log(`${dep} unreachable: ${fmtStatus(status)} after ${ms} ms; "${finalLine(p)}"`);
      assert.equal(status.code, 1);
      assert.match(finalLine(p), new RegExp(`STARTUP_TIMEOUT.*${dep === 'kafka' ? 'Kafka' : 'Triton'} at ${dead.replace('.', '\\.')}`));
      assert.ok(ms >= 2500, `gave up before startupTimeoutMs (${ms} ms)`);
      assert.ok(ms < 3000 + 8000, `took ${ms} ms`);
    });
  }
});

describe('SIGTERM with the broker killed (second stack)', { timeout: 150_000 }, () => {
  const stack = new SecondStack();
  let client: Kafka;
  const topos: TestTopology[] = [];
  const procs: Processor[] = [];
  const abort = new AbortController();
  const ingests: Promise<unknown>[] = [];

  before(() => {
    ensureStack(); // Triton comes from the shared stack; only the broker is private
    stack.down();
    stack.up('kafka');
    client = new Kafka({ clientId: 'fw-e2e-stack2', brokers: stack.brokers, logLevel: logLevel.NOTHING });
  });
  after(async () => {
    abort.abort();
    await Promise.allSettled(ingests);
    await stopAllProcessors(5000);
    stack.down();
    void client;
  });

  test('exits within drain + 5 s; a second SIGTERM exits at once', async () => {
    await withLogs(() => procs, async () => {
      // A: drain 3 s. B: drain 60 s, so only the second signal can end it quickly.
      for (const drainTimeoutMs of [3000, 60_000]) {
        const topo = await newTopology({ brokers: stack.brokers, drainTimeoutMs, mode: 'live' });
        topos.push(topo);
        const p = Processor.run(topo.file, `processor drain ${drainTimeoutMs}`);
        procs.push(p);
        await p.waitReady(topo.httpBase, 60_000);
        const video = colourVideo(320, 240, 25, [{ colour: 'red', frames: 750 }]);
        const ing = runIngest({ stream: `${topo.name}-cam`, input: video.input, brokers: stack.brokers, topic: topo.chunks, realtime: true, gop: 25, signal: abort.signal });
        ingests.push(ing.catch(() => undefined));
      }
      const [a, b] = procs as [Processor, Processor];
      // A camera that gives up 3 s into an outage (docs/contracts.md: exits 1, INGEST_BROKER_GONE).
      const giveUpTopic = `${topos[0]!.chunks}.give-up`;
      const giving = colourVideo(160, 120, 25, [{ colour: 'green', frames: 1500 }]);
      const camera = new Processor(['ingest', '--stream', `${topos[0]!.name}-gives-up`, '--input', giving.input, '--brokers', stack.brokers.join(','), '--topic', giveUpTopic, '--realtime', '--give-up-after', '3000'], 'ingest --give-up-after 3000');
      procs.push(camera);
      // Labels flowing on both before the broker goes.
      const published = async (p: TestTopology) => metricValue(await scrapeMetrics(p.httpBase), 'framewire_frames_published_total');
      assert.ok(await waitUntil(async () => (await published(topos[0]!)) >= 25 && (await published(topos[1]!)) >= 25, 20_000), 'fewer than 25 labels published by each');
      const admin = client.admin();
      await admin.connect();
      const sentChunks = async () => (await admin.fetchTopicOffsets(giveUpTopic).catch(() => [])).reduce((n, p) => n + Number(p.offset), 0);
      assert.ok(await waitUntil(async () => (await sentChunks()) > 0, 15_000), 'the give-up camera sent nothing before the kill');
      await admin.disconnect();
      stack.kill9('kafka');
      const killedAt = Date.now();
      await sleep(1500); // frames decoded since are stuck publishing
      const t0 = Date.now();
      a.child.kill('SIGTERM');
      b.child.kill('SIGTERM');
      // B took the first signal (it logs that it drains) and outlives A's 3 s drain deadline: its own
      // 60 s deadline holds it, so what ends it next is the second signal.
      const logged = (p: Processor, msg: string) => p.logs().some((l) => l.msg === msg);
      assert.ok(await waitUntil(() => logged(b, 'stopping: draining in-flight frames') || !b.running, 5000), 'B never logged that it drains');
      await waitUntil(() => logged(a, 'drain deadline passed; forcing shutdown') || !a.running, 3000 + 5000);
      assert.ok(b.running, `B (drain 60 s) should still be draining ${Date.now() - t0} ms after the first SIGTERM, when A's 3 s drain is over`);
      const t1 = Date.now();
      b.child.kill('SIGTERM');
      const sb = await withTimeout(b.exited, 5000, 'B exiting after the second SIGTERM');
      const bMs = Date.now() - t1;
      const sa = await withTimeout(a.exited, 3000 + 5000 + 2000, 'A exiting within drain + 5 s');
      const aMs = Date.now() - t0;
      console.log(`broker killed: A (drain 3000) ${fmtStatus(sa)} ${aMs} ms after SIGTERM; B ${fmtStatus(sb)} ${bMs} ms after the second SIGTERM`);
      assert.ok(aMs <= 3000 + 5000, `A took ${aMs} ms (drain 3000 + 5000 allowed)`);
      assert.ok(bMs <= 2000, `B took ${bMs} ms after the second signal`);
      assert.equal(sb.code, 130);
      // Bound: well under the 300 s default, so the flag is what ended it. Measured 26 and 32 s, not ~3 s:
      // the outage clock starts at the first failed produce request, which kafkajs reports only
      // after its client-level connect retries (~20 s) — a known lag, reported, not asserted away.
      const sc = await withTimeout(camera.exited, 60_000, 'the camera giving up');
      const cMs = Date.now() - killedAt;
      console.log(`ingest --give-up-after 3000: ${fmtStatus(sc)} ${cMs} ms after the kill; "${finalLine(camera)}"`);
      assert.deepEqual(sc, { code: 1, signal: null }, 'a camera whose broker is gone past --give-up-after exits 1');
      assert.match(finalLine(camera), /unreachable for more than 3000 ms \(--give-up-after\)/);
      assert.ok(cMs >= 3000, `gave up ${cMs} ms after the kill, before --give-up-after`);
      // Past its drain deadline A closed within the bounded steps: exit 0, not the backstop's 1.
      assert.deepEqual(sa, { code: 0, signal: null }, `A: ${fmtStatus(sa)} (1 is the backstop timer: closing did not finish in time)`);
    });
  });
});
