/**
 * A processor started right after its broker restarted (issue #12: the group and transaction
 * coordinators are still loading; kafkajs logs "The coordinator is loading") must label normally:
 * the second-stack broker is killed and restarted, a processor and a camera start at once, and
 * labels must flow within seconds of the processor being ready.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { runIngest, type IngestResult } from '../../src/ingest/ingest.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { ensureStack } from '../helpers/stack.js';
import { SecondStack } from '../helpers/stack2.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';
import type { LabelRecord } from '../../src/core/frame.js';

describe('a processor started on a broker just back from a restart', { timeout: 200_000 }, () => {
  const stack = new SecondStack();
  let client: Kafka;
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  const abort = new AbortController();
  let cam: Promise<IngestResult> | undefined;

  before(() => {
    ensureStack();
    stack.down();
    stack.up('kafka');
    client = new Kafka({ clientId: 'fw-e2e-fresh', brokers: stack.brokers, logLevel: logLevel.NOTHING });
  });
  after(async () => {
    abort.abort();
    await cam?.catch(() => undefined);
    await labels?.stop();
    await stopAllProcessors(10_000);
    await removeTopology(topo, client).catch(() => undefined);
    stack.down();
  });

  test('labels flow within seconds of ready', async () => {
    await withLogs(() => [proc], async () => {
      topo = await newTopology({ brokers: stack.brokers, mode: 'live', budgetMs: 1000 });
      // Offsets and transaction state exist (as on a broker that has been used), then it dies and comes back.
      const warm = await TopicCollector.start(`${topo.name}.warm`, client).catch(() => undefined);
      await warm?.stop();
      stack.kill9('kafka');
      await stack.upAsync('kafka');
      const backAt = Date.now();
      proc = Processor.run(topo.file, 'processor');
      const video = colourVideo(320, 240, 25, [{ colour: 'blue', frames: 500 }]);
      cam = runIngest({ stream: `${topo.name}-cam`, input: video.input, brokers: stack.brokers, topic: topo.chunks, realtime: true, gop: 25, signal: abort.signal });
      await proc.waitReady(topo.httpBase, 60_000);
      const readyAt = Date.now();
      labels = await TopicCollector.start(topo.labels, client);
      const flowing = await waitUntil(() => labels!.records.length >= 100, 30_000, 200);
      const firstAt = labels.json<LabelRecord>()[0]?.publishedTs;
      const coordinatorLoading = proc.stderr.includes('coordinator is loading') || proc.stderr.includes('COORDINATOR_LOAD_IN_PROGRESS');
      console.log(
        `processor ready ${readyAt - backAt} ms after the broker was back; first label ${firstAt ? firstAt - readyAt : 'never'} ms after ready; ` +
          `${labels.records.length} labels within 30 s; "coordinator is loading" in its log: ${coordinatorLoading}`,
      );
      assert.ok(flowing, `only ${labels.records.length} labels 30 s after ready`);
    });
  });
});
