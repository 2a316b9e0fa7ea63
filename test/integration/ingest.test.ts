/**
 * `framewire ingest` against the real local Kafka broker and the real ffmpeg/ffprobe binaries.
 * Each test writes to its own random topic; the topics are deleted afterwards.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { FramewireError } from '../../src/core/errors.js';
import { main } from '../../src/cli.js';
import { MAX_CHUNK_BYTES, runIngest } from '../../src/ingest/ingest.js';
import { readChunks, type ChunkRecord } from '../helpers/cameras.js';
import { colourVideo } from '../helpers/colours.js';
import { deleteTopics } from '../helpers/topics.js';
import { BROKERS, ROOT } from '../helpers/stack.js';
const TS_PACKET = 188;
/** How much later than its chunk was produced a paced, encoded frame may claim to be captured. */
const ENCODE_JITTER_MS = 10;
const PATTERN_100 = 'lavfi:testsrc2=size=320x240:rate=25,trim=end_frame=100';

const kafka = new Kafka({ clientId: 'framewire-ingest-test', brokers: BROKERS, logLevel: logLevel.ERROR });
const topics: string[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'framewire-ingest-'));

/** `framewire ingest ARGS`, as the command line runs it. */
const ingestCommand = (args: string[]): Promise<number> => main(['ingest', ...args]);
const rand = (): string => randomBytes(4).toString('hex');
function newTopic(): string {
  const topic = `test.ingest.${rand()}`;
  topics.push(topic);
  return topic;
}

/** Reads a topic's records back (test/helpers/cameras.ts). */
const consume = (topic: string, expected?: number, timeoutMs?: number): Promise<ChunkRecord[]> => readChunks(kafka, topic, expected, timeoutMs);

function probeStream(ts: Buffer): { codec: string; frames: number } {
  const out = execFileSync(
    'ffprobe',
    ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames,codec_name', '-of', 'json', '-'],
    { input: ts, maxBuffer: 16 << 20 },
  );
  const stream = (JSON.parse(out.toString()) as { streams: { codec_name: string; nb_read_frames: string }[] }).streams[0];
  assert.ok(stream, 'ffprobe found no video stream');
  return { codec: stream.codec_name, frames: Number(stream.nb_read_frames) };
}

function probeFramePts(ts: Buffer): number[] {
  const out = execFileSync(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time', '-of', 'csv=p=0', '-'],
    { input: ts, maxBuffer: 16 << 20 },
  );
  return out
    .toString()
    .split('\n')
    .map((l) => l.trim().replace(/,$/, ''))
    .filter((l) => l.length > 0)
    .map(Number);
}

/** Live processes (other than this one) whose command line contains `needle`. */
function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`).toString().includes(needle)) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/** Lengths of the video PES packets (PID 0x100) that start in a TS stream. */
function videoPesLengths(ts: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + TS_PACKET <= ts.length; i += TS_PACKET) {
    assert.equal(ts[i], 0x47, `lost TS sync at ${i}`);
    const pid = ((ts[i + 1]! & 0x1f) << 8) | ts[i + 2]!;
    if (pid !== 0x100 || (ts[i + 1]! & 0x40) === 0) continue;
    let p = i + 4;
    if (ts[i + 3]! & 0x20) p += 1 + ts[p]!;
    out.push(ts.readUInt16BE(p + 4));
  }
  return out;
}

/** Captures what the code under test writes to stderr (the logger's JSON lines) while `fn` runs. */
async function withStderr<T>(fn: () => Promise<T>): Promise<{ value: T; stderr: string }> {
  const original = process.stderr.write.bind(process.stderr);
  let text = '';
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  try {
    return { value: await fn(), stderr: text };
  } finally {
    process.stderr.write = original;
  }
}

/** Headers, key and order every chunk topic must satisfy; returns the concatenated stream. */
function assertChunkContract(records: ChunkRecord[], stream: string, session: string, maxChunk: number): Buffer {
  assert.ok(records.length > 0, 'no records');
  const epoch = records[0]!.headers['fw-epoch-ms'];
  records.forEach((r, i) => {
    // Exactly one end-of-session marker, on the last record.
    assert.equal(r.headers['fw-eos'], i === records.length - 1 ? '1' : undefined, `record ${i} of ${records.length} fw-eos`);
    assert.equal(r.key, stream, `record ${i} key`);
    assert.equal(r.headers['fw-stream'], stream, `record ${i} fw-stream`);
    assert.equal(r.headers['fw-session'], session, `record ${i} fw-session`);
    assert.equal(r.headers['fw-seq'], String(i), `record ${i} fw-seq`);
    assert.equal(r.headers['fw-format'], 'mpegts', `record ${i} fw-format`);
    assert.equal(r.headers['fw-epoch-ms'], epoch, `record ${i} fw-epoch-ms`);
    assert.ok(r.value.length > 0 && r.value.length <= maxChunk, `record ${i} has ${r.value.length} bytes`);
  });
  return Buffer.concat(records.map((r) => r.value));
}

before(() => {
  execFileSync('bash', ['scripts/stack.sh', 'up'], { cwd: ROOT, stdio: 'inherit' });
});

after(async () => {
  rmSync(scratch, { recursive: true, force: true });
  await deleteTopics(topics);
});

describe('framewire ingest', { timeout: 60_000 }, () => {
  test('a test pattern becomes ordered, headed chunks of an exact H.264 MPEG-TS stream', { timeout: 30_000 }, async () => {
    const topic = newTopic();
    const stream = `cam-${rand()}`;
    const chunkBytes = 4096;
    const t0 = Date.now();
    const result = await runIngest({ stream, input: PATTERN_100, brokers: BROKERS, topic, chunkBytes });
    const t1 = Date.now();

    assert.match(result.session, /^[0-9a-f]{8}$/);
    assert.ok(result.chunks > 10, `expected many chunks, got ${result.chunks}`);
    const records = await consume(topic, result.chunks);
    assert.equal(records.length, result.chunks);
    const ts = assertChunkContract(records, stream, result.session, Math.min(chunkBytes, MAX_CHUNK_BYTES));
    assert.equal(ts.length, result.bytes);

    const epoch = Number(records[0]!.headers['fw-epoch-ms']);
    assert.ok(epoch >= t0 && epoch <= t1, `fw-epoch-ms ${epoch} outside the run [${t0}, ${t1}]`);

    // Cuts ignore TS packet boundaries: some chunk ends mid-packet.
    let offset = 0;
    const cuts: number[] = [];
    for (const r of records.slice(0, -1)) cuts.push((offset += r.value.length));
    assert.ok(cuts.some((c) => c % TS_PACKET !== 0), 'every chunk boundary fell on a 188-byte TS packet boundary');
    assert.equal(ts[0], 0x47, 'stream starts with a TS sync byte');

    assert.deepEqual(probeStream(ts), { codec: 'h264', frames: 100 });
    // -omit_video_pes_length 0: every (small) frame's PES says how long it is.
    const pes = videoPesLengths(ts);
    assert.equal(pes.length, 100);
    assert.ok(pes.every((len) => len > 0), `PES lengths ${pes.filter((l) => l === 0).length} of 100 are 0`);
  });

  test('--codec: an H.264 file is remuxed (auto, copy) with a B-frame warning saying its cost, re-encoded (x264) without one, a non-H.264 one encoded', { timeout: 60_000 }, async () => {
    const h264 = join(scratch, `bframes-${rand()}.mp4`);
    // libx264's default preset: 3 B-frames, written into its SEI as "bframes=3".
    execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-f', 'lavfi',
      '-i', 'testsrc2=size=160x120:rate=25,trim=end_frame=30', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', h264]);
    const mpeg4 = join(scratch, `mpeg4-${rand()}.avi`);
    execFileSync('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-f', 'lavfi',
      '-i', 'testsrc2=size=160x120:rate=25,trim=end_frame=30', '-c:v', 'mpeg4', mpeg4]);

    const run = async (input: string, codec?: 'copy' | 'x264' | 'auto') => {
      const topic = newTopic();
      const stream = `cam-${rand()}`;
      const { value: result, stderr } = await withStderr(() => runIngest({ stream, input, brokers: BROKERS, topic, codec }));
      const ts = assertChunkContract(await consume(topic, result.chunks), stream, result.session, MAX_CHUNK_BYTES);
      return { result, stderr, ts, probe: probeStream(ts) };
    };
    const bWarnings = (stderr: string) => stderr.split('\n').filter((l) => l.includes('B-frames')).length;

    const auto = await run(h264);
    assert.equal(auto.result.codec, 'copy');
    assert.deepEqual(auto.probe, { codec: 'h264', frames: 30 });
    assert.ok(auto.ts.includes('bframes=3'), 'auto did not keep the source encoder\'s stream');
    assert.equal(bWarnings(auto.stderr), 1, `expected one B-frame warning, stderr: ${auto.stderr}`);
    // What it costs downstream: the reorder depth in frames and in ms at the source's rate.
    assert.match(auto.stderr, /has_b_frames=2: ~80 ms of reorder delay at 25 fps .*use --codec x264/);

    const copy = await run(h264, 'copy');
    assert.equal(copy.result.codec, 'copy');
    assert.ok(copy.ts.includes('bframes=3'));

    const x264 = await run(h264, 'x264');
    assert.equal(x264.result.codec, 'x264');
    assert.deepEqual(x264.probe, { codec: 'h264', frames: 30 });
    assert.ok(x264.ts.includes('bframes=0') && !x264.ts.includes('bframes=3'), 'x264 did not re-encode with zerolatency');
    assert.equal(bWarnings(x264.stderr), 0, 're-encoded: no B-frames reach the processor, nothing to warn about');

    const encoded = await run(mpeg4);
    assert.equal(encoded.result.codec, 'x264');
    assert.deepEqual(encoded.probe, { codec: 'h264', frames: 30 });
    assert.equal(bWarnings(encoded.stderr), 0);

    await assert.rejects(runIngest({ stream: 's', input: mpeg4, brokers: BROKERS, topic: newTopic(), codec: 'copy' }), (err: unknown) => {
      assert.ok(err instanceof FramewireError);
      assert.equal(err.code, 'INGEST_SOURCE_FAILED');
      assert.equal(err.retriable, false);
      assert.match(err.message, /mpeg4/);
      return true;
    });
  });

  test('a paced test pattern: no frame claims a capture time after it reached Kafka', { timeout: 30_000 }, async () => {
    const topic = newTopic();
    const stream = `cam-${rand()}`;
    const t0 = Date.now();
    const result = await runIngest({ stream, input: 'lavfi:testsrc2=size=320x240:rate=25,trim=end_frame=25', brokers: BROKERS, topic, realtime: true });
    const records = await consume(topic, result.chunks);
    const ts = assertChunkContract(records, stream, result.session, MAX_CHUNK_BYTES);
    const epoch = Number(records[0]!.headers['fw-epoch-ms']);
    assert.ok(epoch >= t0, `epoch ${epoch} before the run started at ${t0}`);
    const packets = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,pos', '-of', 'csv=p=0', '-'], { input: ts })
      .toString().split('\n').filter((l) => l.trim()).map((l) => l.split(',').map(Number) as [number, number]);
    assert.equal(packets.length, 25);
    const pts0 = Math.min(...packets.map((p) => p[0]));
    const ends: number[] = [];
    let offset = 0;
    for (const r of records) ends.push((offset += r.value.length));
    // The epoch is the best of the first 100 ms; a later frame that x264 encodes faster than any
    // of those may come out a few ms sooner than they predict (2 cores shared: 1 ms seen).
    let worst = -Infinity;
    for (const [pts, pos] of packets) {
      const claimed = epoch + (pts - pts0) * 1000;
      worst = Math.max(worst, claimed - records[ends.findIndex((end) => pos < end)]!.timestamp);
    }
    console.log(`# paced lavfi: worst claimed capture − produced ${worst.toFixed(1)} ms`);
    assert.ok(worst <= ENCODE_JITTER_MS, `a frame claims a capture time ${worst.toFixed(1)} ms after its chunk was produced`);
  });

  test('a missing input file rejects with INGEST_SOURCE_FAILED and leaves no ffmpeg behind', { timeout: 30_000 }, async () => {
    const missing = join(scratch, `missing-${rand()}.mp4`);
    await assert.rejects(
      runIngest({ stream: `cam-${rand()}`, input: missing, brokers: BROKERS, topic: newTopic() }),
      (err: unknown) => {
        assert.ok(err instanceof FramewireError, `not a FramewireError: ${String(err)}`);
        assert.equal(err.code, 'INGEST_SOURCE_FAILED');
        assert.equal(err.stage, 'ingest');
        assert.ok(err.message.includes(missing), `message does not name the input: ${err.message}`);
        assert.match(err.message, /No such file or directory/);
        return true;
      },
    );
    assert.deepEqual(processesMentioning(missing), []);
  });

  test('--loop repeats a file as one continuous session until aborted', { timeout: 30_000 }, async () => {
    const file = join(scratch, `small-${rand()}.mp4`);
    execFileSync('ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=25,trim=end_frame=10',
      '-c:v', 'libx264', '-pix_fmt', 'yuv420p', file,
    ]);
    assert.equal(probeStream(readFileSync(file)).frames, 10);

    const topic = newTopic();
    const stream = `cam-${rand()}`;
    const t0 = Date.now();
    const result = await runIngest({
      stream,
      input: file,
      brokers: BROKERS,
      topic,
      loop: true,
      realtime: true,
      signal: AbortSignal.timeout(2000),
    });
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 10_000, `abort took ${elapsed} ms to finish`);
    assert.deepEqual(processesMentioning(file), [], 'ffmpeg still running after abort');

    const records = await consume(topic, result.chunks);
    assert.equal(records.length, result.chunks);
    const ts = assertChunkContract(records, stream, result.session, MAX_CHUNK_BYTES);
    const pts = probeFramePts(ts);
    assert.ok(pts.length > 10, `expected more than one pass of 10 frames, got ${pts.length}`);
    for (let i = 1; i < pts.length; i++) {
      assert.ok(pts[i]! > pts[i - 1]!, `pts not increasing at frame ${i}: ${pts[i - 1]} then ${pts[i]}`);
    }
  });

  test('--loop repeats a lavfi graph as one continuous, paced session, pts increasing', { timeout: 30_000 }, async () => {
    // 10 frames (0.4 s): red ×5, blue ×5. The lavfi device cannot seek, so -stream_loop alone ended it after one pass.
    const video = colourVideo(160, 120, 25, [{ colour: 'red', frames: 5 }, { colour: 'blue', frames: 5 }]);
    const topic = newTopic();
    const stream = `cam-${rand()}`;
    const t0 = Date.now();
    const result = await runIngest({ stream, input: video.input, brokers: BROKERS, topic, loop: true, realtime: true, signal: AbortSignal.timeout(3000) });
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 10_000, `abort took ${elapsed} ms to finish`);

    const records = await consume(topic, result.chunks);
    const ts = assertChunkContract(records, stream, result.session, MAX_CHUNK_BYTES);
    const pts = probeFramePts(ts);
    // Paced after the first pass too (realtime filter): about 25 fps for the ~2.5 s it ran, not thousands.
    assert.ok(pts.length >= 30 && pts.length <= 25 * (elapsed / 1000) + 10, `${pts.length} frames in ${elapsed} ms`);
    for (let i = 1; i < pts.length; i++) assert.ok(Math.abs(pts[i]! - pts[i - 1]! - 0.04) < 0.002, `pts step at frame ${i}: ${pts[i - 1]} then ${pts[i]}`);
    // The content repeats: each decoded frame's mean colour follows red ×5, blue ×5 from the start.
    const rgb = execFileSync('ffmpeg', ['-v', 'error', '-f', 'mpegts', '-i', '-', '-vf', 'scale=1:1', '-pix_fmt', 'rgb24', '-f', 'rawvideo', '-'], { input: ts, maxBuffer: 16 << 20 });
    const seen = Array.from({ length: rgb.length / 3 }, (_, i) => (rgb[i * 3]! > 128 ? 'red' : rgb[i * 3 + 2]! > 128 ? 'blue' : '?'));
    assert.equal(seen.length, pts.length);
    assert.deepEqual(seen, seen.map((_, i) => video.expected[i % video.frames]));
  });

  test('the CLI returns 2 on bad arguments, 1 on a failed source, 0 when the input ends', { timeout: 30_000 }, async () => {
    assert.equal(await ingestCommand(['--stream']), 2);
    assert.equal(await ingestCommand(['--input', 'lavfi:testsrc2']), 2);
    assert.equal(await ingestCommand(['--stream', 's', '--input', 'x', '--bogus']), 2);
    assert.equal(await ingestCommand(['--stream', 's', '--input', 'x', '--codec', 'h265']), 2);

    const topic = newTopic();
    const brokers = BROKERS.join(',');
    const missing = join(scratch, `missing-${rand()}.mp4`);
    assert.equal(await ingestCommand(['--stream', 's', '--input', missing, '--brokers', brokers, '--topic', topic]), 1);

    const stream = `cam-${rand()}`;
    const input = 'lavfi:testsrc2=size=160x120:rate=25,trim=end_frame=10';
    assert.equal(await ingestCommand(['--stream', stream, '--input', input, '--brokers', brokers, '--topic', topic]), 0);
    const records = await consume(topic);
    const ts = assertChunkContract(records, stream, records[0]!.headers['fw-session']!, MAX_CHUNK_BYTES);
    assert.deepEqual(probeStream(ts), { codec: 'h264', frames: 10 });
  });
});
