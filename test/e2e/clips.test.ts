/**
 * End to end, on the real stack, with a clip model (`colour_clip`: input [8, 64, 64, 3], the mean
 * colour of 8 consecutive frames): sliding windows of 8 frames with stride 4 become one input
 * each; every frame gets exactly one label record naming the window it was classified in; a
 * window wholly inside one colour gets that colour; the frames after the last full stride are
 * labelled by a last window when the session ends.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { assertCoveredOnce, type DroppedRecord, type LabelRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitQuiet } from '../helpers/wait.js';

const WINDOW = 8;
const STRIDE = 4;
const STREAMS = 2;

type ClipRecord = LabelRecord & { clip?: { fromFrame: number; toFrame: number } };

describe('clip model: sliding windows over the time axis', { timeout: 180_000 }, () => {
  let topo: TestTopology | undefined;
  let proc: Processor | undefined;
  before(() => ensureStack());
  after(async () => {
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('windows of 8 with stride 4: every frame labelled once, by the window it completed', async () => {
    topo = await newTopology({ mode: 'replay', model: 'colour_clip', modelFields: `clip: { stride: ${STRIDE} }`, idleTimeoutMs: 1000 });
    // 70 frames: not a multiple of the stride, so the session's end closes a last window.
    const video = colourVideo(160, 120, 25, [
      { colour: 'red', frames: 24 },
      { colour: 'green', frames: 24 },
      { colour: 'blue', frames: 22 },
    ]);
    let labels: TopicCollector | undefined;
    let events: TopicCollector | undefined;
    try {
      await withLogs(() => [proc], async () => {
        proc = Processor.run(topo!.file, 'clip processor');
        await proc.waitReady(topo!.httpBase);
        [labels, events] = await Promise.all([TopicCollector.start(topo!.labels), TopicCollector.start(topo!.events)]);
        const results = await Promise.all(
          Array.from({ length: STREAMS }, (_, i) => runIngest({ stream: `${topo!.name}-c${i}`, input: video.input, brokers: BROKERS, topic: topo!.chunks, gop: 25 })),
        );
        // The last window closes when the idle decoder is closed (idleTimeoutMs 1 s).
        await waitQuiet(() => labels!.records.length, 2500, 60_000);
        const all = labels!.json<ClipRecord>();
        const dropped = events!.json<DroppedRecord>().filter((e) => e.type === 'dropped');
        assert.deepEqual(dropped, [], 'replay drops nothing');

        for (const [i, r] of results.entries()) {
          const stream = `${topo!.name}-c${i}`;
          const mine = all.filter((x) => x.stream === stream && x.session === r.session);
          assertCoveredOnce(mine, dropped, stream, r.session, video.frames);

          const windows = new Map<number, ClipRecord[]>();
          for (const x of mine) {
            assert.equal(x.model, 'colour_clip');
            assert.ok(x.clip, `frame ${x.frame} has no clip window`);
            const { fromFrame, toFrame } = x.clip;
            assert.equal(toFrame - fromFrame, WINDOW - 1, `frame ${x.frame}: window ${fromFrame}..${toFrame} is not ${WINDOW} frames`);
            assert.ok(fromFrame <= x.frame && x.frame <= toFrame, `frame ${x.frame} outside its window ${fromFrame}..${toFrame}`);
            windows.set(toFrame, [...(windows.get(toFrame) ?? []), x]);
          }
          // Full windows end every STRIDE frames from WINDOW-1; the last one ends at the last frame.
          const ends = [...windows.keys()].sort((a, b) => a - b);
          const expectedEnds: number[] = [];
          for (let e = WINDOW - 1; e < video.frames; e += STRIDE) expectedEnds.push(e);
          if (expectedEnds.at(-1) !== video.frames - 1) expectedEnds.push(video.frames - 1);
          assert.deepEqual(ends, expectedEnds);
          // The first window labels its 8 frames, later ones their new frames only.
          assert.deepEqual(windows.get(WINDOW - 1)!.map((x) => x.frame).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7]);

          // A window inside one colour is classified as that colour (all its frames carry it).
          let checked = 0;
          for (const [end, recs] of windows) {
            const colours = new Set(video.expected.slice(end - WINDOW + 1, end + 1));
            if (colours.size !== 1) continue;
            const want = [...colours][0]!;
            for (const x of recs) assert.equal(x.labels[0]!.label, want, `${stream} frame ${x.frame} (window ending ${end}): ${x.labels[0]!.label}, want ${want}`);
            checked++;
          }
          assert.ok(checked >= 12, `only ${checked} single-colour windows checked`);
          console.log(`${stream}: ${mine.length} frames labelled by ${windows.size} windows (${checked} single-colour windows checked)`);
        }
      });
    } finally {
      await Promise.all([labels?.stop(), events?.stop()]);
    }
  });
});
