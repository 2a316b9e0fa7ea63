/**
 * Lineage end to end on the real stack (issue #19 item 3): two cameras, ingested in small chunks
 * (3000 bytes, so frames straddle chunks and a chunk holds the start of a few frames), one
 * classified every frame, one sampled at 5 fps. The chunk topic is read back and demuxed with our
 * own demuxer: each frame belongs to the chunk its access unit begins in. Then
 *  - every label's `partition`/`offset` names a chunk of the same stream and session whose frames
 *    include the label's frame; every `dropped` range's `offset`/`toOffset` those of its first and
 *    last frame; change and alert records the chunks of their frames' labels;
 *  - every record carries the topology's hash, the one computed from the topology file;
 *  - `framewire explain` prints the right chunk for a labelled frame and for a sampled one, exits
 *    1 for a frame that does not exist and 2 for a frame that is not a number.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runIngest } from '../../src/ingest/ingest.js';
import { TsDemuxer, type AccessUnit } from '../../src/decode/mpegts.js';
import { loadTopology } from '../../src/config/load.js';
import { topologyHash } from '../../src/config/hash.js';
import type { DroppedEvent, LabelRecord } from '../../src/core/frame.js';
import type { AlertRecord, ChangeEvent } from '../../src/core/events.js';
import { hasAllFrames, labelsOf } from '../helpers/accounting.js';
import { TopicCollector, type TopicRecord } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, framewireCommand, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';
import { encodeFile, referenceOf } from '../helpers/reference.js';

const CHUNK_BYTES = 3000;

interface Chunk {
  record: TopicRecord;
  stream: string;
  session: string;
  /** Frames (presentation-order numbers) whose access unit begins in this chunk. */
  frames: Set<number>;
}

/** A session's keyframes (presentation-order numbers), with the chunk each began in. */
type Keyframes = { frame: number; chunk: Chunk }[];

/**
 * The chunks of each session, demuxed in fw-seq order as the processor does; frame n is the
 * access unit with the n-th smallest pts (docs/contracts.md "Labels").
 */
function chunkIndex(records: TopicRecord[]): { byPosition: Map<string, Chunk>; frameChunk: Map<string, Chunk>; keyframes: Map<string, Keyframes> } {
  const byPosition = new Map<string, Chunk>();
  const sessions = new Map<string, Chunk[]>();
  for (const r of records) {
    const c: Chunk = { record: r, stream: r.headers['fw-stream']!, session: r.headers['fw-session']!, frames: new Set() };
    byPosition.set(`${r.partition}:${r.offset}`, c);
    const k = `${c.stream}\u0000${c.session}`;
    sessions.set(k, [...(sessions.get(k) ?? []), c]);
  }
  const frameChunk = new Map<string, Chunk>();
  const keyframes = new Map<string, Keyframes>();
  for (const [k, chunks] of sessions) {
    chunks.sort((a, b) => Number(a.record.headers['fw-seq']) - Number(b.record.headers['fw-seq']));
    // The demuxer reuses its AccessUnit object: keep what is needed.
    const units: Pick<AccessUnit, 'pts' | 'offset' | 'key'>[] = [];
    const found = (au: AccessUnit): void => void units.push({ pts: au.pts, offset: au.offset, key: au.key });
    const demux = new TsDemuxer();
    for (const c of chunks) demux.push(c.record.value, Number(c.record.headers['fw-seq']), c.record.offset, found);
    demux.flush(found);
    units.sort((a, b) => a.pts - b.pts);
    for (const [n, au] of units.entries()) {
      const c = byPosition.get(`${chunks[0]!.record.partition}:${au.offset}`)!;
      c.frames.add(n);
      frameChunk.set(`${c.stream}\u0000${c.session}\u0000${n}`, c);
      if (au.key) keyframes.set(k, [...(keyframes.get(k) ?? []), { frame: n, chunk: c }]);
    }
  }
  return { byPosition, frameChunk, keyframes };
}

describe('lineage: every record names the chunk its frame came from', { timeout: 150_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  let alerts: TopicCollector | undefined;
  let chunks: TopicCollector | undefined;

  before(async () => {
    ensureStack();
    topo = await newTopology({
      mode: 'replay',
      extra: `sampling: [ { streams: "-sampled$", mode: rate, fps: 5 } ]
smoothing: { method: majority, window: 3, hysteresis: 2 }
alerts: [ { name: red-on-air, label: red, forMs: 200, clearMs: 200 } ]`,
    });
    proc = Processor.run(topo.file, 'processor');
    await proc.waitReady(topo.httpBase);
    [labels, events, alerts] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events), TopicCollector.start(topo.alerts)]);
  });

  after(async () => {
    await Promise.all([labels?.stop(), events?.stop(), alerts?.stop(), chunks?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('label, dropped, change and alert records point at the right chunks; explain prints them', async () => {
    await withLogs(() => [proc], async () => {
      const video = colourVideo(320, 240, 25, [
        { colour: 'blue', frames: 30 },
        { colour: 'red', frames: 30 },
        { colour: 'green', frames: 30 },
      ]);
      const all = `${topo.name}-all`;
      const sampled = `${topo.name}-sampled`;
      // And what users send: x264 with B-frames (pyramid), remuxed as it is.
      const bframes = `${topo.name}-bframes`;
      const dir = await mkdtemp(path.join(tmpdir(), 'fw-lineage-'));
      const bfile = path.join(dir, 'bframes.ts');
      await encodeFile(video.graph, bfile, ['-c:v', 'libx264', '-preset', 'medium', '-bf', '3', '-b-pyramid', 'normal', '-g', '12']);
      const results = await Promise.all([
        ...[all, sampled].map((stream) => runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo.chunks, gop: 12, chunkBytes: CHUNK_BYTES })),
        runIngest({ stream: bframes, input: bfile, brokers: BROKERS, topic: topo.chunks, codec: 'copy', chunkBytes: CHUNK_BYTES }),
      ]);
      const [sAll, sSampled, sB] = results.map((r) => r.session) as [string, string, string];
      const totalChunks = results.reduce((n, r) => n + r.chunks, 0);
      console.log(`ingested ${video.frames} frames per stream in ${results.map((r) => r.chunks).join(' + ')} chunks of at most ${CHUNK_BYTES} B`);

      const covered = (stream: string, session: string): Set<number> => {
        const s = new Set<number>();
        for (const r of labelsOf(labels!.json<LabelRecord>(), stream, session)) s.add(r.frame);
        for (const e of events!.json<DroppedEvent>()) if (e.type === 'dropped' && e.stream === stream && e.session === session) for (let i = e.fromFrame; i <= e.toFrame; i++) s.add(i);
        return s;
      };
      const done = await waitUntil(
        () =>
          hasAllFrames(labels!.json<LabelRecord>(), all, sAll, video.frames) &&
          hasAllFrames(labels!.json<LabelRecord>(), bframes, sB, video.frames) &&
          covered(sampled, sSampled).size >= video.frames &&
          [all, bframes].every((st) => alerts!.json<AlertRecord>().filter((a) => a.stream === st).length >= 2),
        60_000,
      );
      assert.ok(done, `not every frame accounted for within 60 s (${all}: ${labelsOf(labels!.json<LabelRecord>(), all, sAll).length} labels; ${sampled}: ${covered(sampled, sSampled).size} covered)`);

      chunks = await TopicCollector.start(topo.chunks);
      assert.ok(await waitUntil(() => chunks!.records.length >= totalChunks, 20_000), `read ${chunks.records.length} of ${totalChunks} chunks back`);
      const { byPosition, frameChunk, keyframes } = chunkIndex(chunks.records);
      /** The keyframe decoding `frame` starts from: the last one at or before it. */
      const keyOf = (stream: string, session: string, frame: number) => (keyframes.get(`${stream}\u0000${session}`) ?? []).filter((k) => k.frame <= frame).at(-1);
      const chunkOf = (stream: string, session: string, frame: number): Chunk | undefined => frameChunk.get(`${stream}\u0000${session}\u0000${frame}`);

      const problems: string[] = [];
      const hash = topologyHash(loadTopology(topo.file));
      const mine = (r: { stream: string }): boolean => r.stream === all || r.stream === sampled || r.stream === bframes;
      const labelRecs = labels!.json<LabelRecord>().filter(mine);
      for (const r of labelRecs) {
        const c = byPosition.get(`${r.partition}:${r.offset}`);
        if (!c) problems.push(`label ${r.stream} #${r.frame}: no chunk at partition ${r.partition} offset ${r.offset}`);
        else if (c.stream !== r.stream || c.session !== r.session) problems.push(`label ${r.stream}/${r.session} #${r.frame}: chunk ${r.partition}:${r.offset} is ${c.stream}/${c.session}'s`);
        else if (!c.frames.has(r.frame)) problems.push(`label ${r.stream} #${r.frame}: chunk ${r.partition}:${r.offset} (fw-seq ${c.record.headers['fw-seq']}) holds frames ${[...c.frames].join(',') || 'none'}`);
        if (r.topologyHash !== hash) problems.push(`label ${r.stream} #${r.frame}: topologyHash ${r.topologyHash}, the file's is ${hash}`);
        const key = keyOf(r.stream, r.session, r.frame);
        if (!key || r.keyFrame !== key.frame || String(r.keyOffset) !== key.chunk.record.offset) problems.push(`label ${r.stream} #${r.frame}: keyFrame ${r.keyFrame} at ${r.keyOffset}, its keyframe is #${key?.frame} in the chunk at ${key?.chunk.record.offset}`);
        if (!(Number.isInteger(r.batchSize) && r.batchSize! >= 1 && typeof r.queueMs === 'number' && r.queueMs >= 0 && typeof r.inferMs === 'number' && r.inferMs > 0)) problems.push(`label ${r.stream} #${r.frame}: batch fields ${JSON.stringify({ batchSize: r.batchSize, queueMs: r.queueMs, inferMs: r.inferMs })}`);
      }
      const dropped = events!.json<DroppedEvent>().filter((e) => e.type === 'dropped' && mine(e));
      assert.ok(dropped.length > 0, 'the sampled stream reported no dropped ranges');
      for (const e of dropped) {
        const from = chunkOf(e.stream, e.session, e.fromFrame);
        const to = chunkOf(e.stream, e.session, e.toFrame);
        if (e.stream !== sampled || e.reason !== 'sampled') problems.push(`unexpected drop ${JSON.stringify(e)}`);
        if (!from || !to || e.partition !== from.record.partition || String(e.offset) !== from.record.offset || String(e.toOffset) !== to.record.offset) {
          problems.push(`dropped ${e.stream} #${e.fromFrame}..${e.toFrame}: partition ${e.partition} offsets ${e.offset}..${e.toOffset}, its frames began in ${from?.record.partition}:${from?.record.offset}..${to?.record.offset}`);
        }
        if (e.topologyHash !== hash) problems.push(`dropped ${e.stream} #${e.fromFrame}: topologyHash ${e.topologyHash}`);
      }
      const labelAt = (stream: string, session: string, frame: number): LabelRecord | undefined => labelRecs.find((r) => r.stream === stream && r.session === session && r.frame === frame);
      const changes = events!.json<ChangeEvent>().filter((e) => e.type === 'change' && e.stream === all);
      assert.ok(changes.length >= 2, `expected the blue → red → green changes, got ${JSON.stringify(changes)}`);
      for (const c of changes) {
        const l = labelAt(c.stream, c.session, c.atFrame);
        if (!l || c.partition !== l.partition || c.offset !== l.offset || c.modelVersion !== l.modelVersion || c.topologyHash !== hash) problems.push(`change at #${c.atFrame}: ${JSON.stringify(c)} vs its label ${JSON.stringify(l)}`);
      }
      const alertsOf = (stream: string) => alerts!.json<AlertRecord>().filter((a) => a.stream === stream);
      const alertRecs = [...alertsOf(all), ...alertsOf(bframes)];
      assert.deepEqual(alertsOf(all).map((a) => a.state), ['firing', 'resolved']);
      assert.deepEqual(alertsOf(bframes).map((a) => a.state), ['firing', 'resolved']);
      for (const a of alertRecs) {
        const at = labelAt(a.stream, a.session, a.atFrame);
        const from = labelAt(a.stream, a.session, a.fromFrame);
        if (!at || !from || a.partition !== at.partition || a.offset !== at.offset || a.fromOffset !== from.offset || a.clipFrame !== from.keyFrame || a.clipOffset !== from.keyOffset || a.clipFrame === undefined || a.keyFrame !== at.keyFrame || a.keyOffset !== at.keyOffset || a.keyFrame === undefined || a.model !== at.model || a.modelVersion !== at.modelVersion || a.topologyHash !== hash) {
          problems.push(`alert ${a.state} #${a.fromFrame}..#${a.atFrame}: ${JSON.stringify(a)} vs labels ${JSON.stringify(from)} / ${JSON.stringify(at)}`);
        }
      }
      assert.deepEqual(problems.slice(0, 20), [], `${problems.length} lineage problems`);
      console.log(`${labelRecs.length} labels, ${dropped.length} dropped ranges, ${changes.length} changes, ${alertRecs.length} alerts: every one names its frames' chunks; topology ${hash}`);

      const explain = (...args: string[]) =>
        framewireCommand(['explain', ...args, '--brokers', BROKERS.join(','), '--labels-topic', topo.labels, '--events-topic', topo.events, '--timeout-ms', '20000'], 40_000);
      // A frame in the red segment, whose access unit starts in some chunk past the first few.
      const frame = 45;
      const want = chunkOf(all, sAll, frame)!;
      const one = await explain(all, String(frame), '--session', sAll);
      assert.equal(one.code, 0, one.stderr);
      console.log(`framewire explain ${all} ${frame}:\n${one.stdout}`);
      assert.match(one.stdout, new RegExp(`frame ${frame}: labelled`));
      assert.match(one.stdout, new RegExp(`chunk +partition ${want.record.partition} offset ${want.record.offset}\\n`));
      assert.match(one.stdout, /model +colour_probe version \d+/);
      assert.match(one.stdout, /batch +\d+ item\(s\); queued [\d.]+ ms from decoded to batched; Triton request [\d.]+ ms/);
      assert.ok(one.stdout.includes(hash), `explain names topology ${hash}`);
      // Without --session: the stream's only session.
      const d = dropped[Math.floor(dropped.length / 2)]!;
      const gone = await explain(sampled, String(d.toFrame));
      assert.equal(gone.code, 0, gone.stderr);
      assert.match(gone.stdout, new RegExp(`session ${sSampled} frame ${d.toFrame}: not labelled: dropped \\(sampled\\) with frames ${d.fromFrame}\\.\\.${d.toFrame}`));
      assert.match(gone.stdout, new RegExp(`partition ${chunkOf(sampled, sSampled, d.fromFrame)!.record.partition} offsets ${chunkOf(sampled, sSampled, d.fromFrame)!.record.offset}\\.\\.${chunkOf(sampled, sSampled, d.toFrame)!.record.offset}\\n`));
      const missing = await explain(all, String(video.frames + 10));
      assert.equal(missing.code, 1, `a frame past the video: ${missing.stdout}${missing.stderr}`);
      assert.match(missing.stderr, /no label record or dropped event/);
      assert.equal((await explain(all, 'twelve')).code, 2);

      // `framewire clip`: the red episode's video, from the chunk topic. Every frame of the file is
      // the source's frame clipFrame + i (its colour), from the keyframe before the episode's first
      // frame through its last frame, plus at most the rest of the last chunk and the next one.
      const clip = (id: string, file: string, ...more: string[]) =>
        framewireCommand(['clip', id, '-o', file, ...more, '--brokers', BROKERS.join(','), '--alerts-topic', topo.alerts, '--chunks-topic', topo.chunks, '--timeout-ms', '20000'], 40_000);
      try {
        for (const [stream, session] of [[all, sAll], [bframes, sB]] as const) {
          const [firing, resolved] = alertsOf(stream) as [AlertRecord, AlertRecord];
          const ts = path.join(dir, `${stream}.ts`);
          const out = await clip(firing.id, ts);
          assert.equal(out.code, 0, out.stderr);
          console.log(out.stdout.trim());
          const k = firing.clipFrame!;
          assert.equal(k, keyOf(stream, session, firing.fromFrame)!.frame, `${stream}: the clip starts at the keyframe before the episode`);
          const ref = await referenceOf(ts);
          const episode = resolved.atFrame - k + 1;
          // At most the frames of the last frame's chunk and the next one after the episode.
          const lastChunk = chunkOf(stream, session, resolved.atFrame)!;
          const nextSeq = Number(lastChunk.record.headers['fw-seq']) + 1;
          const next = [...byPosition.values()].find((c) => c.stream === stream && c.session === session && Number(c.record.headers['fw-seq']) === nextSeq);
          const fromChunk = byPosition.get(`${firing.partition}:${firing.clipOffset}`)!;
          const lastSeq = next ? nextSeq : nextSeq - 1;
          const inClip = [...byPosition.values()].filter((c) => c.stream === stream && c.session === session && Number(c.record.headers['fw-seq']) >= Number(fromChunk.record.headers['fw-seq']) && Number(c.record.headers['fw-seq']) <= lastSeq);
          const tail = inClip.flatMap((c) => [...c.frames]).filter((f) => f > resolved.atFrame).length;
          assert.ok(ref.classes.length >= episode && ref.classes.length <= episode + tail, `${stream}: the clip holds ${ref.classes.length} frames; the episode from its keyframe is ${episode}, with at most ${tail} after it`);
          const wrong = ref.classes.map((c, i) => [i, c] as const).filter(([i, c]) => c !== video.expected[k + i]);
          assert.deepEqual(wrong, [], `${stream}: every frame of the clip is its source frame`);
          assert.ok(ref.classes.slice(firing.fromFrame - k, resolved.atFrame - k + 1).every((c) => c === 'red'), `${stream}: the episode's frames show the alert's colour`);
          assert.match(out.stdout, new RegExp(`the episode is the file's frames ${firing.fromFrame - k}-${resolved.atFrame - k};`));
          // As MP4 (remuxed, not re-encoded): the same frames.
          const mp4 = path.join(dir, `${stream}.mp4`);
          assert.equal((await clip(firing.id, mp4, '--mp4')).code, 0);
          assert.deepEqual((await referenceOf(mp4)).classes, ref.classes, `${stream}: the MP4 holds the same frames`);
        }
        // No such alert: exit 1.
        const none = await clip(`${alertsOf(all)[0]!.id}-nope`, path.join(dir, 'none.ts'));
        assert.equal(none.code, 1);
        assert.match(none.stderr, /no alert '.*-nope'/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
