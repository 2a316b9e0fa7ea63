/**
 * End to end, on the real stack: three cameras of different sizes, frame rates and GOP lengths
 * are ingested at once as random sequences of solid-colour segments; every frame of every stream
 * must come back labelled with its colour, in order, on Kafka and on the WebSocket.
 *
 * FW_E2E_SEED=<n> replays a run's colour sequences (the seed is logged).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { checkLabels, hasAllFrames, labelsOf, ranges, type LabelRecord, type StreamCheck } from '../helpers/accounting.js';
import { TopicCollector, WsCollector } from '../helpers/collectors.js';
import { colourVideo, randomSegments, seededRng, type ColourVideo } from '../helpers/colours.js';
import { Processor, fmtStatus, httpGet, stopAllProcessors, metricValue, scrapeMetrics, withLogs } from '../helpers/processes.js';
import { BROKERS, MODEL, ensureStack } from '../helpers/stack.js';
import { newTopology, type TestTopology, removeTopology } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';

interface Cam {
  stream: string;
  video: ColourVideo;
  gop: number;
  session: string;
}

describe('pipeline: three concurrent colour streams, end to end', { timeout: 150_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  let ws: WsCollector | undefined;
  /** Subscribed to one stream only (`?streams=`). */
  let wsOne: WsCollector | undefined;

  before(async () => {
    ensureStack();
    topo = await newTopology();
    proc = Processor.run(topo.file, 'processor');
    const readyMs = await proc.waitReady(topo.httpBase);
    console.log(`processor ready in ${readyMs} ms`);
    [labels, events] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events)]);
    ws = await WsCollector.connect(topo.wsUrl);
    wsOne = await WsCollector.connect(topo.wsUrl, [`${topo.name}-medium`]);
  });

  after(async () => {
    ws?.close();
    wsOne?.close();
    await Promise.all([labels?.stop(), events?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('every frame of every stream is labelled with its colour, in order, on Kafka and WebSocket; SIGTERM exits 0', async () => {
    await withLogs(() => [proc], async () => {
      const seed = Number(process.env.FW_E2E_SEED ?? Math.floor(Math.random() * 2 ** 31));
      console.log(`colour sequence seed: ${seed} (replay with FW_E2E_SEED=${seed})`);
      const rng = seededRng(seed);
      const id = topo.name;
      const specs = [
        { stream: `${id}-small`, width: 320, height: 240, fps: 25, gop: 12, seconds: 3 + rng() * 2 },
        { stream: `${id}-medium`, width: 640, height: 360, fps: 30, gop: 30, seconds: 3 + rng() * 2 },
        { stream: `${id}-large`, width: 1280, height: 720, fps: 25, gop: 50, seconds: 3 + rng() * 2 },
      ];
      const cams: Cam[] = specs.map((s) => ({
        stream: s.stream,
        gop: s.gop,
        session: '',
        video: colourVideo(s.width, s.height, s.fps, randomSegments(rng, Math.round(s.seconds * s.fps), Math.round(s.fps * 0.4), Math.round(s.fps * 1.4))),
      }));
      for (const c of cams) {
        console.log(`${c.stream}: ${c.video.width}x${c.video.height}@${c.video.fps} gop ${c.gop}, ${c.video.frames} frames: ${c.video.segments.map((s) => `${s.colour}×${s.frames}`).join(' ')}`);
      }
      const totalFrames = cams.reduce((n, c) => n + c.video.frames, 0);

      const t0 = Date.now();
      const results = await Promise.all(
        cams.map((c) => runIngest({ stream: c.stream, input: c.video.input, brokers: BROKERS, topic: topo.chunks, gop: c.gop })),
      );
      const ingestMs = Date.now() - t0;
      for (const [i, r] of results.entries()) {
        cams[i]!.session = r.session;
        assert.ok(r.chunks > 0, `${cams[i]!.stream}: ingest produced no chunks`);
      }
      console.log(`ingest of ${totalFrames} frames finished in ${ingestMs} ms (${results.map((r) => `${r.chunks} chunks/${r.bytes} B`).join(', ')})`);

      const allKafka = (): boolean => cams.every((c) => hasAllFrames(labels!.json<LabelRecord>(), c.stream, c.session, c.video.frames));
      const allWs = (): boolean =>
        cams.every((c) => hasAllFrames(ws!.labels(), c.stream, c.session, c.video.frames)) &&
        cams.filter((c) => c.stream === `${topo.name}-medium`).every((c) => hasAllFrames(wsOne!.labels(), c.stream, c.session, c.video.frames));
      const complete = await waitUntil(() => allKafka() && allWs(), 60_000);

      const kafkaLabels = labels!.json<LabelRecord>();
      const wsLabels = ws!.labels();
      const lastPublished = Math.max(...kafkaLabels.map((r) => r.publishedTs));
      const lastReceived = labels!.records.reduce((m, r) => Math.max(m, r.receivedAt), 0);
      const firstPublished = Math.min(...kafkaLabels.map((r) => r.publishedTs));
      const seconds = (lastPublished - t0) / 1000;
      console.log(
        `THROUGHPUT: ${totalFrames} frames in ${seconds.toFixed(2)} s from first ingest start to last label published = ${(totalFrames / seconds).toFixed(1)} frames/s ` +
          `(to last label received by the Kafka reader: ${((lastReceived - t0) / 1000).toFixed(2)} s; ingest alone ${(ingestMs / 1000).toFixed(2)} s; ` +
          `first label at ${((firstPublished - t0) / 1000).toFixed(2)} s; the last frames wait for the ${1500} ms decoder idle timeout to flush)`,
      );

      const problems: string[] = [];
      const report = (where: string, c: Cam, chk: StreamCheck): void => {
        const tol = chk.toleratedNearChange.length;
        console.log(`${where} ${c.stream}: ${chk.received} records, ${chk.duplicates} duplicates, ${tol} tolerated near a change${tol ? ` (${chk.toleratedNearChange.map((w) => `#${w.frame} ${w.got}≠${w.want}`).join(', ')})` : ''}`);
        if (chk.missing.length) problems.push(`${where} ${c.stream}: ${chk.missing.length} frames missing: ${ranges(chk.missing)}`);
        if (chk.unexpected.length) problems.push(`${where} ${c.stream}: frame indices beyond the video: ${ranges(chk.unexpected)}`);
        if (chk.wrong.length) problems.push(`${where} ${c.stream}: ${chk.wrong.length} wrong labels: ${chk.wrong.slice(0, 10).map((w) => `#${w.frame} ${w.got}≠${w.want}`).join(', ')}`);
        if (chk.orderViolations.length) problems.push(`${where} ${c.stream}: out of order: ${chk.orderViolations.slice(0, 5).map((o) => `#${o.frame} after #${o.prev}`).join(', ')}`);
        if (chk.duplicates) problems.push(`${where} ${c.stream}: ${chk.duplicates} duplicate label records`);
      };
      for (const c of cams) {
        report('kafka', c, checkLabels(labelsOf(kafkaLabels, c.stream, c.session), c.video));
        report('ws', c, checkLabels(labelsOf(wsLabels, c.stream, c.session), c.video));
        const others = labelsOf(kafkaLabels, c.stream).filter((r) => r.session !== c.session);
        if (others.length) problems.push(`kafka ${c.stream}: ${others.length} labels of unknown sessions`);
      }
      // Timing fields: ptsMs follows the frame rate from 0; captureTs = fw-epoch-ms + ptsMs.
      for (const c of cams) {
        const recs = labelsOf(kafkaLabels, c.stream, c.session);
        const badPts = recs.filter((r) => Math.abs(r.ptsMs - (r.frame * 1000) / c.video.fps) > 1.5);
        if (badPts.length) problems.push(`kafka ${c.stream}: ptsMs off the frame rate: ${badPts.slice(0, 5).map((r) => `#${r.frame} ${r.ptsMs} ms`).join(', ')}`);
        const epochs = new Set(recs.map((r) => r.captureTs - r.ptsMs));
        if (epochs.size !== 1 || Math.abs([...epochs][0]! - t0) > 30_000) problems.push(`kafka ${c.stream}: captureTs - ptsMs is not one session epoch near the ingest start: ${[...epochs].slice(0, 5).join(', ')}`);
      }
      // The subscribed client gets its stream, all of it, and nothing else.
      const one = cams.find((c) => c.stream === `${topo.name}-medium`)!;
      const oneLabels = wsOne!.labels();
      const foreign = [...oneLabels, ...wsOne!.events()].filter((m) => m.stream !== one.stream);
      if (foreign.length) problems.push(`ws?streams=${one.stream}: ${foreign.length} messages of other streams, e.g. ${JSON.stringify(foreign[0])}`);
      const oneChk = checkLabels(labelsOf(oneLabels, one.stream, one.session), one.video);
      if (oneChk.missing.length) problems.push(`ws?streams=${one.stream}: ${oneChk.missing.length} frames missing: ${ranges(oneChk.missing)}`);
      for (const r of kafkaLabels.slice(0, 50)) {
        if (r.model !== MODEL || !Array.isArray(r.labels) || r.labels.length !== 3 || typeof r.captureTs !== 'number' || typeof r.ptsMs !== 'number') {
          problems.push(`malformed label record: ${JSON.stringify(r)}`);
          break;
        }
      }
      // Let any late events arrive before judging that there are none.
      await waitUntil(() => false, 1000);
      const dropped = [...events!.json<{ type: string }>().filter((e) => e.type === 'dropped'), ...ws!.events('dropped')];
      if (dropped.length) problems.push(`unexpected dropped events: ${JSON.stringify(dropped.slice(0, 5))}`);
      assert.deepEqual(problems, [], `${complete ? '' : 'labels incomplete after 60 s; '}problems:\n${problems.join('\n')}`);

      const metrics = await scrapeMetrics(topo.httpBase);
      assert.ok(metricValue(metrics, 'framewire_frames_published_total', { model: MODEL }) >= totalFrames, 'framewire_frames_published_total below the frames labelled');
      assert.equal((await httpGet(`${topo.httpBase}/healthz`)).status, 200);

      const tStop = Date.now();
      const status = await proc!.stop();
      console.log(`SIGTERM → exit (${fmtStatus(status)}) in ${Date.now() - tStop} ms`);
      assert.deepEqual(status, { code: 0, signal: null }, `processor did not exit 0 on SIGTERM (${fmtStatus(status)})`);
    });
  });
});
