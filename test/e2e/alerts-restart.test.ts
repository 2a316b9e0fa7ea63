/**
 * Alerts across a crash: the processor is SIGKILLed while an alert episode is firing and a
 * successor (same topology, same consumer group) takes over. It reads the open episode back from
 * the alerts topic, so the episode resolves with the id it fired with: every record of the stream
 * on the alerts topic carries one id, and there is exactly one `resolved`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { ensureStack } from '../helpers/stack.js';
import { kafka, newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { encodeVideo, sendVideo } from '../helpers/cameras.js';
import type { AlertRecord } from '../../src/core/events.js';

const FPS = 25;

describe('alerts: a restart keeps the episode id', { timeout: 150_000 }, () => {
  let topo: TestTopology;
  let first: Processor | undefined;
  let second: Processor | undefined;
  let alerts: TopicCollector | undefined;

  before(async () => {
    ensureStack();
    topo = await newTopology({ mode: 'replay', commitIntervalMs: 200, idleTimeoutMs: 20_000, extra: `alerts:\n  - { name: red-on-air, label: red, forMs: 200, clearMs: 400 }` });
    first = Processor.run(topo.file, 'first');
    await first.waitReady(topo.httpBase);
    alerts = await TopicCollector.start(topo.alerts);
  });

  after(async () => {
    await alerts?.stop();
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('SIGKILL while firing; the successor resolves the episode under the same id', async () => {
    await withLogs(() => [first, second], async () => {
      const stream = `${topo.name}-cam`;
      const video = colourVideo(320, 240, FPS, [{ colour: 'blue', frames: 25 }, { colour: 'red', frames: 200 }, { colour: 'green', frames: 50 }]);
      const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const sending = sendVideo(producer, encodeVideo(video.graph, 25), { topic: topo.chunks, stream, session: randomBytes(4).toString('hex'), epochMs: Date.now() + 300, paced: true, eos: true });
      try {
        const ofStream = () => alerts!.json<AlertRecord>().filter((a) => a.stream === stream);
        assert.ok(await waitUntil(() => ofStream().length > 0, 20_000), 'the first processor fired');
        // Let a few commits pass the episode's first frames, so the successor starts mid-episode.
        await sleep(1500);
        await first!.kill();
        const firedBy1 = ofStream();
        assert.deepEqual(firedBy1.map((a) => a.state), ['firing']);
        second = Processor.run(topo.file, 'second');
        await second.waitReady(topo.httpBase);
        await sending;
        assert.ok(await waitUntil(() => ofStream().some((a) => a.state === 'resolved'), 30_000), 'resolved after the restart');
        await sleep(1500);
        const all = ofStream();
        console.log(`alert records: ${all.map((a) => `${a.state} ${a.id} from #${a.fromFrame} at #${a.atFrame}`).join('; ')}`);
        assert.deepEqual([...new Set(all.map((a) => a.id))], [firedBy1[0]!.id], 'one id for the whole episode');
        assert.equal(all.filter((a) => a.state === 'resolved').length, 1);
        const resolved = all.find((a) => a.state === 'resolved')!;
        assert.equal(resolved.fromFrame, firedBy1[0]!.fromFrame);
        assert.ok(resolved.atFrame >= 200 && resolved.atFrame <= 224, `resolved at the last red frame, got #${resolved.atFrame}`);
        assert.ok(second.logs().some((l) => l.msg === 'alert episodes read back from the alerts topic' && l.open === 1), 'the successor read the open episode back');
      } finally {
        await sending.catch(() => undefined);
        await producer.disconnect();
      }
    });
  });
});
