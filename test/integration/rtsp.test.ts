/**
 * `framewire ingest --input rtsp://…` against a real RTSP server (GStreamer's, from Debian
 * packages: test/helpers/rtsp-server.py) and the real broker. The server draws each frame's number
 * into the picture and prints the wall time at which it captured (pushed) that frame, so the test
 * can check the capture time the chunks claim (fw-epoch-ms + the frame's pts relative to the first
 * frame) frame by frame against the truth, and against the time the chunk reached Kafka
 * (LogAppendTime on the test's topic).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { MAX_CHUNK_BYTES, runIngest } from '../../src/ingest/ingest.js';
import { ROOT, BROKERS, ensureStack } from '../helpers/stack.js';
import { readChunks, type ChunkRecord } from '../helpers/cameras.js';
import { deleteTopics } from '../helpers/topics.js';

const PYTHON = '/usr/bin/python3'; // Debian's interpreter: python3-gi is installed for it only
const SERVER = join(ROOT, 'test/helpers/rtsp-server.py');
const W = 320;
const H = 240;
/** Capture-time error allowed per frame, in ms. */
const TOLERANCE_MS = 100;

const kafka = new Kafka({ clientId: 'framewire-rtsp-test', brokers: BROKERS, logLevel: logLevel.ERROR });
const topics: string[] = [];
const rand = (): string => randomBytes(4).toString('hex');

const GST_CHECK = [
  '-c',
  "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');" +
    'from gi.repository import Gst, GstRtspServer; Gst.init(None);' +
    "missing=[e for e in ('appsrc','x264enc','rtph264pay') if Gst.ElementFactory.find(e) is None];" +
    "assert not missing, 'missing GStreamer elements: %s' % missing",
];

/** GStreamer's RTSP server with x264: installed by the stack's install step when missing. */
function rtspServerAvailable(): string | undefined {
  const probe = (): string | undefined => {
    const r = spawnSync(PYTHON, GST_CHECK, { encoding: 'utf8' });
    return r.status === 0 ? undefined : (r.stderr || r.error?.message || 'unknown').trim().split('\n').pop();
  };
  if (probe() === undefined) return undefined;
  const install = spawnSync('bash', [join(ROOT, 'scripts/stack.sh'), 'install'], { stdio: 'inherit' });
  const after = probe();
  if (after === undefined) return undefined;
  return `GStreamer RTSP server not available (stack.sh install exited ${install.status}): ${after}`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

interface Camera {
  url: string;
  /** Frame number → Unix ms at which the server captured it. */
  captured: Map<number, number>;
  stop(): Promise<void>;
}

async function startCamera(extra: string[] = []): Promise<Camera> {
  const port = await freePort();
  const child: ChildProcess = spawn(PYTHON, [SERVER, '--port', String(port), '--seconds', '60', ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true, // own process group: stopped as a whole
  });
  const captured = new Map<number, number>();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`rtsp-server exited (${code}) before it was ready`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { ready?: number; n?: number; t?: number };
      if (msg.ready !== undefined) resolve();
      else if (msg.n !== undefined && msg.t !== undefined && !captured.has(msg.n)) captured.set(msg.n, msg.t);
    });
  });
  await ready;
  return {
    url: `rtsp://127.0.0.1:${port}/cam`,
    captured,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGTERM');
      await exited;
    },
  };
}

/** A chunk read back; `timestamp` is the broker's append time (the topic uses LogAppendTime). */
type Rec = ChunkRecord;

const consumeAll = (topic: string, expected: number, timeoutMs?: number): Promise<Rec[]> => readChunks(kafka, topic, expected, timeoutMs);

interface Frame {
  /** Presentation time in s. */
  pts: number;
  /** Byte offset of the frame's packet in the stream. */
  pos: number;
  /** The frame number drawn into the picture. */
  n: number;
}

/** Frames of a TS stream in presentation order, with the number each one shows. */
function decodeFrames(ts: Buffer): Frame[] {
  const probe = execFileSync(
    'ffprobe',
    ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,pos', '-of', 'csv=p=0', '-'],
    { input: ts, maxBuffer: 64 << 20 },
  );
  const packets = probe
    .toString()
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => l.split(',').map(Number) as [number, number])
    .sort((a, b) => a[0] - b[0]);
  const raw = execFileSync(
    'ffmpeg',
    ['-v', 'error', '-i', '-', '-map', '0:v:0', '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'gray', '-'],
    { input: ts, maxBuffer: 512 << 20 },
  );
  const count = raw.length / (W * H);
  assert.equal(count, packets.length, `decoded ${count} frames, probed ${packets.length} packets`);
  const frames: Frame[] = [];
  for (let f = 0; f < count; f++) {
    const base = f * W * H;
    let n = 0;
    for (let bit = 0; bit < 16; bit++) {
      // The middle of block `bit`: 4x4 grid, LSB top-left, row by row.
      const x = (bit % 4) * (W / 4) + W / 8;
      const y = Math.floor(bit / 4) * (H / 4) + H / 8;
      if (raw[base + y * W + x]! > 128) n |= 1 << bit;
    }
    frames.push({ pts: packets[f]![0], pos: packets[f]![1], n });
  }
  return frames;
}

export interface CaptureErrors {
  frames: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  /** Largest (claimed capture − broker append time of the chunk holding the frame's first byte). */
  worstVsAppendMs: number;
}

/** Claimed capture time (epoch + relative pts) minus the server's truth, for every frame. */
function captureErrors(recs: Rec[], camera: Camera): CaptureErrors {
  const epoch = Number(recs[0]!.headers['fw-epoch-ms']);
  const ts = Buffer.concat(recs.map((r) => r.value));
  const frames = decodeFrames(ts);
  assert.ok(frames.length > 25, `only ${frames.length} frames`);
  const ends: number[] = [];
  let offset = 0;
  for (const r of recs) ends.push((offset += r.value.length));
  const pts0 = frames[0]!.pts;
  const errors: number[] = [];
  let worstVsAppendMs = -Infinity;
  frames.forEach((f, i) => {
    if (i > 0) assert.equal(f.n, frames[i - 1]!.n + 1, `frame ${i} shows ${f.n} after ${frames[i - 1]!.n}`);
    const truth = camera.captured.get(f.n);
    assert.ok(truth !== undefined, `the server never reported capturing frame ${f.n}`);
    const claimed = epoch + (f.pts - pts0) * 1000;
    errors.push(claimed - truth);
    const chunk = ends.findIndex((end) => f.pos < end);
    worstVsAppendMs = Math.max(worstVsAppendMs, claimed - recs[chunk]!.timestamp);
  });
  return {
    frames: frames.length,
    meanMs: errors.reduce((a, b) => a + b, 0) / errors.length,
    minMs: Math.min(...errors),
    maxMs: Math.max(...errors),
    worstVsAppendMs,
  };
}

let skip: string | undefined;

before(async () => {
  ensureStack();
  skip = rtspServerAvailable();
  // Locally a missing GStreamer is a skip; in CI the install step is supposed to provide it, so a
  // skip there would hide a failed install behind a green run.
  if (skip && process.env.CI === 'true') throw new Error(`CI=true and the RTSP server is not available: ${skip}`);
  if (skip) console.log(`# skipping RTSP tests: ${skip}`);
});

after(async () => {
  await deleteTopics(topics);
});

async function logAppendTopic(): Promise<string> {
  const topic = `test.rtsp.${rand()}`;
  topics.push(topic);
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          numPartitions: 1,
          configEntries: [
            { name: 'message.timestamp.type', value: 'LogAppendTime' },
            { name: 'max.message.bytes', value: String(2 * MAX_CHUNK_BYTES) },
          ],
        },
      ],
    });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

describe('framewire ingest from RTSP', { timeout: 90_000 }, () => {
  test('capture time of every frame is the server\'s, within 100 ms, and never after the chunk reached Kafka', { timeout: 60_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const camera = await startCamera();
    try {
      const topic = await logAppendTopic();
      const stream = `cam-${rand()}`;
      const result = await runIngest({
        stream,
        input: camera.url,
        brokers: BROKERS,
        topic,
        signal: AbortSignal.timeout(6000),
      });
      assert.ok(result.chunks > 1, `only ${result.chunks} chunks in 6 s`);
      assert.equal(result.codec, 'copy', 'an H.264 camera is remuxed');
      const recs = await consumeAll(topic, result.chunks);
      assert.equal(recs.length, result.chunks);
      const e = captureErrors(recs, camera);
      console.log(`# rtsp capture-time error over ${e.frames} frames: mean ${e.meanMs.toFixed(1)} ms, ` +
        `min ${e.minMs.toFixed(1)}, max ${e.maxMs.toFixed(1)}; worst claimed − appended ${e.worstVsAppendMs.toFixed(1)} ms`);
      assert.ok(e.minMs >= -TOLERANCE_MS && e.maxMs <= TOLERANCE_MS,
        `capture-time error from ${e.minMs.toFixed(1)} to ${e.maxMs.toFixed(1)} ms, allowed ±${TOLERANCE_MS}`);
      assert.ok(e.worstVsAppendMs <= 0, `a frame claims capture ${e.worstVsAppendMs.toFixed(1)} ms after its chunk reached Kafka`);
    } finally {
      await camera.stop();
    }
  });

  test('a camera that goes away mid-stream still ends the session with exactly one fw-eos record', { timeout: 60_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const camera = await startCamera();
    const topic = await logAppendTopic();
    const stream = `cam-${rand()}`;
    let outcome: unknown;
    try {
      const running = runIngest({ stream, input: camera.url, brokers: BROKERS, topic, signal: AbortSignal.timeout(20_000) });
      await new Promise((resolve) => setTimeout(resolve, 4000));
      await camera.stop();
      outcome = await running.then((r) => r, (err: unknown) => err);
    } finally {
      await camera.stop();
    }
    // The server closing the connection is an end of input to ffmpeg (or an error): either way the session is over.
    const produced = await consumeAll(topic, 1_000_000, 5000);
    assert.ok(produced.length > 1, `only ${produced.length} records (${String(outcome)})`);
    const eos = produced.map((r, i) => (r.headers['fw-eos'] === '1' ? i : -1)).filter((i) => i >= 0);
    assert.deepEqual(eos, [produced.length - 1], 'fw-eos must be on the last record only');
    produced.forEach((r, i) => assert.equal(r.headers['fw-seq'], String(i)));
  });
});
