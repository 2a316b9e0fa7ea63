/**
 * Triton outage (issue #12): a private tritonserver (test/helpers/triton.ts, on this work's
 * second-stack ports) is killed with SIGKILL in the middle of two live streams and started again
 * 3 s later. Every frame is accounted for (frames whose deadline passed are `infer-failed` or
 * `deadline`), labels resume within 2 s of the new Triton being ready, and the shared-memory
 * regions are registered with it again. The cameras stop (fw-eos) once labels have flowed for 2 s
 * past Triton's return: the claim needs no more, and a fixed 32 s video cost ~15 s of idle play.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest, type IngestResult } from '../../src/ingest/ingest.js';
import { assertCoveredOnce, type DroppedRecord, framesCovered } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, httpGet, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { startTriton, type TritonProcess } from '../helpers/triton.js';
import { sleep, waitQuiet, waitUntil } from '../helpers/wait.js';
import type { LabelRecord } from '../../src/core/frame.js';

const PORTS = {
  httpPort: Number(process.env.FRAMEWIRE_STACK2_TRITON_HTTP_PORT ?? 8110),
  grpcPort: Number(process.env.FRAMEWIRE_STACK2_TRITON_GRPC_PORT ?? 8111),
  metricsPort: Number(process.env.FRAMEWIRE_STACK2_TRITON_METRICS_PORT ?? 8112),
};

describe('Triton killed mid-stream and restarted', { timeout: 240_000 }, () => {
  let triton: TritonProcess | undefined;
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  const abort = new AbortController();
  const cams: Promise<IngestResult>[] = [];

  before(async () => {
    ensureStack(); // Kafka from the shared stack; Triton is private
    triton = await startTriton({ ...PORTS, models: ['colour_probe'] });
    topo = await newTopology({ tritonUrl: triton.url, mode: 'live', budgetMs: 1000 });
  });
  after(async () => {
    abort.abort();
    await Promise.allSettled(cams);
    await Promise.allSettled([labels?.stop(), events?.stop()]);
    await stopAllProcessors(10_000);
    await triton?.stop(5000);
    await removeTopology(topo);
  });

  test('every frame accounted for; labels resume within 2 s of Triton ready; shm registered again', async () => {
    await withLogs(() => [proc], async () => {
      proc = Processor.run(topo.file, 'processor');
      await proc.waitReady(topo.httpBase, 60_000);
      [labels, events] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events)]);
      const video = colourVideo(320, 240, 25, [
        { colour: 'red', frames: 400 },
        { colour: 'green', frames: 400 },
      ]);
      const names = ['a', 'b'].map((n) => `${topo.name}-${n}`);
      for (const stream of names) cams.push(runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo.chunks, realtime: true, gop: 25, signal: abort.signal }));
      assert.ok(await waitUntil(() => labels!.records.length > 100, 30_000), 'no labels before the kill');
      const shmBefore = metricValue(await scrapeMetrics(topo.httpBase), 'framewire_triton_transport', { transport: 'shm' });

      process.kill(-triton!.pid, 'SIGKILL');
      const killedAt = Date.now();
      await sleep(3000);
      triton = await startTriton({ ...PORTS, models: ['colour_probe'] });
      const readyAt = Date.now();
      console.log(`Triton SIGKILL, restarted and ready ${((readyAt - killedAt) / 1000).toFixed(1)} s later`);
      const resumed = await waitUntil(() => labels!.json<LabelRecord>().some((r) => r.publishedTs > readyAt), 15_000, 50);
      const first = labels!.json<LabelRecord>().find((r) => r.publishedTs > readyAt);
      const resumeMs = first ? first.publishedTs - readyAt : Infinity;
      const regions = JSON.parse((await httpGet(`http://127.0.0.1:${PORTS.httpPort}/v2/systemsharedmemory/status`)).body) as { name: string }[];

      // Labels flowing again for 2 s past Triton's return; then the cameras end their sessions.
      await waitUntil(() => labels!.json<LabelRecord>().some((r) => r.publishedTs > readyAt + 2000), 20_000, 100);
      abort.abort();
      const results = await Promise.all(cams);
      const complete = (): boolean =>
        names.every((stream, k) => {
          const s = results[k]!.sessions[0]!;
          return framesCovered(labels!.json<LabelRecord>(), events!.json<DroppedRecord>(), stream, s.session).size >= s.frames;
        });
      await waitUntil(complete, 30_000, 250);
      await waitQuiet(() => labels!.records.length + events!.records.length, 1500, 10_000);
      const m = await scrapeMetrics(topo.httpBase);
      for (const [k, stream] of names.entries()) {
        const s = results[k]!.sessions[0]!;
        const drops: Record<string, number> = {};
        for (const e of events!.json<DroppedRecord>()) if (e.type === 'dropped' && e.stream === stream && e.session === s.session) drops[e.reason] = (drops[e.reason] ?? 0) + e.count;
        const lbl = new Set(labels!.json<LabelRecord>().filter((r) => r.stream === stream && r.session === s.session).map((r) => r.frame)).size;
        console.log(`${stream}: ${s.frames} frames, ${lbl} labelled, dropped ${JSON.stringify(drops)}`);
      }
      console.log(`first label ${resumeMs} ms after Triton was ready; shm transport before ${shmBefore}, after ${metricValue(m, 'framewire_triton_transport', { transport: 'shm' })}; regions in the new Triton: ${regions.map((r) => r.name).join(', ') || 'none'}`);
      for (const [k, stream] of names.entries()) assertCoveredOnce(labels!.json<LabelRecord>(), events!.json<DroppedRecord>(), stream, results[k]!.sessions[0]!.session, results[k]!.sessions[0]!.frames);
      assert.ok(resumed, 'no label after Triton came back');
      assert.ok(resumeMs <= 2000, `labels resumed ${resumeMs} ms after Triton was ready (target 2000)`);
      if (shmBefore > 0) {
        assert.ok(regions.some((r) => r.name.startsWith('framewire-')), 'shared-memory regions not registered with the restarted Triton');
        assert.equal(metricValue(m, 'framewire_triton_transport', { transport: 'shm' }), shmBefore, 'the endpoint is back on shared memory');
      }
      const status = await proc.stop();
      assert.equal(status.code, 0);
    });
  });
});
