/**
 * End to end, on the real stack (issue #20): the files real users send are ordinary
 * `ffmpeg -c:v libx264` output, with B-frames (frames stored out of presentation order) and long
 * GOPs, not the zero-latency encodes the other tests make. A matrix of cells
 *
 *   encoder {no B-frames (-bf 0); x264's defaults (-preset veryfast: High, 3 B-frames, b-pyramid);
 *            -preset medium -bf 3 -b-pyramid normal} × GOP {12, 50, 250} × size {320x240, 1280x720},
 *   at 25 or 30 fps (each rate meets every encoder and GOP), in MP4 or MPEG-TS files,
 *
 * each a file of random solid-colour segments (many colour changes: that is where a label of the
 * wrong frame shows), is sent by the real CLI (`framewire ingest --realtime`, remuxed) as
 * concurrent cameras into one live processor (budget 500 ms, shedding on) with colour_probe.
 *
 * The truth is the encoded file itself, decoded by ffmpeg in presentation order: frame n's class
 * is the RGB-cube corner nearest its mean colour (colour_probe's rule). For every cell:
 *  - each frame 0..N-1 has exactly one label record or `dropped` event, and no index is ≥ N;
 *  - every labelled frame's top label is the reference class of the same frame number (no
 *    tolerance at colour changes);
 *  - ptsMs increases with `frame` and is frame × 1000 / fps (±1 ms; the files are constant-rate);
 *  - every cell has labels to judge (the labelled share is printed: a figure of the load); no decoder stalled
 *    (DECODER_STALLED in the processor's log); no chunk dead-lettered.
 *
 * FW_E2E_SEED=<n> replays a run's colour sequences (the seed is logged).
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureTopics } from '../../src/kafka/topics.js';
import { framesCovered, ranges, type DroppedRecord, type LabelRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo, randomSegments, seededRng, type ColourVideo } from '../helpers/colours.js';
import { Processor, fmtStatus, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { auditSession, encodeFile, probeFile, referenceOf, type Probe, type Reference } from '../helpers/reference.js';
import { BROKERS, ensureStack } from '../helpers/stack.js';
import { kafka, newTopology, removeDir, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitQuiet, waitUntil } from '../helpers/wait.js';

const ENCODERS = [
  { name: 'bf0', args: ['-c:v', 'libx264', '-preset', 'veryfast', '-bf', '0'] },
  { name: 'x264-default', args: ['-c:v', 'libx264', '-preset', 'veryfast'] },
  { name: 'bf3-pyramid', args: ['-c:v', 'libx264', '-preset', 'medium', '-bf', '3', '-b-pyramid', 'normal'] },
] as const;
const GOPS = [12, 50, 250] as const;
const SIZES = [
  [320, 240],
  [1280, 720],
] as const;
/** Seconds of video per cell; GOP-250 cells get 260 frames so that one whole 250-frame GOP fits. */
const SECONDS = 5;
const LONG_GOP_FRAMES = 260;
/** Colour segment lengths, frames: short, so that every cell has many colour changes. */
const SEGMENT_MIN = 5;
const SEGMENT_MAX = 20;
/** Cameras running at once (a new one starts when one ends); 2 shared cores. */
const CAMERAS_AT_ONCE = Number(process.env.FW_REAL_STREAMS_CAMERAS ?? 6);
/** FW_REAL_STREAMS_CELLS=<regex>: only the cells whose id matches (to look at one closely). */
const ONLY = process.env.FW_REAL_STREAMS_CELLS ? new RegExp(process.env.FW_REAL_STREAMS_CELLS) : undefined;
/** Files encoded / probed at once. */
const ENCODES_AT_ONCE = 2;
/**
 * Share of each cell's frames from WARMUP_S on that must be labelled (the rest may be dropped,
 * live mode). The first second is left out: ingest holds a session's first chunk for its 300 ms
 * epoch window, so its first frames reach the processor past the 250 ms budget whatever the
 * encoder (`deadline`), and the decoder is starting then.
 */
/** Labels a cell needs for its check to mean anything. */
const MIN_LABELS = 1;
const BUDGET_MS = 500;
const WARMUP_S = 1;
/** The reference must be far from any class boundary, or the zero tolerance would test the scalers. */
const MIN_REFERENCE_MARGIN = 32;

interface Cell {
  id: string;
  encoder: (typeof ENCODERS)[number];
  gop: number;
  width: number;
  height: number;
  fps: number;
  container: 'mp4' | 'ts';
  video: ColourVideo;
  file: string;
  stream: string;
  probe?: Probe;
  ref?: Reference;
  session?: string;
  /** What ingest said: remuxed or encoded, frames it sent, sessions. */
  ingest?: { code: number | null; how: string; frames: number; sessions: number; line: string };
}

/** Runs `fn` over `items`, at most `n` at a time, starting them `staggerMs` apart at first. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>, staggerMs = 0): Promise<void> {
  let next = 0;
  const worker = async (w: number): Promise<void> => {
    if (staggerMs) await new Promise((r) => setTimeout(r, w * staggerMs));
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, (_, w) => worker(w)));
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

describe('real streams: x264 B-frames and long GOPs, end to end (#20)', { timeout: 240_000 }, () => {
  let topo: TestTopology | undefined;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  let dlq: TopicCollector | undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-real-streams-'));

  before(() => ensureStack());
  after(async () => {
    await Promise.all([labels?.stop(), events?.stop(), dlq?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
    removeDir(dir);
  });

  test('every frame of every cell is labelled with its own colour or reported dropped, in presentation order', async () => {
    const t0 = Date.now();
    const seed = Number(process.env.FW_E2E_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`colour sequence seed: ${seed} (replay with FW_E2E_SEED=${seed})`);
    const rng = seededRng(seed);
    // x264's defaults keep each frame up to 200 ms between capture and the moment it can be shown
    // (their pts − dts: P-frames are sent before the B-frames shown ahead of them), so 250 ms would
    // leave the processor ~50 ms; a budget such streams need (README, B-frames).
    topo = await newTopology({ mode: 'live', budgetMs: BUDGET_MS });

    // The matrix. fps alternates over encoder+GOP+size so that for each encoder and GOP one size
    // runs at 25 and the other at 30; the container alternates over encoder+GOP.
    const cells: Cell[] = [];
    for (const [e, encoder] of ENCODERS.entries()) {
      for (const [g, gop] of GOPS.entries()) {
        for (const [s, [width, height]] of SIZES.entries()) {
          const fps = (e + g + s) % 2 === 0 ? 25 : 30;
          const container = (e + g) % 2 === 0 ? 'mp4' : 'ts';
          const frames = gop >= 250 ? LONG_GOP_FRAMES : SECONDS * fps;
          const id = `${encoder.name}-g${gop}-${height}p${fps}`;
          const video = colourVideo(width, height, fps, randomSegments(rng, frames, SEGMENT_MIN, SEGMENT_MAX));
          if (ONLY && !ONLY.test(id)) continue; // after drawing its colours: the others keep theirs
          cells.push({ id, encoder, gop, width, height, fps, container, video, file: path.join(dir, `${id}.${container}`), stream: `${topo.name}-${id}` });
        }
      }
    }

    // The processor starts while the files are encoded.
    const admin = kafka.admin();
    await admin.connect();
    await ensureTopics(admin, [{ topic: topo.chunks, numPartitions: 3 }]);
    await admin.disconnect();
    proc = Processor.run(topo.file, 'processor');

    // Encode each cell as a user would, then take the truth from the file.
    await pool(cells, ENCODES_AT_ONCE, async (c) => {
      await encodeFile(c.video.graph, c.file, [...c.encoder.args, '-g', String(c.gop)]);
      [c.probe, c.ref] = await Promise.all([probeFile(c.file), referenceOf(c.file)]);
    });
    const encodedMs = Date.now() - t0;
    // The matrix is what it claims to be (else the test, not framewire, is wrong).
    for (const c of cells) {
      const p = c.probe!;
      const r = c.ref!;
      assert.equal(r.classes.length, p.frames, `${c.id}: ffmpeg decoded ${r.classes.length} frames, ffprobe -count_frames says ${p.frames}`);
      assert.equal(p.frames, c.video.frames, `${c.id}: the file has ${p.frames} frames, the graph ${c.video.frames}`);
      assert.ok(r.minMargin >= MIN_REFERENCE_MARGIN, `${c.id}: a frame's mean colour is within ${r.minMargin.toFixed(1)} of a class boundary`);
      if (c.encoder.name === 'bf0') assert.ok(p.hasBFrames === 0 && !p.pictTypes.includes('B'), `${c.id}: B-frames in a -bf 0 encode (has_b_frames ${p.hasBFrames})`);
      else assert.ok(p.hasBFrames >= 1 && p.pictTypes.includes('B'), `${c.id}: no B-frames (has_b_frames ${p.hasBFrames}, types ${p.pictTypes.slice(0, 40)}…)`);
      if (c.encoder.name === 'x264-default') assert.ok(p.profile === 'High' && p.hasBFrames === 2, `${c.id}: x264 defaults should be High with has_b_frames 2, got ${p.profile} ${p.hasBFrames}`);
      const graphDiff = r.classes.filter((k, i) => k !== c.video.expected[i]).length;
      if (graphDiff) console.log(`${c.id}: the file's reference differs from the lavfi graph at ${graphDiff} frames (the file is the truth)`);
    }
    console.log(`encoded and probed ${cells.length} files in ${encodedMs} ms`);

    const cameras: Processor[] = [];

    await withLogs(() => [proc, ...cameras.filter((cam) => cam.status?.code !== 0)], async () => {
      await proc!.waitReady(topo!.httpBase);
      [labels, events, dlq] = await Promise.all([TopicCollector.start(topo!.labels), TopicCollector.start(topo!.events), TopicCollector.start(topo!.dlq)]);
      const tCams = Date.now();

      // Cameras: the real CLI, realtime, default --codec auto (an H.264 file is remuxed).
      // Order mixes sizes so that 720p decoders are spread over the run.
      await pool(
        cells,
        CAMERAS_AT_ONCE,
        async (c) => {
          const cam = new Processor(['ingest', '--stream', c.stream, '--input', c.file, '--realtime', '--topic', topo!.chunks, '--brokers', BROKERS.join(',')], `camera ${c.id}`);
          cameras.push(cam);
          const status = await cam.exited;
          const head = /framewire ingest: stream \S+ session (\S+) \((\w+)\)/.exec(cam.stderr);
          const counts = /framewire ingest: (\d+) frames, \d+ sent in (\d+) session/.exec(cam.stderr);
          c.session = head?.[1];
          c.ingest = { code: status.code, how: head?.[2] ?? '?', frames: Number(counts?.[1] ?? -1), sessions: Number(counts?.[2] ?? -1), line: cam.stderr.trim().split('\n').slice(-2).join(' | ') };
        },
        250,
      );
      const camsMs = Date.now() - tCams;

      // Wait for every cell's frames to be accounted for, then for stragglers (duplicates, extras).
      const sessions = cells.filter((c) => c.session);
      const complete = await waitUntil(() => {
        const ls = labels!.json<LabelRecord>();
        const ds = events!.json<DroppedRecord>();
        return sessions.every((c) => framesCovered(ls, ds, c.stream, c.session!).size >= c.ref!.classes.length);
      }, 30_000, 250);
      await waitQuiet(() => labels!.records.length + events!.records.length, 1500, 10_000);
      const totalMs = Date.now() - t0;

      const allLabels = labels!.json<LabelRecord>();
      const allEvents = events!.json<DroppedRecord>();
      const dlqRecords = dlq!.records;
      const problems: string[] = [];
      if (!complete) problems.push('not every frame was accounted for within 30 s of the last camera ending');
      const rows: string[][] = [];
      for (const c of cells) {
        const ing = c.ingest!;
        if (ing.code !== 0) problems.push(`${c.id}: ingest exited ${ing.code}: ${ing.line}`);
        if (ing.how !== 'remuxed') problems.push(`${c.id}: ingest did not remux the H.264 file (${ing.how}); the cell does not test the file's own frames`);
        if (ing.sessions !== 1) problems.push(`${c.id}: ingest sent ${ing.sessions} sessions`);
        if (ing.frames !== c.ref!.classes.length) problems.push(`${c.id}: ingest counted ${ing.frames} frames, the file has ${c.ref!.classes.length}`);
        const mine = allLabels.filter((r) => r.stream === c.stream && r.session === c.session);
        const drops = allEvents.filter((e) => e.type === 'dropped' && e.stream === c.stream && e.session === c.session);
        const foreign = allLabels.filter((r) => r.stream === c.stream && r.session !== c.session).length;
        if (foreign) problems.push(`${c.id}: ${foreign} label records of another session`);
        const dead = dlqRecords.filter((r) => r.key === c.stream);
        if (dead.length) problems.push(`${c.id}: ${dead.length} chunks dead-lettered (${[...new Set(dead.map((r) => r.headers['fw-dlq-reason']))].join(', ')})`);
        const a = auditSession(mine, drops, c.ref!, c.fps);
        const n = c.ref!.classes.length;
        const labelled = mine.length / n;
        const warm = Math.round(WARMUP_S * c.fps);
        const steady = mine.filter((r) => r.frame >= warm && r.frame < n).length / (n - warm);
        if (a.missing.length) problems.push(`${c.id}: ${a.missing.length} frames neither labelled nor dropped: ${ranges(a.missing)}`);
        if (a.twice.length) problems.push(`${c.id}: ${a.twice.length} frames covered more than once: ${ranges(a.twice)}`);
        if (a.bad.length) problems.push(`${c.id}: ${a.bad.length} indices outside 0..${n - 1} (or bad drop counts): ${a.bad.slice(0, 10).join(', ')}`);
        if (a.wrong.length) {
          problems.push(
            `${c.id}: ${a.wrong.length} of ${mine.length} labels describe another frame (frames ${ranges(a.wrong.map((w) => w.frame))}): ` +
              a.wrong.slice(0, 12).map((w) => `#${w.frame} ${w.got}≠${w.want} (ptsMs ${w.ptsMs})`).join(', ') + (a.wrong.length > 12 ? ', …' : ''),
          );
        }
        if (a.ptsOrder.length) problems.push(`${c.id}: ptsMs does not increase with frame at ${a.ptsOrder.length} places: ${a.ptsOrder.slice(0, 6).map((o) => `#${o.prevFrame}=${o.prevPtsMs}ms → #${o.frame}=${o.ptsMs}ms`).join(', ')}`);
        if (a.ptsOff.length) problems.push(`${c.id}: ${a.ptsOff.length} ptsMs off frame×${(1000 / c.fps).toFixed(2)} ms: ${a.ptsOff.slice(0, 6).map((o) => `#${o.frame} ${o.ptsMs} (want ${o.wantMs.toFixed(1)})`).join(', ')}`);
        // How many are labelled depends on the machine's load (six cameras, 720p among them, on two
        // shared cores): a throughput figure for the benches (bench/scheduling.ts), printed above.
        // What this test holds is that each cell has labels to judge, and that every one is right.
        if (mine.length < MIN_LABELS) problems.push(`${c.id}: only ${mine.length} labels (want ≥ ${MIN_LABELS} to judge the cell); ${pct(steady)} of frames ${warm}..${n - 1}; dropped ${JSON.stringify(a.dropsByReason)}`);
        if (process.env.FW_REAL_STREAMS_VERBOSE) {
          const lat = mine.map((r) => r.publishedTs - r.captureTs).sort((x, y) => x - y);
          console.log(`${c.id}: labelled ${ranges(mine.map((r) => r.frame))}; capture→publish p50 ${lat[lat.length >> 1]} ms, max ${lat[lat.length - 1]} ms; ` + drops.map((e) => `${e.reason} ${e.fromFrame}-${e.toFrame}`).join(', '));
        }
        const dropsText = Object.entries(a.dropsByReason).map(([k, v]) => `${k}:${v}`).join(' ') || '-';
        rows.push([c.id, c.encoder.name, String(c.gop), `${c.width}x${c.height}`, String(c.fps), c.container, String(c.probe!.hasBFrames), String(c.probe!.longestGop), String(n), pct(labelled), pct(steady), dropsText, String(a.wrong.length), String(a.ptsOrder.length + a.ptsOff.length), String(a.missing.length + a.twice.length + a.bad.length)]);
      }
      const stalls = proc!.stderr.split('DECODER_STALLED').length - 1;
      if (stalls) problems.push(`processor: ${stalls} DECODER_STALLED in its log`);

      const head = ['cell', 'encoder', 'gop', 'size', 'fps', 'file', 'bf', 'longest gop', 'frames', 'labelled', `from ${WARMUP_S} s`, 'dropped', 'wrong', 'pts bad', 'cover bad'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const line = (r: string[]): string => r.map((v, i) => v.padEnd(widths[i]!)).join('  ');
      console.log(
        `real streams, ${cells.length} cells (seed ${seed}); encode ${(encodedMs / 1000).toFixed(1)} s, cameras ${(camsMs / 1000).toFixed(1)} s (${CAMERAS_AT_ONCE} at once), total ${(totalMs / 1000).toFixed(1)} s; ` +
          `${stalls} DECODER_STALLED, ${dlqRecords.length} dead letters\n${line(head)}\n${rows.map(line).join('\n')}`,
      );
      assert.deepEqual(problems, [], `${problems.length} problems:\n${problems.join('\n')}`);

      const status = await proc!.stop();
      assert.deepEqual(status, { code: 0, signal: null }, `processor did not exit 0 on SIGTERM (${fmtStatus(status)})`);
    });
  });
});
