/**
 * One output stage (issue #18): during a Kafka outage the Kafka sink is retried on its own, so a
 * WebSocket client gets every label exactly once. Before, a failed delivery re-sent the whole
 * batch to every sink on each retry, and the WebSocket got the same labels again and again.
 * The private second-stack broker is killed (SIGKILL) mid-stream and restarted 3 s later; one
 * live camera with a buffer that outlasts the outage keeps one session. At the end: the labels
 * topic and the WebSocket client hold the same set of frames, and the client saw each once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { runIngest } from '../../src/ingest/ingest.js';
import { TopicCollector, WsCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { sleep, waitQuiet, waitUntil } from '../helpers/wait.js';
import type { LabelRecord } from '../../src/core/frame.js';
import { SecondStack } from '../helpers/stack2.js';

describe('Kafka outage mid-stream: each WebSocket client gets every label once', { timeout: 180_000 }, () => {
  const stack = new SecondStack();
  let client: Kafka;
  let topo: TestTopology | undefined;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let ws: WsCollector | undefined;
  const abort = new AbortController();

  before(() => {
    ensureStack(); // Triton from the shared stack; the broker is private
    stack.down();
    stack.up('kafka');
    client = new Kafka({ clientId: 'fw-e2e-ws-outage', brokers: stack.brokers, logLevel: logLevel.NOTHING });
  });
  after(async () => {
    abort.abort();
    ws?.close();
    await labels?.stop().catch(() => undefined);
    await stopAllProcessors(10_000);
    await removeTopology(topo, client).catch(() => undefined);
    stack.down();
  });

  test('labels topic and WebSocket hold the same frames; none twice on the WebSocket', async () => {
    await withLogs(() => [proc], async () => {
      topo = await newTopology({ brokers: stack.brokers, mode: 'live', budgetMs: 1000, partitions: 1 });
      proc = Processor.run(topo.file, 'processor');
      await proc.waitReady(topo.httpBase, 60_000);
      labels = await TopicCollector.start(topo.labels, client);
      ws = await WsCollector.connect(topo.wsUrl);

      // 40 s at 25 fps, stopped once labels are back: the broker (a JVM) takes 10-25 s to return here.
      const video = colourVideo(320, 240, 25, [
        { colour: 'red', frames: 500 },
        { colour: 'blue', frames: 500 },
      ]);
      const stream = `${topo.name}-cam`;
      const t0 = Date.now();
      const camera = runIngest({ stream, input: video.input, brokers: stack.brokers, topic: topo.chunks, realtime: true, gop: 25, bufferMs: 60_000, giveUpAfterMs: 120_000, signal: abort.signal });
      assert.ok(await waitUntil(() => ws!.labels().length > 40, 30_000), 'no labels on the WebSocket before the kill');
      await sleep(Math.max(0, 4000 - (Date.now() - t0)));
      const beforeKill = ws.labels().length;
      stack.kill9('kafka');
      // Labels decoded before the kill are still being retried to Kafka while the broker is away.
      await sleep(3000);
      await stack.upAsync('kafka');
      const backAt = Date.now();
      // Labels of frames captured after the broker was back: the stream is live again.
      assert.ok(await waitUntil(() => ws!.labels().filter((r) => r.captureTs > backAt).length >= 25, 30_000, 250), 'labels did not resume on the WebSocket after the outage');
      abort.abort();
      const res = await camera;
      assert.equal(res.sessions.length, 1, 'the camera buffer outlasted the outage: one session');
      const session = res.sessions[0]!.session;
      const mine = (rs: LabelRecord[]) => rs.filter((r) => r.stream === stream && r.session === session);
      await waitUntil(() => mine(labels!.json<LabelRecord>()).length >= new Set(mine(ws!.labels()).map((r) => r.frame)).size, 30_000, 250);
      await waitQuiet(() => labels!.records.length + ws!.messages.length, 2500, 30_000);

      const onWs = mine(ws.labels()).map((r) => r.frame);
      const onKafka = new Set(mine(labels.json<LabelRecord>()).map((r) => r.frame));
      const seen = new Map<number, number>();
      for (const f of onWs) seen.set(f, (seen.get(f) ?? 0) + 1);
      const twice = [...seen].filter(([, n]) => n > 1).map(([f]) => f);
      const notOnKafka = [...seen.keys()].filter((f) => !onKafka.has(f));
      const notOnWs = [...onKafka].filter((f) => !seen.has(f));
      console.log(
        `broker SIGKILL at ${beforeKill} WebSocket labels, back ${((backAt - t0) / 1000).toFixed(1)} s in; WebSocket: ${onWs.length} labels for ${seen.size} frames ` +
          `(${twice.length} frames more than once); labels topic: ${onKafka.size} frames; only on the WebSocket ${notOnKafka.length}, only on Kafka ${notOnWs.length}`,
      );
      assert.deepEqual(twice, [], 'the WebSocket client got the same label more than once');
      assert.deepEqual(notOnWs, [], 'labels on the topic that the WebSocket client never got');
      // Labels that reached the WebSocket but not the topic: only possible for a batch Kafka refused for good (none here).
      assert.deepEqual(notOnKafka, [], 'labels on the WebSocket that never reached the labels topic');
    });
  });
});
