/**
 * End to end, on the real stack: the processor is SIGKILLed in the middle of a live (realtime
 * paced) stream and a successor with the same topology (same consumer group) takes over. Every
 * frame must still be labelled (at-least-once: duplicates allowed, counted), and the killed
 * processor's ffmpeg decoders must not outlive it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest, type IngestResult } from '../../src/ingest/ingest.js';
import { labelsOf, ranges, type LabelRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, childProcesses, fmtStatus, isAlive, stopAllProcessors, metricValue, pgrep, scrapeMetrics, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, type TestTopology, removeTopology } from '../helpers/topics.js';
import { sleep, waitQuiet, waitUntil } from '../helpers/wait.js';

/**
 * ffmpeg decoders of the processor: MPEG-TS read from stdin (input options may sit between
 * `-f mpegts` and `-i pipe:0`, so a regular expression, for pgrep -f too).
 */
const DECODER_PATTERN = 'ffmpeg .*-f h(264|evc) .*-i pipe:0';
const DECODER_RE = new RegExp(DECODER_PATTERN);

describe('crash: SIGKILL mid-stream, a successor resumes', { timeout: 150_000 }, () => {
  let topo: TestTopology;
  let first: Processor | undefined;
  let second: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  let ingest: Promise<IngestResult> | undefined;
  const abort = new AbortController();
  let killedDecoders: { pid: number; cmd: string }[] = [];
  /** Every decoder pid seen as a child of this file's processors (sampled), for the leak check. */
  const ours = new Set<number>();
  const sample = (): void => {
    for (const p of [first, second]) if (p?.running) for (const c of childProcesses(p.pid)) if (DECODER_RE.test(c.cmd)) ours.add(c.pid);
  };
  const sampler = setInterval(sample, 250);
  sampler.unref();

  before(async () => {
    ensureStack();
    topo = await newTopology();
  });

  after(async () => {
    abort.abort();
    await ingest?.catch(() => undefined);
    await Promise.all([labels?.stop(), events?.stop()]);
    await stopAllProcessors();
    clearInterval(sampler);
    await removeTopology(topo);
    // After teardown no ffmpeg decoder of this file's processors may remain: not those of the
    // killed one (they get stdin EOF; a few seconds' grace), nor those of its successor.
    await waitUntil(() => pgrep(DECODER_PATTERN).every((p) => !ours.has(p.pid)), 5000);
    const leftovers = pgrep(DECODER_PATTERN).filter((p) => ours.has(p.pid));
    console.log(
      `after teardown: pgrep -f "${DECODER_PATTERN}" finds ${leftovers.length} of the ${ours.size} decoders this file's processors ran ` +
        `(${killedDecoders.length} belonged to the killed one)`,
    );
    assert.deepEqual(leftovers, [], 'ffmpeg decoders of this file\'s processors are still running after teardown');
  });

  test('every frame is labelled across a SIGKILL and restart (duplicates allowed)', async () => {
    await withLogs(() => [first, second], async () => {
      first = Processor.run(topo.file, 'first processor');
      await first.waitReady(topo.httpBase);
      [labels, events] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events)]);

      const stream = `${topo.name}-live`;
      // 8 s at 25 fps, GOP 25; colour changes every 1.6 s.
      const video = colourVideo(320, 240, 25, [
        { colour: 'red', frames: 40 },
        { colour: 'blue', frames: 40 },
        { colour: 'green', frames: 40 },
        { colour: 'yellow', frames: 40 },
        { colour: 'magenta', frames: 40 },
      ]);
      const t0 = Date.now();
      ingest = runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo.chunks, realtime: true, gop: 25, signal: abort.signal });
      let ingestEndedAt = 0;
      void ingest.then(() => (ingestEndedAt = Date.now()), () => undefined);

      // ~3 s in, once the first processor is visibly labelling, crash it.
      assert.ok(await waitUntil(() => labels!.records.length > 0, 10_000), 'the first processor published no labels before the crash');
      await sleep(Math.max(0, 3000 - (Date.now() - t0)));
      const beforeKill = labels!.records.length;
      killedDecoders = childProcesses(first.pid).filter((c) => DECODER_RE.test(c.cmd));
      for (const d of killedDecoders) ours.add(d.pid);
      assert.ok(killedDecoders.length > 0, `the first processor has no ffmpeg decoder child at the crash: ${JSON.stringify(childProcesses(first.pid))}`);
      const killStatus = await first.kill();
      const killedAt = Date.now();
      console.log(`SIGKILL at ${((killedAt - t0) / 1000).toFixed(1)} s (${fmtStatus(killStatus)}), ${beforeKill} labels published, decoders then: ${killedDecoders.map((d) => d.pid).join(',')}`);

      const gone = await waitUntil(() => killedDecoders.every((d) => !isAlive(d.pid)), 5000, 50);
      const goneMs = Date.now() - killedAt;
      console.log(`decoders of the killed processor ${gone ? 'exited' : 'STILL RUNNING'} ${goneMs} ms after the kill`);

      second = Processor.run(topo.file, 'second processor');
      const readyMs = await second.waitReady(topo.httpBase, 45_000);
      console.log(`successor ready ${readyMs} ms after start`);

      const res = await ingest;
      console.log(`ingest ended at ${((ingestEndedAt - t0) / 1000).toFixed(1)} s: session ${res.session}, ${res.chunks} chunks`);

      const session = res.session;
      const all = (): boolean => {
        const seen = new Set(labelsOf(labels!.json<LabelRecord>(), stream, session).map((r) => r.frame));
        return seen.size >= video.frames;
      };
      const complete = await waitUntil(all, 45_000);
      // Then until the label count stops growing (late re-published duplicates).
      await waitQuiet(() => labels!.records.length, 2500, 20_000);

      const recs = labelsOf(labels!.json<LabelRecord>(), stream, session);
      const frames = new Set(recs.map((r) => r.frame));
      const missing: number[] = [];
      for (let i = 0; i < video.frames; i++) if (!frames.has(i)) missing.push(i);
      const beyond = [...frames].filter((f) => f < 0 || f >= video.frames);
      const duplicates = recs.length - frames.size;
      const dupFrames = recs.map((r) => r.frame).filter((f, i, a) => a.indexOf(f) !== i);
      const wrong = recs.filter((r) => r.labels[0]?.label !== video.expected[r.frame] && !video.changes.some((b) => r.frame >= b - 2 && r.frame < b + 2));
      const dropped = events!.json<{ type: string; fromFrame: number; toFrame: number; reason: string }>().filter((e) => e.type === 'dropped');
      const m = await scrapeMetrics(topo.httpBase);
      console.log(
        `CRASH: ${video.frames} frames, ${recs.length} label records, ${frames.size} distinct, DUPLICATES ${duplicates}${duplicates ? ` (frames ${ranges(dupFrames)})` : ''}; ` +
          `dropped events: ${dropped.length ? JSON.stringify(dropped) : 'none'}; successor: ${metricValue(m, 'framewire_frames_published_total')} published, ` +
          `${metricValue(m, 'framewire_frames_resume_skipped_total')} skipped on resume`,
      );
      assert.ok(complete, `not every frame labelled 45 s after ingest ended; missing ${missing.length}: ${ranges(missing)}`);
      assert.deepEqual(missing, [], `frames without a label: ${ranges(missing)}`);
      assert.deepEqual(beyond, [], `frame indices beyond the video: ${ranges(beyond)}`);
      assert.deepEqual(
        wrong.map((r) => `#${r.frame} ${r.labels[0]?.label}≠${video.expected[r.frame]}`),
        [],
        'frames labelled with the wrong colour (numbering off after the resume?)',
      );

      sample();
      const status = await second.stop();
      assert.deepEqual(status, { code: 0, signal: null }, `successor did not exit 0 on SIGTERM (${fmtStatus(status)})`);
      assert.ok(gone, `decoders of the killed processor still running ${goneMs} ms after the kill: ${killedDecoders.filter((d) => isAlive(d.pid)).map((d) => d.pid).join(',')}`);
    });
  });
});

/**
 * The graceful counterpart: SIGTERM (drain, exit 0) in the middle of a live stream, then a
 * successor with the same group. Nothing may be lost: every frame labelled, or reported dropped.
 * (Once a bug: shutdown closed decoders as if their sessions had ended, so no resume point was
 * committed and the successor dead-lettered the rest of the live session as out-of-sequence.)
 */
describe('graceful restart: SIGTERM mid-stream, a successor resumes', { timeout: 120_000 }, () => {
  let topo: TestTopology;
  let first: Processor | undefined;
  let second: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  let dlq: TopicCollector | undefined;
  let ingest: Promise<IngestResult> | undefined;
  const abort = new AbortController();

  before(async () => {
    ensureStack();
    topo = await newTopology();
  });

  after(async () => {
    abort.abort();
    await ingest?.catch(() => undefined);
    await Promise.all([labels?.stop(), events?.stop(), dlq?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('every frame is labelled or reported dropped across a SIGTERM and restart', async () => {
    await withLogs(() => [first, second], async () => {
      first = Processor.run(topo.file, 'first processor');
      await first.waitReady(topo.httpBase);
      [labels, events, dlq] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events), TopicCollector.start(topo.dlq)]);
      const stream = `${topo.name}-live`;
      const video = colourVideo(320, 240, 25, [
        { colour: 'cyan', frames: 50 },
        { colour: 'red', frames: 50 },
        { colour: 'white', frames: 50 },
      ]);
      const t0 = Date.now();
      ingest = runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo.chunks, realtime: true, gop: 25, signal: abort.signal });
      void ingest.catch(() => undefined);
      assert.ok(await waitUntil(() => labels!.records.length > 0, 10_000), 'no labels before the restart');
      await sleep(Math.max(0, 2500 - (Date.now() - t0)));
      const status = await first.stop();
      assert.deepEqual(status, { code: 0, signal: null }, `SIGTERM mid-stream: ${fmtStatus(status)}`);
      console.log(`SIGTERM at ${((Date.now() - t0) / 1000).toFixed(1)} s: exit 0, ${labels!.records.length} labels so far`);
      second = Processor.run(topo.file, 'second processor');
      await second.waitReady(topo.httpBase, 45_000);
      const res = await ingest;

      const accounted = (): Set<number> => {
        const s = new Set(labelsOf(labels!.json<LabelRecord>(), stream, res.session).map((r) => r.frame));
        for (const e of events!.json<{ type: string; stream: string; session: string; fromFrame: number; toFrame: number }>()) {
          if (e.type === 'dropped' && e.stream === stream && e.session === res.session) for (let i = e.fromFrame; i <= e.toFrame; i++) s.add(i);
        }
        return s;
      };
      // Complete, or (a dead-lettered chunk already decides the outcome) no longer changing.
      const deadOf = (): number => dlq!.records.filter((r) => r.key === stream).length;
      await waitUntil(() => accounted().size >= video.frames || deadOf() > 0, 30_000);
      await waitQuiet(() => labels!.records.length + events!.records.length + deadOf(), 2000, 10_000);
      const seen = accounted();
      const missing: number[] = [];
      for (let i = 0; i < video.frames; i++) if (!seen.has(i)) missing.push(i);
      const dead = dlq!.records.filter((r) => r.key === stream);
      console.log(`graceful restart: ${video.frames - missing.length}/${video.frames} frames accounted for; ${dead.length} chunks dead-lettered (${[...new Set(dead.map((d) => d.headers['fw-dlq-reason']))].join(', ') || 'none'})`);
      assert.deepEqual(dead.map((d) => `seq ${d.headers['fw-seq']}: ${d.headers['fw-dlq-reason']} (${d.headers['fw-dlq-detail']})`).slice(0, 3), [], 'chunks of the live session dead-lettered after the restart');
      assert.deepEqual(missing, [], `frames neither labelled nor reported dropped: ${ranges(missing)}`);
      const status2 = await second.stop();
      assert.deepEqual(status2, { code: 0, signal: null });
    });
  });
});
