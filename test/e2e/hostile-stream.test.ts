/**
 * Hostile bytes end to end (issue #12): one stream carries a real H.264 MPEG-TS whose records are
 * mutated (bytes flipped, cut short, garbage inserted, replaced with noise, replayed, sessions
 * restarted mid-GOP) for 20 s, while three clean streams run beside it. The processor never
 * crashes, the clean streams are all labelled (≥ 99 %), every frame of the bad stream the
 * processor found is labelled or dropped exactly once, and every record is accounted for: the
 * group's committed offsets reach the end of the topic (a record is committed only once its
 * frames are finished or it is dead-lettered). Records the decoder rejects are dead-lettered
 * `decoder-rejected` (code DECODER_REJECTED), unchanged, and counted.
 *
 * 20 s (500 records) was 50 s: the seeded mutations are the same sequence, cut shorter, and still
 * give every kind several times (about 60 flips, 20 truncations, 20 insertions, 15 noise records,
 * 10 replays, 5 restarts); the 50 s run gave nothing the shorter one does not.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodeVideo, sendVideo } from '../helpers/cameras.js';
import { assertCoveredOnce, type DroppedRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo, seededRng } from '../helpers/colours.js';
import { Processor, httpGet, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { ensureStack, randomId } from '../helpers/stack.js';
import { kafka, newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';
import type { LabelRecord } from '../../src/core/frame.js';

const FEED_MS = 20_000;

describe('a hostile stream beside three clean ones', { timeout: 170_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  let dlq: TopicCollector | undefined;

  before(async () => {
    ensureStack();
    topo = await newTopology({ mode: 'replay', partitions: 3, idleTimeoutMs: 1500, decodeFields: 'stallMs: 2000' });
  });
  after(async () => {
    await Promise.allSettled([labels?.stop(), events?.stop(), dlq?.stop()]);
    await stopAllProcessors(10_000);
    await removeTopology(topo);
  });

  test('the processor survives, the clean streams are labelled, every bad record is accounted for', async () => {
    await withLogs(() => [proc], async () => {
      const fps = 25;
      const frames = Math.round((FEED_MS / 1000) * fps);
      const clean = colourVideo(320, 240, fps, [
        { colour: 'red', frames: Math.floor(frames / 2) },
        { colour: 'blue', frames: frames - Math.floor(frames / 2) },
      ]);
      const cleanTs = encodeVideo(clean.graph, 25);
      const badTs = encodeVideo(`testsrc2=s=320x240:r=${fps}:d=${FEED_MS / 1000},format=yuv420p`, 25);

      proc = Processor.run(topo.file, 'processor');
      await proc.waitReady(topo.httpBase);
      [labels, events, dlq] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events), TopicCollector.start(topo.dlq)]);
      const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      try {
        const epochMs = Date.now() + 500;
        const streams = [1, 2, 3].map((i) => `${topo.name}-clean${i}`);
        const sessions = streams.map(() => randomId());
        const cleanSends = streams.map((stream, i) => sendVideo(producer, cleanTs, { topic: topo.chunks, stream, session: sessions[i]!, epochMs, paced: true, eos: true }));
        const bad = `${topo.name}-bad`;
        const badSent = sendHostile(producer, badTs, topo.chunks, bad, epochMs);
        const [, stats] = await Promise.all([Promise.all(cleanSends), badSent]);
        console.log(`hostile stream: ${stats.records} records sent, mutations ${JSON.stringify(stats.mutations)}, sessions ${stats.sessions}`);
        for (const kind of ['flip', 'truncate', 'insert', 'noise', 'replay', 'new-session']) assert.ok((stats.mutations[kind] ?? 0) > 0, `no '${kind}' mutation was sent`);

        // Settled: every record committed (frames finished or dead-lettered), so nothing is pending.
        const admin = kafka.admin();
        await admin.connect();
        let lag = -1;
        try {
          await waitUntil(async () => {
            const end = await admin.fetchTopicOffsets(topo.chunks);
            const [committed] = await admin.fetchOffsets({ groupId: topo.group, topics: [topo.chunks] });
            lag = 0;
            for (const p of end) {
              const c = committed!.partitions.find((x) => x.partition === p.partition);
              lag += Number(p.offset) - Math.max(0, Number(c?.offset ?? 0));
            }
            return lag === 0;
          }, 40_000, 500);
        } finally {
          await admin.disconnect();
        }
        const m = await scrapeMetrics(topo.httpBase);
        const health = await httpGet(`${topo.httpBase}/healthz`);
        const dead = dlq!.records.filter((r) => r.key === bad);
        const reasons: Record<string, number> = {};
        for (const d of dead) reasons[d.headers['fw-dlq-reason']!] = (reasons[d.headers['fw-dlq-reason']!] ?? 0) + 1;
        const badLabels = labels!.json<LabelRecord>().filter((r) => r.stream === bad);
        const badDrops = events!.json<DroppedRecord>().filter((e) => e.type === 'dropped' && e.stream === bad);
        const dropReasons: Record<string, number> = {};
        for (const d of badDrops) dropReasons[d.reason] = (dropReasons[d.reason] ?? 0) + d.count;
        console.log(
          `bad stream: ${badLabels.length} labels, dropped ${JSON.stringify(dropReasons)}, dead-lettered ${dead.length} ${JSON.stringify(reasons)}; ` +
            `decoder restarts ${metricValue(m, 'framewire_decoder_restarts_total')}, watchdog kills ${metricValue(m, 'framewire_decoder_kills_total')}, quarantines ${metricValue(m, 'framewire_streams_quarantined_total')}; uncommitted records at the end: ${lag}`,
        );
        assert.ok(proc.running, 'the processor died');
        assert.equal(health.status, 200);
        assert.equal(lag, 0, 'records of the topic never committed (neither finished nor dead-lettered)');

        for (const [i, stream] of streams.entries()) {
          const got = new Set(labels!.json<LabelRecord>().filter((r) => r.stream === stream && r.session === sessions[i]).map((r) => r.frame)).size;
          console.log(`${stream}: ${got}/${cleanTs.frames.length} labelled`);
          assert.ok(got >= 0.99 * cleanTs.frames.length, `${stream}: only ${got}/${cleanTs.frames.length} labelled`);
        }
        // Each bad session: every frame the processor found (up to the highest index it reported) exactly once.
        const badSessions = new Set([...badLabels.map((r) => r.session), ...badDrops.map((d) => d.session)]);
        for (const s of badSessions) {
          const top = Math.max(...badLabels.filter((r) => r.session === s).map((r) => r.frame), ...badDrops.filter((d) => d.session === s).map((d) => d.toFrame));
          assertCoveredOnce(labels!.json<LabelRecord>(), events!.json<DroppedRecord>(), bad, s, top + 1);
        }
        assert.ok(badLabels.length > 0, 'nothing of the bad stream was decodable at all (the mutations are too heavy to test anything)');
        // decoder-rejected (docs/contracts.md, dead letters): the record as sent, with its code, and counted.
        const rejected = dead.filter((d) => d.headers['fw-dlq-reason'] === 'decoder-rejected');
        assert.ok(rejected.length > 0, 'no record dead-lettered decoder-rejected (flipped and noise records should be)');
        for (const d of rejected) {
          const what = `decoder-rejected DLQ record ${d.headers['fw-session']}/${d.headers['fw-seq']}`;
          assert.equal(d.headers['fw-dlq-code'], 'DECODER_REJECTED', `${what}: fw-dlq-code`);
          assert.ok(d.headers['fw-dlq-detail'], `${what}: no fw-dlq-detail`);
          const sent = stats.sent.get(`${d.headers['fw-session']}/${d.headers['fw-seq']}`);
          assert.ok(sent && d.value.equals(sent), `${what}: not the bytes that were sent (${d.value.length} bytes, sent ${sent?.length})`);
        }
        assert.equal(metricValue(m, 'framewire_chunks_dead_lettered_total', { reason: 'decoder-rejected' }), rejected.length, 'decoder-rejected dead letters counted');
      } finally {
        await producer.disconnect();
      }
      const status = await proc.stop();
      assert.equal(status.code, 0);
    });
  });
});

/** Sends the video frame by frame at its rate, mutating records as a hostile or broken camera would. */
async function sendHostile(
  producer: import('kafkajs').Producer,
  video: { ts: Buffer; frames: { end: number; ptsMs: number }[] },
  topic: string,
  stream: string,
  epochMs: number,
): Promise<{ records: number; sessions: number; mutations: Record<string, number>; sent: Map<string, Buffer> }> {
  const rng = seededRng(12_100);
  const mutations: Record<string, number> = {};
  const count = (k: string) => (mutations[k] = (mutations[k] ?? 0) + 1);
  let session = randomId();
  let sessions = 1;
  let seq = 0;
  let records = 0;
  let start = 0;
  /** `session/seq` → the bytes sent in sequence (replays repeat an earlier seq and are left out). */
  const sent = new Map<string, Buffer>();
  for (const [k, f] of video.frames.entries()) {
    const wait = epochMs + f.ptsMs - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    let value = Buffer.from(video.ts.subarray(start, f.end));
    start = f.end;
    const roll = rng();
    if (roll < 0.12) {
      count('flip');
      for (let n = 1 + Math.floor(rng() * 20); n > 0; n--) value[Math.floor(rng() * value.length)] ^= 1 + Math.floor(rng() * 255);
    } else if (roll < 0.17) {
      count('truncate');
      value = value.subarray(0, Math.floor(rng() * value.length));
    } else if (roll < 0.22) {
      count('insert');
      const at = Math.floor(rng() * value.length);
      const junk = Buffer.from(Array.from({ length: 1 + Math.floor(rng() * 500) }, () => Math.floor(rng() * 256)));
      value = Buffer.concat([value.subarray(0, at), junk, value.subarray(at)]);
    } else if (roll < 0.25) {
      count('noise');
      value = Buffer.from(Array.from({ length: value.length }, () => Math.floor(rng() * 256)));
    } else if (roll < 0.27) {
      count('replay'); // the same record again: out of sequence
      const headers = { 'fw-stream': stream, 'fw-session': session, 'fw-seq': String(Math.max(0, seq - 1)), 'fw-format': 'mpegts', 'fw-epoch-ms': String(epochMs) };
      await producer.send({ topic, acks: -1, messages: [{ key: stream, value, headers }] });
      records++;
    } else if (roll < 0.28 && k > 0) {
      count('new-session'); // a camera restarting mid-GOP
      session = randomId();
      sessions++;
      seq = 0;
    }
    if (value.length === 0) value = Buffer.from([0x47]);
    const last = k === video.frames.length - 1;
    const headers: Record<string, string> = { 'fw-stream': stream, 'fw-session': session, 'fw-seq': String(seq++), 'fw-format': 'mpegts', 'fw-epoch-ms': String(epochMs) };
    if (last) headers['fw-eos'] = '1';
    await producer.send({ topic, acks: -1, messages: [{ key: stream, value, headers }] });
    sent.set(`${session}/${headers['fw-seq']}`, value);
    records++;
  }
  return { records, sessions, mutations, sent };
}
