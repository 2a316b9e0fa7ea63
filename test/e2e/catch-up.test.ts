/**
 * Shedding that catches up instead of blacking out (issue #20, build item 3), on the real stack.
 * One live 640x360 25 fps camera with a 10 s GOP (`-g 250`): 4.8 s into the stream its decoder
 * is frozen (SIGSTOP) for 400 ms, so the stream falls ~400 ms behind its 250 ms budget once.
 *  - With catch-up (the default `shedCatchUpMs`), the decoder, whose CPU cost per frame has been
 *    measured by then, decodes the backlog without classifying it: the stream loses about a
 *    second of frames as `deadline`, none as `overload`, and is labelled within budget again.
 *  - With `shedCatchUpMs: 0` (the previous policy) the same hiccup skips ahead to the next
 *    keyframe: the rest of the GOP is `overload`. This cell shows the test can fail.
 * Both: every frame covered exactly once, every label's colour right.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { assertCoveredOnce, checkLabels, ranges, type DroppedRecord, type LabelRecord, recordsAndDrops } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, childProcesses, cpuTicks, isAlive, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { sleep, waitQuiet, waitUntil } from '../helpers/wait.js';

const FPS = 25;
const BUDGET_MS = 250;
const FREEZE_MS = 400;
/** Labels seen before the freeze: well past the decoder's first cost measurement (~3 s in). */
const FREEZE_AFTER_LABELS = 110;
const DECODER_RE = /ffmpeg .*-f h(264|evc) .*-i pipe:0/;


interface Outcome {
  labelled: number;
  byReason: Record<string, number>;
  /** Frames from the freeze on that were not labelled. */
  lostAfterFreeze: number;
  frozenAt: number;
  catchUps: number;
  sheds: number;
}

async function runCell(catchUpMs: number | undefined, tag: string): Promise<Outcome> {
  let topo: TestTopology | undefined;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  let frozen: number | undefined;
  try {
    topo = await newTopology({ mode: 'live', budgetMs: BUDGET_MS, idleTimeoutMs: 2000, decodeFields: catchUpMs === undefined ? undefined : `shedCatchUpMs: ${catchUpMs}` });
    return await withLogs(() => [proc], async () => {
      proc = Processor.run(topo!.file, `processor (${tag})`);
      await proc.waitReady(topo!.httpBase);
      [labels, events] = await Promise.all([TopicCollector.start(topo!.labels), TopicCollector.start(topo!.events)]);
      // A colour change at 100 (x264 may put a keyframe at the scene cut), then 200 frames with no keyframe.
      const video = colourVideo(640, 360, FPS, [
        { colour: 'red', frames: 100 },
        { colour: 'green', frames: 200 },
      ]);
      const stream = `${topo!.name}-cam`;
      const camera = runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo!.chunks, realtime: true, gop: 250 });
      // Without catch-up, a stream that starts a little behind (its first chunk is dated from
      // 100 ms of frames) may already lose its first GOP, so no labels come: that cell is frozen
      // at the same point of the stream instead, 4.8 s in.
      const ready = await waitUntil(() => labels!.records.length >= FREEZE_AFTER_LABELS, catchUpMs === 0 ? 4800 : 20_000, 20);
      if (!ready) assert.equal(catchUpMs, 0, `fewer than ${FREEZE_AFTER_LABELS} labels`);
      const decoders = childProcesses(proc!.pid).filter((c) => DECODER_RE.test(c.cmd));
      // The stream's decoder is the one that has used CPU; the others are idle spares.
      const busiest = decoders.map((c) => ({ pid: c.pid, ticks: cpuTicks(c.pid) })).sort((a, b) => b.ticks - a.ticks)[0];
      assert.ok(busiest, 'no decoder found');
      const frozenAt = Math.max(0, ...labels!.json<LabelRecord>().map((r) => r.frame));
      frozen = busiest.pid;
      process.kill(frozen, 'SIGSTOP');
      await sleep(FREEZE_MS);
      process.kill(frozen, 'SIGCONT');
      frozen = undefined;
      const { session } = await camera;
      const covered = () => recordsAndDrops(labels!, events!);
      await waitQuiet(covered, 2500, 30_000);
      const metrics = await scrapeMetrics(topo!.httpBase);

      const mine = labels!.json<LabelRecord>().filter((r) => r.stream === stream && r.session === session);
      const dropped = events!.json<DroppedRecord>().filter((e) => e.type === 'dropped' && e.stream === stream && e.session === session);
      assertCoveredOnce(mine, dropped, stream, session, video.frames);
      const check = checkLabels(mine, video, 0);
      assert.deepEqual(check.wrong, [], 'labels name the wrong colour');
      assert.deepEqual(check.toleratedNearChange, [], 'labels name the wrong colour at the change');

      const byReason: Record<string, number> = {};
      for (const e of dropped) byReason[e.reason] = (byReason[e.reason] ?? 0) + e.count;
      const labelledAfter = new Set(mine.filter((r) => r.frame >= frozenAt).map((r) => r.frame));
      const lostAfterFreeze = video.frames - frozenAt - labelledAfter.size;
      const out: Outcome = {
        labelled: mine.length,
        byReason,
        lostAfterFreeze,
        frozenAt,
        catchUps: metricValue(metrics, 'framewire_catch_ups_total'),
        sheds: metricValue(metrics, 'framewire_load_sheds_total'),
      };
      const unlabelled = [];
      for (let f = frozenAt; f < video.frames; f++) if (!labelledAfter.has(f)) unlabelled.push(f);
      console.log(
        `${tag}: froze the decoder ${FREEZE_MS} ms at frame ~${frozenAt}; ${mine.length}/${video.frames} labelled, dropped ${JSON.stringify(byReason)}; ` +
          `${lostAfterFreeze} frames lost from the freeze on (${ranges(unlabelled)}), ${out.catchUps} catch-up(s), ${out.sheds} skip(s) ahead`,
      );
      return out;
    });
  } finally {
    if (frozen !== undefined && isAlive(frozen)) process.kill(frozen, 'SIGCONT');
    await Promise.allSettled([labels?.stop(), events?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
  }
}

describe('a stream that falls behind once catches up instead of losing its GOP', { timeout: 180_000 }, () => {
  before(() => ensureStack());
  after(() => stopAllProcessors());

  test('10 s GOP, decoder frozen 400 ms: about a second lost with catch-up, the rest of the GOP without', async () => {
    const withCatchUp = await runCell(undefined, 'catch-up (default)');
    const without = await runCell(0, 'shedCatchUpMs: 0');

    assert.ok(withCatchUp.catchUps >= 1, 'the stream never caught up by decoding');
    assert.equal(withCatchUp.byReason.overload ?? 0, 0, 'frames skipped undecoded although the decoder could catch up');
    assert.equal(withCatchUp.sheds, 0);
    // About a second at 25 fps: what the freeze held, plus the frames decoded to catch up.
    assert.ok(withCatchUp.lostAfterFreeze <= 1.5 * FPS, `${withCatchUp.lostAfterFreeze} frames lost after a ${FREEZE_MS} ms freeze`);

    // The previous policy: skipped ahead to a keyframe that never comes in this GOP (at the
    // freeze, or already at the start).
    assert.ok(without.sheds >= 1, 'without catch-up the stream did not skip ahead (the freeze did not put it behind)');
    assert.ok(without.lostAfterFreeze >= 4 * FPS, `without catch-up only ${without.lostAfterFreeze} frames lost: the cell does not show a blackout`);
  });
});
