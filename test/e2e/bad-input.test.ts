/**
 * End to end, on the real stack: bad records in the chunks topic go to the dead-letter topic with
 * the right reason, unchanged, and are counted; the processor stays up and good streams (and the
 * next valid session of a stream that sent garbage) are labelled correctly meanwhile.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { checkLabels, hasAllFrames, labelsOf, ranges, type LabelRecord } from '../helpers/accounting.js';
import { TopicCollector, type TopicRecord } from '../helpers/collectors.js';
import { colourVideo, type ColourVideo } from '../helpers/colours.js';
import { Processor, httpGet, stopAllProcessors, metricValue, scrapeMetrics, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack, randomId } from '../helpers/stack.js';
import { newTopology, produceRaw, type TestTopology, removeTopology } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';

interface Injected {
  name: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
  reason: string | undefined;
  partition?: number;
  offset?: string;
}

const DLQ_REASON = 'framewire_chunks_dead_lettered_total';

describe('bad input: dead letters, and the pipeline carries on', { timeout: 150_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  let dlq: TopicCollector | undefined;

  before(async () => {
    ensureStack();
    topo = await newTopology();
    proc = Processor.run(topo.file, 'processor');
    await proc.waitReady(topo.httpBase);
    [labels, events, dlq] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events), TopicCollector.start(topo.dlq)]);
  });

  after(async () => {
    await Promise.all([labels?.stop(), events?.stop(), dlq?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('missing header, out of sequence, unknown format and random bytes', async () => {
    await withLogs(() => [proc], async () => {
      const good: { stream: string; video: ColourVideo; session: string }[] = [
        { stream: `${topo.name}-good-1`, session: '', video: colourVideo(320, 240, 25, [{ colour: 'red', frames: 20 }, { colour: 'green', frames: 20 }, { colour: 'blue', frames: 10 }]) },
        { stream: `${topo.name}-good-2`, session: '', video: colourVideo(640, 360, 30, [{ colour: 'yellow', frames: 30 }, { colour: 'cyan', frames: 15 }, { colour: 'white', frames: 15 }]) },
      ];
      const recovery = colourVideo(320, 240, 25, [{ colour: 'magenta', frames: 25 }, { colour: 'black', frames: 25 }]);
      const epoch = String(Date.now());
      const hdr = (stream: string, over: Record<string, string | undefined>): Record<string, string> => {
        const h: Record<string, string | undefined> = { 'fw-stream': stream, 'fw-session': randomId(), 'fw-seq': '0', 'fw-format': 'mpegts', 'fw-epoch-ms': epoch, ...over };
        return Object.fromEntries(Object.entries(h).filter(([, v]) => v !== undefined)) as Record<string, string>;
      };
      const randomChunk: Injected = { name: '(a) 64 KiB of random bytes as seq 0', key: 'bad-random', value: randomBytes(64 * 1024), headers: hdr('bad-random', {}), reason: undefined };
      const injected: Injected[] = [
        { name: '(b) no fw-session', key: 'bad-missing', value: randomBytes(4096), headers: hdr('bad-missing', { 'fw-session': undefined }), reason: 'missing-header' },
        { name: '(c) fw-seq 7 of an unknown session', key: 'bad-seq', value: randomBytes(4096), headers: hdr('bad-seq', {}), reason: 'out-of-sequence' },
        { name: '(d) fw-format avi', key: 'bad-format', value: randomBytes(4096), headers: hdr('bad-format', { 'fw-format': 'avi' }), reason: 'unknown-format' },
      ];
      injected[1]!.headers['fw-seq'] = '7';

      // The good streams run while the bad records arrive.
      const goodIngest = Promise.all(good.map((g) => runIngest({ stream: g.stream, input: g.video.input, brokers: BROKERS, topic: topo.chunks, gop: 25 })));
      const placed = await produceRaw(topo.chunks, [randomChunk, ...injected]);
      for (const [i, r] of [randomChunk, ...injected].entries()) Object.assign(r, placed[i]);
      // (a) continued: the camera comes back with a valid session of the same stream.
      const recoveryRes = await runIngest({ stream: 'bad-random', input: recovery.input, brokers: BROKERS, topic: topo.chunks, gop: 25 });
      const goodRes = await goodIngest;
      for (const [i, r] of goodRes.entries()) good[i]!.session = r.session;

      const allLabelled = (): boolean => {
        const recs = labels!.json<LabelRecord>();
        return good.every((g) => hasAllFrames(recs, g.stream, g.session, g.video.frames)) && hasAllFrames(recs, 'bad-random', recoveryRes.session, recovery.frames);
      };
      const dlqOf = (key: string): TopicRecord[] => dlq!.records.filter((r) => r.key === key);
      const labelled = await waitUntil(allLabelled, 45_000);
      const dead = await waitUntil(() => injected.every((x) => dlqOf(x.key).length > 0), 10_000);

      const problems: string[] = [];
      // (b), (c), (d): in the DLQ with their reason, unchanged.
      for (const x of injected) {
        const recs = dlqOf(x.key);
        if (recs.length !== 1) {
          problems.push(`${x.name}: ${recs.length} DLQ records (expected 1)`);
          if (recs.length === 0) continue;
        }
        const d = recs[0]!;
        const ctx = `${x.name}: DLQ record ${JSON.stringify(d.headers)}`;
        if (d.headers['fw-dlq-reason'] !== x.reason) problems.push(`${ctx}: fw-dlq-reason '${d.headers['fw-dlq-reason']}', expected '${x.reason}'`);
        if (!d.value.equals(x.value)) problems.push(`${ctx}: value changed (${d.value.length} bytes, sent ${x.value.length})`);
        for (const [k, v] of Object.entries(x.headers)) if (d.headers[k] !== v) problems.push(`${ctx}: header ${k} is '${d.headers[k]}', sent '${v}'`);
        if (!d.headers['fw-dlq-detail']) problems.push(`${ctx}: no fw-dlq-detail`);
        if (d.headers['fw-dlq-topic'] !== topo.chunks) problems.push(`${ctx}: fw-dlq-topic '${d.headers['fw-dlq-topic']}', expected '${topo.chunks}'`);
        if (d.headers['fw-dlq-partition'] !== String(x.partition)) problems.push(`${ctx}: fw-dlq-partition '${d.headers['fw-dlq-partition']}', expected '${x.partition}'`);
        if (d.headers['fw-dlq-offset'] !== x.offset) problems.push(`${ctx}: fw-dlq-offset '${d.headers['fw-dlq-offset']}', expected '${x.offset}'`);
        console.log(`${x.name} → DLQ reason=${d.headers['fw-dlq-reason']} detail="${d.headers['fw-dlq-detail']}"`);
      }
      if (!dead) problems.push('not every bad record reached the DLQ within 10 s');

      // Counted in /metrics.
      const metrics = await scrapeMetrics(topo.httpBase);
      for (const x of injected) {
        const n = metricValue(metrics, DLQ_REASON, { reason: x.reason! });
        if (n < 1) problems.push(`${DLQ_REASON}{reason="${x.reason}"} is ${n}`);
      }

      // Still up and ready.
      const health = await httpGet(`${topo.httpBase}/healthz`);
      if (health.status !== 200) problems.push(`/healthz answered ${health.status}`);
      const ready = await httpGet(`${topo.httpBase}/readyz`);
      if (ready.status !== 200) problems.push(`/readyz answered ${ready.status}: ${ready.body}`);
      if (!proc!.running) problems.push('the processor exited');

      // Good streams: every frame, right colour, in order; and bad-random's next session recovered.
      const recs = labels!.json<LabelRecord>();
      const judge = (what: string, stream: string, session: string, video: ColourVideo): void => {
        const chk = checkLabels(labelsOf(recs, stream, session), video);
        if (chk.missing.length) problems.push(`${what}: ${chk.missing.length} frames missing: ${ranges(chk.missing)}`);
        if (chk.wrong.length) problems.push(`${what}: wrong labels: ${chk.wrong.slice(0, 10).map((w) => `#${w.frame} ${w.got}≠${w.want}`).join(', ')}`);
        if (chk.unexpected.length) problems.push(`${what}: frame indices beyond the video: ${ranges(chk.unexpected)}`);
        if (chk.orderViolations.length) problems.push(`${what}: out of order: ${chk.orderViolations.slice(0, 5).map((o) => `#${o.frame} after #${o.prev}`).join(', ')}`);
      };
      for (const g of good) judge(g.stream, g.stream, g.session, g.video);
      judge('bad-random recovery session', 'bad-random', recoveryRes.session, recovery);
      if (!labelled) problems.push('labels incomplete 45 s after ingest');
      for (const x of injected) {
        const leaked = labelsOf(recs, x.key);
        if (leaked.length) problems.push(`${x.name}: ${leaked.length} label records for a dead-lettered stream`);
      }
      const dropped = events!.json<{ type: string; stream: string; session: string }>().filter((e) => e.type === 'dropped');
      const goodDropped = dropped.filter((e) => good.some((g) => g.stream === e.stream));
      if (goodDropped.length) problems.push(`dropped events for good streams: ${JSON.stringify(goodDropped)}`);

      // (a): random bytes hold no TS packet (no 0x47 sync byte every 188 bytes), so the demuxer
      // finds no frame in them and the decoder is never fed: nothing is rejected (docs/contracts.md
      // dead-letters "bytes the decoder rejects"), and with no frame there is no label and no
      // `dropped` record to account for one. The session is a session all the same: `started` at
      // its chunk, `ended` (`replaced`) when the camera's next session arrives.
      const randomSession = randomChunk.headers['fw-session']!;
      const randomDlq = dlqOf('bad-random');
      const randomLabels = labelsOf(recs, 'bad-random', randomSession);
      const randomDropped = dropped.filter((e) => e.stream === 'bad-random' && e.session === randomSession);
      const randomStates = events!
        .json<{ type: string; stream: string; session: string; state?: string; how?: string }>()
        .filter((e) => e.type === 'stream' && e.stream === 'bad-random' && e.session === randomSession)
        .map((e) => (e.how ? `${e.state}:${e.how}` : e.state));
      console.log(
        `${randomChunk.name}: ${randomDlq.length ? randomDlq.map((d) => `DLQ reason=${d.headers['fw-dlq-reason']} detail="${d.headers['fw-dlq-detail']}"`).join('; ') : 'not dead-lettered'}; ` +
          `${randomLabels.length} labels, ${randomDropped.length} dropped events (${JSON.stringify(randomDropped)}); stream events ${JSON.stringify(randomStates)}; ` +
          `decoder restarts ${metricValue(metrics, 'framewire_decoder_restarts_total')}; decoder-rejected ${metricValue(metrics, DLQ_REASON, { reason: 'decoder-rejected' })}; ` +
          `recovery session ${recoveryRes.session}: ${new Set(labelsOf(recs, 'bad-random', recoveryRes.session).map((r) => r.frame)).size}/${recovery.frames} frames labelled`,
      );
      if (randomDlq.length) problems.push(`(a): dead-lettered, but no frame of it reached the decoder: ${randomDlq.map((d) => JSON.stringify(d.headers)).join('; ')}`);
      if (randomLabels.length) problems.push(`(a): ${randomLabels.length} labels for a session that holds no frame`);
      if (randomDropped.length) problems.push(`(a): dropped events for a session that holds no frame: ${JSON.stringify(randomDropped)}`);
      if (randomStates.join(' ') !== 'started ended:replaced') problems.push(`(a): stream events ${JSON.stringify(randomStates)}, expected started, then ended (replaced)`);
      if (metricValue(metrics, 'framewire_decoder_restarts_total') !== 0) problems.push(`(a): ${metricValue(metrics, 'framewire_decoder_restarts_total')} decoder restarts`);

      assert.deepEqual(problems, [], `problems:\n${problems.join('\n')}`);
    });
  });
});
