/**
 * One alert snapshot (issue #19): a JPEG of a firing alert's `atFrame`, decoded again from the
 * chunk topic. The alert names the keyframe decoding `atFrame` starts from (`keyFrame`,
 * `keyOffset`) and the chunk `atFrame` began in (`offset`); the session's chunks from the one to
 * the other (and one more: the access unit may end there) go to one short-lived ffmpeg, which
 * decodes them, keeps the decoded frame `atFrame - keyFrame` (frames come out in presentation
 * order from the keyframe, as `framewire clip`'s file does), scales it to at most `maxWidth` and
 * encodes it as JPEG itself. Encoding in the child, not with the dashboard's encoder
 * (dashboard/jpeg.ts): ~48 ms of the event loop for a 640×360 frame there, nothing here.
 */
import { FfmpegProcess } from '../core/ffmpeg-process.js';
import type { AlertRecord } from '../core/events.js';
import type { SessionChunksQuery } from '../core/source.js';

/** Where an alert's snapshot is decoded from. */
export interface SnapshotPlan {
  query: Omit<SessionChunksQuery, 'timeoutMs'>;
  /** The keyframe the chunks start at, and `atFrame`'s place among the frames decoded from it. */
  keyFrame: number;
  index: number;
}

/** Chunks of the session read after the one `atFrame` began in: its access unit may end in the next. */
export const SNAPSHOT_TAIL_CHUNKS = 1;

/**
 * The plan for a firing alert's snapshot, or why there is none. `atFrame`'s own keyframe when the
 * record names it (0.4 records do); else the clip's start (`clipOffset`, `fromFrame`'s keyframe),
 * which decodes `atFrame` too, from further back.
 */
export function planSnapshot(a: AlertRecord): SnapshotPlan | string {
  if (a.state !== 'firing') return 'not a firing record';
  if (a.atFrame < 0) return 'no frame was labelled (a stale alert on a stream never labelled)';
  if (a.partition === undefined || a.offset === undefined) return 'the record carries no lineage (its chunks were not read from Kafka)';
  const own = a.keyFrame !== undefined && a.keyOffset !== undefined && a.keyFrame <= a.atFrame && a.keyOffset <= a.offset;
  const keyFrame = own ? a.keyFrame! : a.clipFrame;
  const keyOffset = own ? a.keyOffset! : a.clipOffset;
  if (keyFrame === undefined || keyOffset === undefined || keyFrame > a.atFrame || keyOffset > a.offset) return 'the record names no keyframe before its frame';
  return {
    query: { stream: a.stream, session: a.session, partition: a.partition, fromOffset: String(keyOffset), toOffset: String(a.offset), tailChunks: SNAPSHOT_TAIL_CHUNKS },
    keyFrame,
    index: a.atFrame - keyFrame,
  };
}

/**
 * ffmpeg's arguments: MPEG-TS on stdin, the `index`-th decoded frame (presentation order) scaled
 * to at most `maxWidth` (even height, aspect kept), one JPEG on stdout. One thread: a snapshot is
 * a few dozen frames and must not take a core from the pipeline's decoders. `level+info` and
 * `-benchmark`: every line says its level, and the last ones the child's CPU time.
 */
export function snapshotArgs(index: number, maxWidth: number, quality: number): string[] {
  return [
    '-hide_banner', '-nostats', '-loglevel', 'level+info', '-benchmark', '-threads', '1',
    '-f', 'mpegts', '-i', 'pipe:0',
    '-vf', `select=eq(n\\,${index}),scale=w='min(${maxWidth}\\,iw)':h=-2`,
    '-frames:v', '1', '-fps_mode', 'passthrough',
    '-c:v', 'mjpeg', '-q:v', String(quality), '-f', 'image2pipe', 'pipe:1',
  ];
}

/** Width and height from a baseline or progressive JPEG's SOF segment; undefined when it is not one. */
export function jpegSize(jpeg: Buffer): { width: number; height: number } | undefined {
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return undefined;
  let p = 2;
  while (p + 4 <= jpeg.length) {
    if (jpeg[p] !== 0xff) return undefined;
    const marker = jpeg[p + 1]!;
    if (marker === 0xff) {
      p++; // fill byte
      continue;
    }
    const len = jpeg.readUInt16BE(p + 2);
    // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (p + 9 > jpeg.length) return undefined;
      return { height: jpeg.readUInt16BE(p + 5), width: jpeg.readUInt16BE(p + 7) };
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // scan data before any frame header
    p += 2 + len;
  }
  return undefined;
}

/** `bench: utime=0.084s stime=0.008s rtime=0.095s` → CPU seconds (user + system). */
export function benchCpuSeconds(line: string): number | undefined {
  const m = /bench: utime=([\d.]+)s stime=([\d.]+)s/.exec(line);
  return m ? Number(m[1]) + Number(m[2]) : undefined;
}

export interface DecodedSnapshot {
  jpeg: Buffer;
  width: number;
  height: number;
  /** CPU time of the ffmpeg child, seconds (its own `-benchmark` count). */
  cpuSeconds: number;
}

export interface DecodeSnapshotOptions {
  ffmpegPath: string;
  maxWidth: number;
  /** ffmpeg's mjpeg `-q:v`, 2 (best) to 31. */
  quality: number;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Decodes the chunks' bytes and encodes the `index`-th frame; a string says why that failed. */
export async function decodeSnapshot(ts: Buffer, index: number, o: DecodeSnapshotOptions): Promise<DecodedSnapshot | string> {
  let cpuSeconds = 0;
  const proc = FfmpegProcess.spawn(o.ffmpegPath, snapshotArgs(index, o.maxWidth, o.quality), {
    stderrLines: 6,
    // Only warnings and errors go to the exit report; the bench line gives the CPU time.
    onStderr: (line) => {
      const cpu = benchCpuSeconds(line);
      if (cpu !== undefined) cpuSeconds = cpu;
      return /\[(warning|error|fatal|panic)\]/.test(line) && !line.includes('deprecated pixel format');
    },
    graceMs: 500,
  });
  const parts: Buffer[] = [];
  proc.stdout.on('data', (b: Buffer) => parts.push(b));
  // ffmpeg stops reading once it has its frame: the rest of stdin may be refused (EPIPE).
  proc.stdin.on('error', () => undefined);
  proc.stdin.end(ts);
  const timer = setTimeout(() => void proc.kill(), o.timeoutMs);
  const abort = () => void proc.kill();
  o.signal?.addEventListener('abort', abort, { once: true });
  const exit = await proc.exited;
  clearTimeout(timer);
  o.signal?.removeEventListener('abort', abort);
  if (exit.requested) return o.signal?.aborted ? 'stopped (shutdown)' : `ffmpeg took longer than ${o.timeoutMs} ms`;
  if (exit.reason !== 'ended') return `ffmpeg ${exit.reason}: ${exit.stderr.join(' / ') || exit.error?.message || ''}`;
  const jpeg = Buffer.concat(parts);
  if (jpeg.length === 0) return `ffmpeg put out no frame ${index} after the keyframe (the chunks hold fewer frames)${exit.stderr.length ? `: ${exit.stderr.join(' / ')}` : ''}`;
  const size = jpegSize(jpeg);
  if (!size) return `ffmpeg's output is not a JPEG (${jpeg.length} bytes)`;
  return { jpeg, ...size, cpuSeconds };
}
