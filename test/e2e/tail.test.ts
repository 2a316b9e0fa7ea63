/**
 * End to end, on the real stack: `framewire tail` (docs/contracts.md, command line) against a
 * running processor while two streams are labelled. `--streams A --events` shows only A's events;
 * `--labels` only label lines, of both streams; neither shows what it filtered out, and Ctrl-C
 * (SIGINT) exits 0.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { hasAllFrames, type LabelRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';

/** A tail line: `<time> <stream> <rest>`; a label's rest starts with its frame number `#n`. */
function parse(stdout: string): { stream: string; label: boolean; line: string }[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [, stream = '', rest = ''] = line.split(' ', 3);
      return { stream, label: rest.startsWith('#'), line };
    });
}

describe('tail: stream and kind filters', { timeout: 120_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  const tails: Processor[] = [];

  before(async () => {
    ensureStack();
    topo = await newTopology();
    proc = Processor.run(topo.file, 'processor');
    await proc.waitReady(topo.httpBase);
    labels = await TopicCollector.start(topo.labels);
  });

  after(async () => {
    await labels?.stop();
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('--streams A --events shows only A\'s events; --labels only labels, of every stream; SIGINT exits 0', async () => {
    await withLogs(() => [proc, ...tails], async () => {
      const [a, b] = [`${topo.name}-a`, `${topo.name}-b`];
      const env = { NO_COLOR: '1' };
      const eventsOfA = new Processor(['tail', '--url', topo.wsUrl, '--streams', a, '--events'], 'tail --streams A --events', env);
      const labelsOnly = new Processor(['tail', '--url', topo.wsUrl, '--labels'], 'tail --labels', env);
      tails.push(eventsOfA, labelsOnly);
      assert.ok(await waitUntil(() => tails.every((t) => t.stderr.includes('connected to')), 15_000), 'a tail did not connect');

      // Two colours each: a `change` event besides `stream` started/ended, for both streams.
      const video = colourVideo(320, 240, 25, [{ colour: 'red', frames: 15 }, { colour: 'blue', frames: 15 }]);
      const [ra, rb] = await Promise.all([a, b].map((stream) => runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo.chunks, gop: 15 })));
      const labelled = () => hasAllFrames(labels!.json<LabelRecord>(), a, ra!.session, video.frames) && hasAllFrames(labels!.json<LabelRecord>(), b, rb!.session, video.frames);
      assert.ok(await waitUntil(labelled, 45_000), 'not every frame labelled on Kafka');
      // The WebSocket carries what Kafka has: wait for tail to print them, and for A's `ended` (fw-eos).
      const count = (t: Processor, stream: string, label: boolean) => parse(t.stdout).filter((l) => l.stream === stream && l.label === label).length;
      await waitUntil(() => count(labelsOnly, a, true) >= video.frames && count(labelsOnly, b, true) >= video.frames && /stream ended/.test(eventsOfA.stdout), 15_000);

      const ev = parse(eventsOfA.stdout);
      const lb = parse(labelsOnly.stdout);
      console.log(`tail --streams A --events: ${ev.length} lines, e.g. ${JSON.stringify(ev.slice(0, 3).map((l) => l.line))}; tail --labels: ${lb.length} lines (A ${count(labelsOnly, a, true)}, B ${count(labelsOnly, b, true)})`);
      assert.deepEqual(ev.filter((l) => l.stream !== a).map((l) => l.line), [], '--streams A printed another stream');
      assert.deepEqual(ev.filter((l) => l.label).map((l) => l.line), [], '--events printed labels');
      for (const want of [/stream started/, /change/, /stream ended/]) assert.ok(ev.some((l) => want.test(l.line)), `--events: no line matching ${want}`);
      assert.deepEqual(lb.filter((l) => !l.label).map((l) => l.line), [], '--labels printed something that is not a label');
      for (const s of [a, b]) assert.equal(new Set(lb.filter((l) => l.stream === s).map((l) => l.line.split(' ')[2])).size, video.frames, `--labels: not every frame of ${s}`);

      for (const t of tails) {
        t.child.kill('SIGINT');
        assert.deepEqual(await t.exited, { code: 0, signal: null }, `${t.label}: Ctrl-C exits 0`);
      }
    });
  });
});
