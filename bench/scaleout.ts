/**
 * Scale-out benchmark: the same paced live cameras on 1, 2 and 3 processors of one consumer
 * group (labelled frames/s and p99 capture → publish), then failover runs with 3 processors: one
 * SIGKILLed with its decoders, later another SIGTERMed (drained), and for the streams that moved,
 * the time until they are labelled again; duplicates, frames skipped on resume, and the longest
 * pause of the streams that did not move (the rebalance stall). Prints tables.
 *
 *   node dist/bench/scaleout.js [--runs 3] [--cameras 6] [--fps 10] [--size 160x120] [--seconds 12]
 *     [--budget 500] [--failover-only] [--source-fields 'sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000']
 */
import { TopicCollector } from '../test/helpers/collectors.js';
import { deleteGroups, deleteTopics, kafka, removeDir } from '../test/helpers/topics.js';
import { sleep, waitQuiet } from '../test/helpers/wait.js';
import type { DroppedRecord, LabelRecord } from '../test/helpers/accounting.js';
import { Member, analyse, createGroupTopics, groupTopology, makeCameras, runCameras, stopMembers, type Camera, type GroupEvent } from '../test/helpers/scaleout.js';
import { machineMeter, metricSum, quantile, requireStack } from './lib.js';

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : def;
};
const RUNS = Number(arg('runs', '3'));
const CAMERAS = Number(arg('cameras', '6'));
const FPS = Number(arg('fps', '10'));
const [WIDTH, HEIGHT] = arg('size', '160x120').split('x').map(Number) as [number, number];
const STEADY_S = Number(arg('seconds', '12'));
/** Extra fields of the kafka source, e.g. `sessionTimeoutMs: 10000, heartbeatIntervalMs: 1000` (the timing before). */
const SOURCE_FIELDS = arg('source-fields', '');
/** Only the failover runs. */
const FAILOVER_ONLY = process.argv.includes('--failover-only');
const PARTITIONS = 6;
const BUDGET_MS = Number(arg('budget', '500'));
/** This worktree's benchmark ports (COORDINATION: 18400-18499; the e2e test uses 18400-18403). */
const PORT0 = 18410;

interface Run {
  cams: Camera[];
  members: Member[];
  labels: LabelRecord[];
  drops: DroppedRecord[];
  t0: number;
  events: GroupEvent[];
  skipped: number;
}

/** One run: `n` members, the cameras for `seconds`, `script` acting on the members meanwhile. */
async function run(n: number, seconds: number, seed: number, script: (members: Member[], t0: number, events: GroupEvent[]) => Promise<void>): Promise<Run> {
  const g = groupTopology({ partitions: PARTITIONS, budgetMs: BUDGET_MS, sourceFields: SOURCE_FIELDS || undefined });
  await createGroupTopics(g);
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const cams = makeCameras(g.name, CAMERAS, PARTITIONS, { seconds, fps: FPS, width: WIDTH, height: HEIGHT, seed });
  const members: Member[] = [];
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  try {
    for (let i = 0; i < n; i++) members.push(new Member(`member ${i}`, PORT0 + i, g.file(PORT0 + i)));
    await Promise.all(members.map((m) => m.waitReady()));
    const until = Date.now() + 20_000;
    while (Date.now() < until && members.reduce((a, m) => a + (m.assignments().at(-1)?.partitions.length ?? 0), 0) !== PARTITIONS) await sleep(100);
    await sleep(500);
    [labels, events] = await Promise.all([TopicCollector.start(g.labels), TopicCollector.start(g.events)]);
    const t0 = Date.now() + 500;
    const evs: GroupEvent[] = [];
    const sent = runCameras(producer, g.chunks, cams, t0);
    await script(members, t0, evs);
    await sent;
    await waitQuiet(() => labels!.records.length + events!.records.length, 2000, 20_000);
    let skipped = 0;
    for (const m of members) if (m.running) skipped += metricSum(await m.metrics(), 'framewire_frames_resume_skipped_total');
    return { cams, members, labels: labels.json<LabelRecord>(), drops: events.json<DroppedRecord>(), t0, events: evs, skipped };
  } finally {
    await Promise.all([labels?.stop(), events?.stop()]);
    await producer.disconnect().catch(() => undefined);
    await stopMembers();
    await deleteTopics(g.topics);
    await deleteGroups([g.group]);
    removeDir(g.dir);
  }
}

const at = (t0: number, s: number): Promise<void> => sleep(t0 + s * 1000 - Date.now());
const median = (xs: number[]): number => quantile([...xs].sort((a, b) => a - b), 0.5);
const fmtS = (ms: number): string => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '∞');

async function main(): Promise<void> {
  await requireStack();
  const meter = machineMeter();
  if (SOURCE_FIELDS) console.log(`source: ${SOURCE_FIELDS}`);
  console.log(`scale-out: ${CAMERAS} paced live cameras ${WIDTH}x${HEIGHT} @ ${FPS} fps (keyframe every 1 s), colour_probe, budget ${BUDGET_MS} ms, ${PARTITIONS} partitions`);

  // --------------------------------------------------------------------- throughput by instances
  const rows: string[] = [];
  for (const n of FAILOVER_ONLY ? [] : [1, 2, 3]) {
    const r = await run(n, STEADY_S + 2, 100 + n, (_m, t0) => at(t0, STEADY_S + 2));
    const res = analyse(r.cams, r.labels, r.drops, [], r.t0, r.members);
    // Steady state: frames captured after the first 2 s (every decoder starting at once).
    const from = r.t0 + 2000;
    const lat = r.labels.filter((l) => l.captureTs >= from).map((l) => l.publishedTs - l.captureTs).sort((a, b) => a - b);
    const frames = res.streams.reduce((a, s) => a + s.frames, 0);
    const labelled = res.streams.reduce((a, s) => a + s.labelled, 0);
    const missing = res.streams.reduce((a, s) => a + s.missing.length, 0);
    rows.push(`| ${n} | ${CAMERAS} | ${(lat.length / STEADY_S).toFixed(1)} | ${((100 * labelled) / frames).toFixed(1)} % | ${quantile(lat, 0.5)} / ${quantile(lat, 0.99)} | ${missing} |`);
    console.log(`  ${n} instance(s) done; ${meter.report()}`);
  }
  console.log('\n| instances | cameras | labelled frames/s (steady) | labelled | capture→publish p50 / p99 ms | frames unaccounted |\n| --: | --: | --: | --: | --- | --: |');
  for (const r of rows) console.log(r);

  // --------------------------------------------------------------------- failover
  const kill: number[] = [];
  const killPause: number[] = [];
  const term: number[] = [];
  const termPause: number[] = [];
  const stall: number[] = [];
  const dupKill: number[] = [];
  const dupTerm: number[] = [];
  const skipped: number[] = [];
  const unaccounted: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Kill at 4 s; the group settles by ~11 s; SIGTERM at 13 s; labels until 22 s.
    const r = await run(3, 22, 200 + i, async (m, t0, evs) => {
      await at(t0, 4);
      evs.push({ kind: 'kill', member: m[0]!, at: Date.now() });
      await m[0]!.kill();
      await at(t0, 13);
      evs.push({ kind: 'term', member: m[1]!, at: Date.now() });
      await m[1]!.term();
    });
    const res = analyse(r.cams, r.labels, r.drops, r.events, r.t0, r.members);
    const [k, t] = res.events as [(typeof res.events)[0], (typeof res.events)[0]];
    kill.push(...Object.values(k.gapMs));
    killPause.push(...Object.values(k.pauseMs));
    term.push(...Object.values(t.gapMs));
    termPause.push(...Object.values(t.pauseMs));
    stall.push(k.unmovedStallMs, t.unmovedStallMs);
    dupKill.push(k.duplicates);
    dupTerm.push(t.duplicates);
    skipped.push(r.skipped);
    unaccounted.push(res.streams.reduce((a, s) => a + s.missing.length, 0));
    console.log(
      `  run ${i + 1}: SIGKILL → labelled again ${Object.values(k.gapMs).map(fmtS).join('/')} s, SIGTERM → ${Object.values(t.gapMs).map(fmtS).join('/')} s; ` +
        `unmoved streams' longest pause ${fmtS(k.unmovedStallMs)} / ${fmtS(t.unmovedStallMs)} s; duplicates ${k.duplicates} / ${t.duplicates}; skipped on resume ${r.skipped}; ${meter.report()}`,
    );
  }
  const range = (xs: number[]): string => `${fmtS(median(xs))} (${fmtS(Math.min(...xs))}–${fmtS(Math.max(...xs))})`;
  console.log(`\nfailover, 3 instances, ${RUNS} runs (median, min–max over the moved streams of all runs):`);
  console.log('| event | streams moved | labelled again after, s | pause in their labels, s | duplicates per event | streams not moved: longest pause, s |\n| --- | --: | --- | --- | --- | --- |');
  console.log(`| SIGKILL (process group) | ${kill.length / RUNS} | ${range(kill)} | ${range(killPause)} | ${dupKill.join(', ')} | ${range(stall.filter((_, i) => i % 2 === 0))} |`);
  console.log(`| SIGTERM (drain) | ${term.length / RUNS} | ${range(term)} | ${range(termPause)} | ${dupTerm.join(', ')} | ${range(stall.filter((_, i) => i % 2 === 1))} |`);
  console.log(`frames skipped on resume (surviving members, per run): ${skipped.join(', ')}; frames unaccounted: ${unaccounted.join(', ')}`);
  console.log(meter.report());
}

main().then(
  () => process.exit(0),
  async (err) => {
    console.error(err);
    await stopMembers();
    process.exit(1);
  },
);
