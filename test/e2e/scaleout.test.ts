/**
 * End to end, on the real stack: three processors in one consumer group share six paced live
 * cameras on six partitions. At 5 s one is SIGKILLed with its decoders (a crash), at 10 s
 * another gets SIGTERM (drain, commit, leave), at 12 s a new one joins. Every frame of every
 * stream must be labelled or reported dropped, labels must be right, and every stream must be
 * labelled again within 8 s of each event that moved it (for the join: of the joiner getting its
 * partitions; they flow on their old owner while it boots, 1.5-4 s on the shared machine).
 * Duplicates and gaps are printed per event.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TopicCollector } from '../helpers/collectors.js';
import { deleteGroups, deleteTopics, kafka, removeDir } from '../helpers/topics.js';
import { ensureStack } from '../helpers/stack.js';
import { sleep, waitQuiet, waitUntil } from '../helpers/wait.js';
import { ranges, type DroppedRecord, type LabelRecord } from '../helpers/accounting.js';
import { Member, analyse, createGroupTopics, groupTopology, heldAt, makeCameras, runCameras, stopMembers, type GroupEvent, type GroupSetup } from '../helpers/scaleout.js';

const PARTITIONS = 6;
const FPS = 10;
const SECONDS = 24;
/** This worktree's HTTP ports (COORDINATION: 18400-18499); the benchmark uses 18410 on. */
const PORTS = [18400, 18401, 18402, 18403];

describe('scale-out: a consumer group through a crash, a drain and a join', { timeout: 180_000 }, () => {
  let g: GroupSetup | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  let dlq: TopicCollector | undefined;
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  const all: Member[] = [];

  before(() => ensureStack());
  after(async () => {
    await Promise.all([labels?.stop(), events?.stop(), dlq?.stop()]);
    await producer.disconnect().catch(() => undefined);
    await stopMembers();
    if (g) {
      await deleteTopics(g.topics);
      await deleteGroups([g.group]);
      removeDir(g.dir);
    }
  });

  test('every frame accounted for, labels right, every stream labelled again within 8 s of each event', async () => {
    // The default budget: a larger one makes a moved stream slower to come back on a busy machine
    // (frames one to two budgets late are decoded, not shed, and a cold decoder falls behind on them).
    g = groupTopology({ partitions: PARTITIONS, budgetMs: 250 });
    await createGroupTopics(g);
    await producer.connect();
    const cams = makeCameras(g.name, 6, PARTITIONS, { seconds: SECONDS, fps: FPS, width: 160, height: 120, seed: 13 });
    try {
      for (let i = 0; i < 3; i++) all.push(new Member(`member ${i}`, PORTS[i]!, g.file(PORTS[i]!)));
      await Promise.all(all.map((m) => m.waitReady()));
      // Until the group has settled: every partition held by exactly one member.
      const settled = await waitUntil(() => all.map((m) => m.assignments().at(-1)?.partitions.length ?? 0).reduce((a, b) => a + b, 0) === PARTITIONS && all.every((m) => (m.assignments().at(-1)?.partitions.length ?? 0) === 2), 20_000);
      assert.ok(settled, `the group did not settle on 2 partitions each: ${all.map((m) => JSON.stringify(m.assignments().at(-1))).join(' ')}`);
      [labels, events, dlq] = await Promise.all([TopicCollector.start(g.labels), TopicCollector.start(g.events), TopicCollector.start(g.dlq)]);

      const t0 = Date.now() + 500;
      const sent = runCameras(producer, g.chunks, cams, t0);
      const evs: GroupEvent[] = [];
      const at = async (s: number): Promise<number> => {
        await sleep(t0 + s * 1000 - Date.now());
        return Date.now();
      };
      const [killed, drained] = [all[0]!, all[1]!];
      let now = await at(5);
      evs.push({ kind: 'kill', member: killed, at: now });
      await killed.kill();
      now = await at(10);
      evs.push({ kind: 'term', member: drained, at: now });
      const termDone = drained.term();
      now = await at(12);
      const joiner = new Member('member 3', PORTS[3]!, g.file(PORTS[3]!));
      all.push(joiner);
      evs.push({ kind: 'join', member: joiner, at: now });
      const termStatus = await termDone;
      await sent;
      // Every stream ended with fw-eos: wait until every frame is covered, then until quiet.
      const covered = (): number => labels!.records.length + events!.records.length;
      await waitUntil(() => analyse(cams, labels!.json<LabelRecord>(), events!.json<DroppedRecord>(), evs, t0, all).streams.every((s) => s.missing.length === 0), 20_000, 250);
      await waitQuiet(covered, 1500, 10_000);

      const res = analyse(cams, labels.json<LabelRecord>(), events.json<DroppedRecord>(), evs, t0, all);
      for (const s of res.streams) console.log(`${s.stream}: ${s.labelled}/${s.frames} labelled, dropped ${JSON.stringify(s.dropped)}, duplicates ${s.duplicates}, missing ${s.missing.length}, wrong ${s.wrong.length}`);
      for (const e of res.events) {
        const s2 = (o: Record<string, number>): string => Object.values(o).map((x) => (x / 1000).toFixed(2)).join('/');
        console.log(
          `${e.kind} at ${e.atS.toFixed(1)} s: moved ${e.moved.length} streams${e.movedAfterMs ? ` (${(e.movedAfterMs / 1000).toFixed(2)} s later, when the joiner had booted)` : ''}, labelled again after ${s2(e.gapMs)} s (pause ${s2(e.pauseMs)} s), duplicates ${e.duplicates}; ` +
            `${e.unmoved.length} unmoved streams' longest pause ${(e.unmovedStallMs / 1000).toFixed(2)} s`,
        );
      }
      for (const m of all) console.log(`${m.label}: ${m.assignments().map((a) => `${((a.time - t0) / 1000).toFixed(1)}s [${a.partitions}] (+${a.added} -${a.revoked}, ${a.rebalanceMs} ms)`).join('; ')}`);
      if (process.env.FW_SCALE_LOGS) writeFileSync(path.join(process.env.FW_SCALE_LOGS, 'outputs.json'), JSON.stringify({ t0, labels: labels.json(), events: events.json() }));
      if (process.env.FW_SCALE_LOGS) for (const m of all) writeFileSync(path.join(process.env.FW_SCALE_LOGS, `${m.label.replace(' ', '-')}.log`), m.logs().map((l) => JSON.stringify({ ...l, t: ((l.time as number) - t0) / 1000 })).join('\n'));
      const joinerMetrics = await joiner.metrics();
      console.log(`joiner: ${/framewire_frames_resume_skipped_total (\d+)/.exec(joinerMetrics)?.[1]} frames skipped on resume; SIGTERMed member exited ${JSON.stringify(termStatus)}`);

      assert.deepEqual(termStatus, { code: 0, signal: null }, 'the SIGTERMed member did not drain and exit 0');
      // A chunk fetched again after a rebalance, or a moved session taken for an unknown one, would land here.
      assert.deepEqual(dlq.records.map((r) => `${r.key} seq ${r.headers['fw-seq']}: ${r.headers['fw-dlq-reason']} (${r.headers['fw-dlq-detail']})`).slice(0, 5), [], 'chunks dead-lettered');
      for (const s of res.streams) {
        assert.deepEqual(s.missing, [], `${s.stream}: frames neither labelled nor reported dropped: ${ranges(s.missing)}`);
        assert.deepEqual(s.wrong.slice(0, 5), [], `${s.stream}: wrong labels`);
        // A moved stream loses about its pause (the kill: ~6.5 s of sessionTimeoutMs and rebalance)
        // and a catch-up; measured 62-95 % labelled per stream (148-228 of 240) at load 4.4.
        // 50 % fails a stream that stalls far beyond its pauses; 40 % let one lose 14 s of 24.
        assert.ok(s.labelled >= s.frames * 0.5, `${s.stream}: only ${s.labelled}/${s.frames} frames labelled`);
      }
      assert.ok(heldAt(killed, evs[0]!.at).length > 0 && heldAt(drained, evs[1]!.at).length > 0, 'the killed and the drained member held partitions');
      for (const e of res.events) {
        assert.ok(e.moved.length > 0, `${e.kind}: no stream moved`);
        // From the moment the stream changed hands: the kill, the SIGTERM, or the joiner's first
        // assignment (until it has booted and joined, its streams flow on their old owner).
        for (const [stream, gap] of Object.entries(e.gapMs)) assert.ok(gap - e.movedAfterMs <= 8000, `${e.kind} at ${e.atS} s: ${stream} labelled again only ${gap - e.movedAfterMs} ms after it moved`);
      }
    } catch (err) {
      for (const m of all) console.error(m.tail(20));
      throw err;
    }
  });
});
