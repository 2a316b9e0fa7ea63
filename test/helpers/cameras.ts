/**
 * Cameras for tests without an encoder running: a video encoded once to MPEG-TS (with PES
 * lengths, as `framewire ingest` writes them), then published frame by frame, paced by its pts or
 * as fast as possible, as chunks with the contract's headers (docs/contracts.md).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';

export interface EncodedVideo {
  ts: Buffer;
  /** Per frame, in stream order: where its bytes end in `ts`, and its pts relative to the first (ms). */
  frames: { end: number; ptsMs: number }[];
}

/** Encodes a lavfi graph (e.g. a ColourVideo's `graph`) to H.264 MPEG-TS and lists its frames. */
export function encodeVideo(graph: string, gop: number): EncodedVideo {
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-cam-'));
  try {
    const file = path.join(dir, 'camera.ts');
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', graph, '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-g', String(gop), '-omit_video_pes_length', '0', '-f', 'mpegts', file]);
    const csv = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_entries', 'packet=pts_time,pos', '-of', 'csv=p=0', file], { encoding: 'utf8' });
    const rows = csv
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => l.split(',').map(Number) as [number, number]);
    const ts = readFileSync(file);
    const p0 = rows[0]![0];
    // A frame's bytes are complete where the next frame's first packet starts.
    return { ts, frames: rows.map(([pts], k) => ({ ptsMs: (pts - p0) * 1000, end: k + 1 < rows.length ? rows[k + 1]![1] : ts.length })) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface SendOptions {
  topic: string;
  stream: string;
  session: string;
  /** fw-epoch-ms: when frame 0 was captured. Paced sending starts then. */
  epochMs: number;
  /** Publish each frame when it is due (epoch + pts); otherwise as fast as possible. */
  paced: boolean;
  /** Mark the last record with fw-eos. */
  eos: boolean;
  /** Frames per record (default 1). */
  framesPerChunk?: number;
  /** Partition to write to (default: by key). */
  partition?: number;
}

/** Publishes the video as chunks; resolves with the time the last record was acknowledged. */
export async function sendVideo(producer: Producer, video: EncodedVideo, o: SendOptions): Promise<number> {
  const per = o.framesPerChunk ?? 1;
  let sent = 0;
  let seq = 0;
  for (let k = per - 1; ; k += per) {
    const last = k >= video.frames.length - 1;
    const f = video.frames[Math.min(k, video.frames.length - 1)]!;
    if (o.paced) {
      const wait = o.epochMs + f.ptsMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const headers: Record<string, string> = { 'fw-stream': o.stream, 'fw-session': o.session, 'fw-seq': String(seq++), 'fw-format': 'mpegts', 'fw-epoch-ms': String(o.epochMs) };
    if (last && o.eos) headers['fw-eos'] = '1';
    await producer.send({ topic: o.topic, acks: -1, messages: [{ key: o.stream, value: video.ts.subarray(sent, f.end), headers, partition: o.partition }] });
    sent = f.end;
    if (last) return Date.now();
  }
}

/** A record a camera produced, as read back from its topic. */
export interface ChunkRecord {
  key: string;
  value: Buffer;
  headers: Record<string, string>;
  /** The record's timestamp (producer time, or broker append time on a LogAppendTime topic). */
  timestamp: number;
}

/**
 * Reads a topic from the beginning until `expected` records arrived (or, with no count, until
 * none arrived for a second after the first), or the timeout passed.
 */
export async function readChunks(kafka: Kafka, topic: string, expected?: number, timeoutMs = 15_000): Promise<ChunkRecord[]> {
  const consumer = kafka.consumer({ groupId: `fw-test-${randomBytes(4).toString('hex')}`, maxWaitTimeInMs: 250 });
  const records: ChunkRecord[] = [];
  let idle: NodeJS.Timeout | undefined;
  let done!: () => void;
  const complete = new Promise<void>((resolve) => (done = resolve));
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        records.push({ key: message.key?.toString() ?? '', value: message.value ?? Buffer.alloc(0), headers, timestamp: Number(message.timestamp) });
        if (expected !== undefined && records.length >= expected) done();
        else if (expected === undefined) {
          clearTimeout(idle);
          idle = setTimeout(done, 1000);
        }
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([complete, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    clearTimeout(idle);
  } finally {
    await consumer.disconnect();
  }
  return records;
}
