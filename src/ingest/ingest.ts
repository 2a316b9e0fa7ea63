/**
 * `framewire ingest`: act as a camera. ffmpeg reads a source and writes an H.264 MPEG-TS byte
 * stream to stdout; the bytes are cut into chunks (at most 1 MiB, boundaries arbitrary by
 * contract) and produced to Kafka in order, with the fw-* headers of the video-chunks contract.
 *
 * Data flow: ffmpeg stdout → chunker → BoundedQueue (blocks when full, which stops reading
 * stdout, which blocks ffmpeg) → one sender loop → idempotent producer, acks from all replicas.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import ffmpeg from 'fluent-ffmpeg';
import { Kafka, Partitioners, logLevel, type LogEntry, type Message, type Producer } from 'kafkajs';
import { FramewireError } from '../core/errors.js';
import { log } from '../core/log.js';
import { BoundedQueue } from '../core/queue.js';

export interface IngestOptions {
  /** Stream id: the record key and the fw-stream header. */
  stream: string;
  /** A file path, an rtsp:// or http(s):// URL, or 'lavfi:<filtergraph>' for a test pattern. */
  input: string;
  brokers: string[];
  /** Chunk topic, normally 'video.chunks'. Created (1 partition) when missing. */
  topic: string;
  /** Pace reading at the source frame rate (ffmpeg -re). */
  realtime?: boolean;
  /** Repeat a file forever as one continuous session (-stream_loop -1). */
  loop?: boolean;
  /** Largest chunk value in bytes; default and hard maximum 1 MiB. */
  chunkBytes?: number;
  /** Session id; default a random 8-hex id per run. */
  session?: string;
  /** Keyframe interval in frames (x264 -g); default: the encoder's. */
  gop?: number;
  /** Stop early: ffmpeg finishes its stream, every produced chunk is sent, the call resolves. */
  signal?: AbortSignal;
}

export interface IngestResult {
  session: string;
  chunks: number;
  bytes: number;
}

export const MAX_CHUNK_BYTES = 1024 * 1024;
export const CHUNK_FORMAT = 'mpegts';

/** A partial chunk waits at most this long, so a live stream reaches Kafka with low latency (the budget is 250 ms end to end). */
const LINGER_MS = 10;
/** Chunks cut but not yet handed to the producer; when full, stdout is no longer read. */
const QUEUE_CHUNKS = 8;
/** Value bytes per produce request: brokers cap a whole record batch (message.max.bytes). */
const MAX_SEND_BYTES = MAX_CHUNK_BYTES;
/** After SIGINT, ffmpeg has this long to flush its encoder and close the stream before SIGKILL. */
const STOP_GRACE_MS = 5000;
/** Topic override when we create the topic: a full 1 MiB chunk plus headers exceeds Kafka's 1 MiB default. */
const TOPIC_MAX_MESSAGE_BYTES = 2 * MAX_CHUNK_BYTES;
/** stderr lines fluent-ffmpeg keeps; we only report the last one. */
const STDERR_LINES = 20;

interface Chunk {
  value: Buffer;
  headers: Record<string, string>;
}

export async function runIngest(opts: IngestOptions): Promise<IngestResult> {
  const chunkBytes = opts.chunkBytes ?? MAX_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES) {
    throw new RangeError(`chunkBytes must be an integer from 1 to ${MAX_CHUNK_BYTES}, got ${chunkBytes}`);
  }
  if (opts.gop !== undefined && (!Number.isInteger(opts.gop) || opts.gop < 1)) {
    throw new RangeError(`gop must be a positive integer, got ${opts.gop}`);
  }
  if (!opts.stream) throw new RangeError('stream id must not be empty');
  if (!opts.input) throw new RangeError('input must not be empty');
  if (opts.brokers.length === 0) throw new RangeError('at least one broker is required');

  const result: IngestResult = { session: opts.session ?? randomBytes(4).toString('hex'), chunks: 0, bytes: 0 };
  if (opts.signal?.aborted) return result;

  const kafka = new Kafka({
    clientId: 'framewire-ingest',
    brokers: opts.brokers,
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator,
  });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  try {
    await ensureTopic(kafka, opts.topic);
    await producer.connect();
  } catch (err) {
    await producer.disconnect().catch(() => undefined);
    throw publishError(err, `cannot prepare topic '${opts.topic}' on ${opts.brokers.join(',')}`);
  }
  try {
    await pump(opts, chunkBytes, producer, result);
    return result;
  } finally {
    await producer.disconnect().catch((err: unknown) => log.warn('ingest: producer disconnect failed', { err }));
  }
}

async function pump(opts: IngestOptions, chunkBytes: number, producer: Producer, result: IngestResult): Promise<void> {
  if (opts.signal?.aborted) return; // aborted while connecting: nothing to start
  const source = new FfmpegSource(opts);
  const onAbort = (): void => source.stop();
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const queue = new BoundedQueue<Chunk>(QUEUE_CHUNKS);
  let sendError: unknown;
  const sending = sendLoop(queue, producer, opts.topic, result).catch((err: unknown) => {
    sendError = err;
    queue.close();
    source.kill();
  });

  // The chunker: one reusable accumulator; a full one is handed off whole, a partial one copied.
  let acc = Buffer.allocUnsafe(chunkBytes);
  let accLen = 0;
  let seq = 0;
  let epochMs = '';
  const cut = (): Chunk => {
    let value: Buffer;
    if (accLen === chunkBytes) {
      value = acc;
      acc = Buffer.allocUnsafe(chunkBytes);
    } else {
      value = Buffer.from(acc.subarray(0, accLen));
    }
    accLen = 0;
    const headers = {
      'fw-stream': opts.stream,
      'fw-session': result.session,
      'fw-seq': String(seq++),
      'fw-format': CHUNK_FORMAT,
      'fw-epoch-ms': epochMs,
    };
    return { value, headers };
  };
  let linger: NodeJS.Timeout | undefined;
  const onLinger = (): void => {
    linger = undefined;
    if (accLen === 0 || queue.isClosed) return;
    // Only a synchronous push keeps seq order with the read loop; if full, try again later.
    if (queue.length < queue.capacity) queue.tryPush(cut());
    else linger = setTimeout(onLinger, LINGER_MS);
  };

  try {
    read: for await (const data of source.output as AsyncIterable<Buffer>) {
      // ffmpeg emits its first bytes as soon as the first frame is encoded: the session's capture time.
      if (epochMs === '') epochMs = String(Date.now());
      let offset = 0;
      while (offset < data.length) {
        const n = Math.min(chunkBytes - accLen, data.length - offset);
        data.copy(acc, accLen, offset, offset + n);
        accLen += n;
        offset += n;
        if (accLen === chunkBytes) {
          clearTimeout(linger);
          linger = undefined;
          if (!(await queue.push(cut()))) break read; // closed: the sender failed
        }
      }
      if (accLen > 0 && linger === undefined) linger = setTimeout(onLinger, LINGER_MS);
    }
    clearTimeout(linger);
    if (accLen > 0) await queue.push(cut());
    queue.close();
    await sending;
    const exit = await source.exited;
    if (sendError !== undefined) throw publishError(sendError, `producing to '${opts.topic}' failed`);
    if (exit.error && !exit.stopped) {
      const detail = lastLine(exit.stderr) ?? exit.error.message;
      const message =
        seq === 0
          ? `cannot read input '${opts.input}': ${detail}`
          : `input '${opts.input}' failed after ${seq} chunks: ${detail}`;
      throw new FramewireError('INGEST_SOURCE_FAILED', 'ingest', message, {
        retriable: seq > 0 && isNetworkInput(opts.input),
        cause: exit.error,
      });
    }
  } finally {
    clearTimeout(linger);
    opts.signal?.removeEventListener('abort', onAbort);
    queue.close();
    source.kill();
    await source.exited;
    await sending;
  }
}

/** The only consumer of the queue, so records leave in seq order; one request at a time. */
async function sendLoop(
  queue: BoundedQueue<Chunk>,
  producer: Producer,
  topic: string,
  result: IngestResult,
): Promise<void> {
  for (;;) {
    await queue.waitForItem();
    if (queue.length === 0) {
      if (queue.isClosed) return;
      continue;
    }
    const messages: Message[] = [];
    let batchBytes = 0;
    for (let c = queue.peek(); c !== undefined; c = queue.peek()) {
      if (messages.length > 0 && batchBytes + c.value.length > MAX_SEND_BYTES) break;
      queue.shift();
      messages.push({ key: c.headers['fw-stream'], value: c.value, headers: c.headers });
      batchBytes += c.value.length;
    }
    await producer.send({ topic, acks: -1, messages });
    result.chunks += messages.length;
    result.bytes += batchBytes;
  }
}

interface SourceExit {
  error: Error | null;
  stderr: string | null;
  /** We asked ffmpeg to stop (abort) or killed it: a non-zero exit is expected then. */
  stopped: boolean;
}

/** Supervises one ffmpeg child: started on construction, stopped gracefully or killed, never leaked. */
class FfmpegSource {
  /** emitClose off: fluent-ffmpeg kills ffmpeg 20 ms after its output stream closes, masking the real exit. */
  readonly output = new PassThrough({ emitClose: false, highWaterMark: 256 * 1024 });
  readonly exited: Promise<SourceExit>;
  private child: ChildProcess | undefined;
  private stopRequest: 'none' | 'stop' | 'kill' = 'none';
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(opts: IngestOptions) {
    const command = ffmpeg({ stdoutLines: STDERR_LINES });
    const inputOptions = ['-hide_banner', '-nostdin', '-loglevel', 'error'];
    if (opts.realtime) inputOptions.push('-re');
    if (opts.loop) inputOptions.push('-stream_loop', '-1');
    if (opts.input.startsWith('lavfi:')) {
      command.input(opts.input.slice('lavfi:'.length)).inputFormat('lavfi');
    } else {
      // TCP interleaving survives NAT and loss far better than RTSP's default UDP.
      if (/^rtsps?:\/\//i.test(opts.input)) inputOptions.push('-rtsp_transport', 'tcp');
      // A path starting with '-' would be read as an option.
      command.input(opts.input.startsWith('-') ? `file:${opts.input}` : opts.input);
    }
    command.inputOptions(inputOptions);

    const outputOptions = [
      '-map', '0:v:0', '-sn', '-dn',
      '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
      // Keep every source frame with its own timestamp: no drops, no duplicates (frame numbering
      // downstream counts decoded frames). The default would pick cfr or vfr by muxer.
      '-fps_mode', 'passthrough',
      // Write each TS packet group as soon as it is muxed instead of filling an I/O buffer.
      '-flush_packets', '1',
    ];
    if (opts.gop !== undefined) outputOptions.push('-g', String(opts.gop));
    command.noAudio().videoCodec('libx264').outputOptions(outputOptions).format(CHUNK_FORMAT);

    this.exited = new Promise<SourceExit>((resolve) => {
      const onExit = (error: Error | null, stderr: string | null): void => {
        clearTimeout(this.graceTimer);
        // Not spawned (capability check or spawn failed): nothing will end the output for us.
        if (this.child?.pid === undefined) this.output.end();
        resolve({ error, stderr, stopped: this.stopRequest !== 'none' });
      };
      command.on('end', (_stdout, stderr) => onExit(null, stderr));
      command.on('error', (err, _stdout, stderr) => onExit(err, stderr));
    });
    command.on('start', (commandLine) => {
      this.child = (command as unknown as { ffmpegProc?: ChildProcess }).ffmpegProc;
      log.debug('ingest: ffmpeg started', { commandLine });
      if (this.stopRequest === 'kill') this.signal('SIGKILL');
      else if (this.stopRequest === 'stop') this.interrupt();
    });
    command.pipe(this.output, { end: true });
  }

  /** Graceful: ffmpeg stops reading, flushes the encoder, ends the TS stream, exits. */
  stop(): void {
    if (this.stopRequest !== 'none') return;
    this.stopRequest = 'stop';
    if (this.child) this.interrupt();
  }

  /** Immediate; idempotent; a no-op once ffmpeg has exited. */
  kill(): void {
    this.stopRequest = 'kill';
    this.signal('SIGKILL');
  }

  private interrupt(): void {
    this.signal('SIGINT');
    this.graceTimer = setTimeout(() => this.kill(), STOP_GRACE_MS);
  }

  private running(): boolean {
    const c = this.child;
    return c !== undefined && c.pid !== undefined && c.exitCode === null && c.signalCode === null;
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.running()) this.child!.kill(sig);
  }
}

async function ensureTopic(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    // Checked first: creating an existing topic makes kafkajs log a protocol error.
    if ((await admin.listTopics()).includes(topic)) return;
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          numPartitions: 1,
          configEntries: [{ name: 'max.message.bytes', value: String(TOPIC_MAX_MESSAGE_BYTES) }],
        },
      ],
    });
  } catch (err) {
    if (!isTopicExists(err)) throw err;
  } finally {
    await admin.disconnect();
  }
}

function isTopicExists(err: unknown): boolean {
  const e = err as { type?: string; errors?: { type?: string }[] };
  if (e?.type === 'TOPIC_ALREADY_EXISTS') return true;
  return Array.isArray(e?.errors) && e.errors.length > 0 && e.errors.every((x) => x?.type === 'TOPIC_ALREADY_EXISTS');
}

function publishError(err: unknown, what: string): FramewireError {
  const e = err as { message?: string; retriable?: boolean; name?: string };
  const retriable = e?.retriable === true || e?.name === 'KafkaJSConnectionError' || e?.name === 'KafkaJSNumberOfRetriesExceeded';
  return new FramewireError('SINK_PUBLISH_FAILED', 'ingest', `${what}: ${e?.message ?? String(err)}`, { retriable, cause: err });
}

function lastLine(text: string | null): string | undefined {
  if (!text) return undefined;
  const lines = text.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (line) return line;
  }
  return undefined;
}

function isNetworkInput(input: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(input);
}

/** kafkajs warnings and errors through our logger, each distinct one once: retries repeat them. */
function kafkaLogCreator(): (entry: LogEntry) => void {
  return ({ namespace, level, log: entry }) => {
    const msg = `kafkajs ${namespace}: ${entry.message}`;
    log.once(level === logLevel.ERROR ? 'error' : 'warn', msg, msg, { broker: entry.broker as unknown });
  };
}
