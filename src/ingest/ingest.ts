/**
 * `framewire ingest`: act as a camera. ffmpeg reads a source and writes an H.264 MPEG-TS byte
 * stream to stdout; the bytes are cut into chunks (at most 1 MiB, boundaries arbitrary by
 * contract) and produced to Kafka in order, with the fw-* headers of the video-chunks contract.
 *
 * Data flow: ffmpeg stdout → chunker (+ TsWatcher: keyframes, PAT/PMT) → OutageBuffer → one
 * sender loop (sender.ts) → idempotent producer, acks from all replicas. A file read as fast as
 * possible blocks when the buffer is full (stdout is no longer read, ffmpeg waits); a live source
 * keeps `bufferMs` of stream through a broker outage, then drops its oldest chunks and goes on in
 * a new session from the next keyframe (buffer.ts, sender.ts).
 *
 * Codec: an H.264 source is remuxed (-c:v copy), anything else encoded with libx264 (--codec auto,
 * decided by ffprobe). --loop: one ffmpeg, one session, pts increasing across passes (loopArgs).
 * Capture time: see capture.ts. End of session: the last record carries
 * fw-eos: 1, whether the input ended, the run was stopped or ffmpeg failed mid-stream (the
 * processor should flush what it got at once in every case).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { FfmpegProcess, type FfmpegExit } from '../core/ffmpeg-process.js';
import { CHUNK_TOPIC_MAX_MESSAGE_BYTES, MAX_CHUNK_BYTES } from '../core/ack.js';
import { ensureTopics } from '../kafka/topics.js';
import { Kafka, Partitioners, logLevel, type KafkaConfig, type Producer } from 'kafkajs';
import { FramewireError } from '../core/errors.js';
import { kafkaConnectError } from '../kafka/security.js';
import { log } from '../core/log.js';
import { ingestKafkaLogCreator } from '../kafka/log.js';
import { kafkaRetriable } from '../kafka/errors.js';
import { EpochEstimator, VIDEO_PID } from './capture.js';
import { Chunker } from './chunker.js';
import { OutageBuffer, TsWatcher } from './buffer.js';
import { Sender, type IngestGap, type IngestSession } from './sender.js';
import { retry } from '../core/retry.js';

/** copy: remux the source's H.264 as is; x264: encode; auto: copy when ffprobe says h264. */
export type IngestCodec = 'copy' | 'x264' | 'auto';
export const INGEST_CODECS: readonly IngestCodec[] = ['copy', 'x264', 'auto'];

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
  /**
   * Repeat the input forever as one continuous session with increasing pts: a file by
   * -stream_loop -1, a lavfi graph by ffmpeg's loop filter (its first pass held in memory,
   * bounded by LAVFI_LOOP_MAX_BYTES; see loopArgs).
   */
  loop?: boolean;
  /** Largest chunk value in bytes; default and hard maximum 1 MiB. */
  chunkBytes?: number;
  /** Session id; default a random 8-hex id per run. */
  session?: string;
  /** Keyframe interval in frames (x264 -g); default: a keyframe every 2 s. Not used when remuxing. */
  gop?: number;
  /** Remux or encode; default 'auto'. lavfi inputs are always encoded. */
  codec?: IngestCodec;
  /**
   * Idle time in ms after which a partial chunk is sent; 0 (default) sends it as soon as the
   * reader has nothing more buffered (each stdout read is one frame's packets with -flush_packets 1).
   */
  lingerMs?: number;
  /** Stop early: ffmpeg finishes its stream, every produced chunk is sent, the call resolves. */
  signal?: AbortSignal;
  /**
   * Stream time held while the broker is unreachable, ms (default 10 s). A live or paced source
   * then drops its oldest chunks and goes on in a new session from the next keyframe; a file read
   * as fast as possible waits instead.
   */
  bufferMs?: number;
  /** Give up (INGEST_BROKER_GONE) after the broker has been unreachable this long, ms (default 5 min). */
  giveUpAfterMs?: number;
  /** kafkajs TLS/SASL options (src/ingest/security.ts). */
  kafkaSecurity?: Pick<KafkaConfig, 'ssl' | 'sasl'>;
}

export interface IngestResult {
  session: string;
  chunks: number;
  bytes: number;
  /** What ffmpeg did with the video: remuxed or encoded with libx264. */
  codec?: 'copy' | 'x264';
  /** fw-epoch-ms of the session (undefined when nothing was produced). */
  epochMs?: number;
  /** Frames the source produced. */
  frames: number;
  /** Every session of the run (more than one after a gap), with the frames that reached the broker in it. */
  sessions: IngestSession[];
  /** Frames lost while the broker was unreachable, one entry per gap. */
  gaps: IngestGap[];
}

export { MAX_CHUNK_BYTES };
const MAX_CHUNK_BYTES_ = MAX_CHUNK_BYTES;
export const CHUNK_FORMAT = 'mpegts';

/**
 * Default idle time before a partial chunk is sent: none. With -flush_packets 1 each stdout read
 * is one frame's packets, so a read followed by nothing buffered is a whole frame. Measured with a
 * paced 320x240 25 fps pattern, 5 s, 3 runs each: 115 records for 122 frames vs 111 for 120 with a
 * 10 ms linger, capture→appended median 14 ms vs 20 ms.
 */
const LINGER_MS = 0;
/**
 * A live or paced session's epoch is the best estimate over this long after ffmpeg's first bytes
 * (capture.ts); the first chunk waits for it, so the session's first frames reach the processor
 * this much older. The end of the probing burst alone can be 35-80 ms late (x264 starting at
 * 720p; a B-frame file's first P-frame); measured on a quiet machine, the estimate at 100 ms came
 * within 0-5 ms of the whole run's best (5 sources, 2 runs each), at 300 ms within 0-2 ms. At
 * 300 ms the first 2-4 frames of every session arrived past a 250 ms budget.
 */
const EPOCH_WINDOW_MS = 100;
/** ffprobe of the input (codec, B-frames) gives up after this long. */
const PROBE_TIMEOUT_MS = 20_000;
/** A file read as fast as possible: bytes cut but not yet sent; when full, stdout is no longer read. */
const QUEUE_BYTES = 8 * MAX_CHUNK_BYTES_;
/** A live source's outage buffer is bounded by --buffer-ms, and by this many bytes whatever the bitrate. */
const OUTAGE_MAX_BYTES = 256 * MAX_CHUNK_BYTES_;
export const DEFAULT_BUFFER_MS = 10_000;
/** After a stop request, how long unsent chunks may still wait for the broker, ms. */
const STOP_SEND_GRACE_MS = 5000;
export const DEFAULT_GIVE_UP_AFTER_MS = 300_000;
/** Value bytes per produce request: brokers cap a whole record batch (message.max.bytes). */
const MAX_SEND_BYTES = MAX_CHUNK_BYTES;
/** After SIGTERM, ffmpeg has this long to flush its encoder and close the stream before SIGKILL. */
const STOP_GRACE_MS = 5000;
/** stderr lines kept for the exit report; we only report the last one. */
const STDERR_LINES = 20;

/** An option runIngest cannot use: `framewire ingest` exits with the usage code (2). */
function badArgument(message: string): FramewireError {
  return new FramewireError('INGEST_ARGUMENT_INVALID', 'ingest', message);
}

export async function runIngest(opts: IngestOptions): Promise<IngestResult> {
  const chunkBytes = opts.chunkBytes ?? MAX_CHUNK_BYTES;
  if (!Number.isInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES) {
    throw badArgument(`chunkBytes must be an integer from 1 to ${MAX_CHUNK_BYTES}, got ${chunkBytes}`);
  }
  if (opts.gop !== undefined && (!Number.isInteger(opts.gop) || opts.gop < 1)) {
    throw badArgument(`gop must be a positive integer, got ${opts.gop}`);
  }
  if (opts.codec !== undefined && !INGEST_CODECS.includes(opts.codec)) {
    throw badArgument(`codec must be one of ${INGEST_CODECS.join(', ')}, got ${String(opts.codec)}`);
  }
  const lingerMs = opts.lingerMs ?? LINGER_MS;
  if (!Number.isInteger(lingerMs) || lingerMs < 0) throw badArgument(`lingerMs must be a non-negative integer, got ${lingerMs}`);
  if (!opts.stream) throw badArgument('stream id must not be empty');
  if (!opts.input) throw badArgument('input must not be empty');
  if (opts.brokers.length === 0) throw badArgument('at least one broker is required');

  const result: IngestResult = { session: opts.session ?? randomBytes(4).toString('hex'), chunks: 0, bytes: 0, frames: 0, sessions: [], gaps: [] };
  if (opts.signal?.aborted) return result;
  const choice = await chooseCodec(opts);
  if (opts.signal?.aborted || choice === undefined) return result;
  result.codec = choice.codec;

  const kafka = new Kafka({
    clientId: 'framewire-ingest',
    brokers: opts.brokers,
    logLevel: logLevel.WARN,
    logCreator: ingestKafkaLogCreator,
    ...opts.kafkaSecurity,
  });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    // Short: the sender's own retries (backoff, --give-up-after) ride out an outage.
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  const giveUpAfterMs = opts.giveUpAfterMs ?? DEFAULT_GIVE_UP_AFTER_MS;
  try {
    // A broker not up yet is waited for, as long as a broker gone mid-stream would be.
    const since = Date.now();
    await retry(
      async () => {
        await ensureTopic(kafka, opts.topic);
        await producer.connect();
      },
      { attempts: Infinity, baseMs: 250, maxMs: 2000, signal: opts.signal, retriable: (err) => kafkaRetriable(err) && Date.now() - since < giveUpAfterMs },
    );
  } catch (err) {
    if (opts.signal?.aborted) return result;
    await producer.disconnect().catch(() => undefined);
    throw kafkaConnectError(err, opts.brokers, 'ingest') ?? publishError(err, `cannot prepare topic '${opts.topic}' on ${opts.brokers.join(',')}`);
  }
  try {
    await pump(opts, { chunkBytes, lingerMs, codec: choice.codec, sourceCodec: choice.sourceCodec, loop: choice.loop }, producer, result);
    return result;
  } finally {
    await producer.disconnect().catch((err: unknown) => log.warn('ingest: producer disconnect failed', { err }));
  }
}

interface PumpSettings {
  chunkBytes: number;
  lingerMs: number;
  codec: 'copy' | 'x264';
  /** The source's video codec as ffprobe names it; undefined for lavfi. */
  sourceCodec?: string;
  /** How --loop repeats the input (undefined: no --loop). */
  loop?: LoopArgs;
}

/**
 * How the session's epoch is taken: at the first bytes for a source read as fast as possible
 * (there is no capture time; the run's start is as good as any), else by EpochEstimator.
 */
function pacedSource(opts: IngestOptions): boolean {
  return opts.realtime === true || isNetworkInput(opts.input);
}

async function pump(opts: IngestOptions, settings: PumpSettings, producer: Producer, result: IngestResult): Promise<void> {
  if (opts.signal?.aborted) return; // aborted while connecting: nothing to start
  const { chunkBytes, lingerMs } = settings;
  const source = new FfmpegSource(opts, settings.codec, settings.loop);
  const onAbort = (): void => {
    // From now on the end is near: keep the last bytes back so the final record carries fw-eos.
    chunker.stop();
    source.stop();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const paced = pacedSource(opts);
  // Asked to stop: the last chunks get STOP_SEND_GRACE_MS to reach a broker that is away, then the
  // sender stops retrying (the unsent frames are the last gap) so the run ends.
  const stopSending = new AbortController();
  const stopTimer = (): void => void setTimeout(() => stopSending.abort(), STOP_SEND_GRACE_MS).unref();
  opts.signal?.addEventListener('abort', stopTimer, { once: true });
  // A live source cannot wait for the broker: it drops its oldest chunks; a file can.
  const queue = new OutageBuffer(
    paced ? { maxMs: opts.bufferMs ?? DEFAULT_BUFFER_MS, maxBytes: OUTAGE_MAX_BYTES, dropWhenFull: true } : { maxMs: Infinity, maxBytes: QUEUE_BYTES, dropWhenFull: false },
  );
  const watcher = new TsWatcher();
  const sender = new Sender({
    producer,
    topic: opts.topic,
    stream: opts.stream,
    session: result.session,
    format: CHUNK_FORMAT,
    epochMs: () => chunker.epochMs!,
    watcher,
    buffer: queue,
    maxSendBytes: MAX_SEND_BYTES,
    giveUpAfterMs: opts.giveUpAfterMs ?? DEFAULT_GIVE_UP_AFTER_MS,
    stopSignal: stopSending.signal,
  });
  let sendError: unknown;
  const sending = sender.run().catch((err: unknown) => {
    sendError = err;
    queue.close();
    source.kill();
  });
  const report = (): void => {
    result.chunks = sender.chunks;
    result.bytes = sender.bytes;
    result.frames = watcher.frames;
    result.sessions = sender.sessions;
    result.gaps = sender.gaps;
  };

  const chunker = new Chunker({
    chunkBytes,
    lingerMs,
    paced,
    epochWindowMs: EPOCH_WINDOW_MS,
    estimator: new EpochEstimator(isRtsp(opts.input) && (settings.sourceCodec === 'h264' || settings.sourceCodec === 'hevc')),
    watcher,
    queue,
    onEpoch: (ms) => (result.epochMs = ms),
  });

  let ended = false;
  try {
    try {
      ended = await readLoop();
    } finally {
      chunker.dispose();
    }
    // ffmpeg's output ended (input over, stopped, or failed): the last record of the session says so.
    if (ended) await chunker.end();
    queue.close();
    await sending;
    report();
    const exit = await source.exited;
    if (sendError !== undefined) throw sendError instanceof FramewireError ? sendError : publishError(sendError, `producing to '${opts.topic}' failed`);
    if (exit.error && !exit.requested) {
      const detail = lastLine(exit.stderr.join('\n')) ?? exit.error.message;
      const message =
        chunker.seq === 0
          ? `cannot read input '${opts.input}': ${detail}`
          : `input '${opts.input}' failed after ${chunker.seq} chunks: ${detail}`;
      throw new FramewireError('INGEST_SOURCE_FAILED', 'ingest', message, {
        retriable: chunker.seq > 0 && isNetworkInput(opts.input),
        cause: exit.error,
      });
    }
  } finally {
    report();
    opts.signal?.removeEventListener('abort', onAbort);
    opts.signal?.removeEventListener('abort', stopTimer);
    queue.close();
    source.kill();
    await source.exited;
    await sending;
  }

  /** Reads ffmpeg's stdout to its end (true) or until the sender failed (false). */
  async function readLoop(): Promise<boolean> {
    for await (const data of source.output as AsyncIterable<Buffer>) {
      if (!(await chunker.write(data, source.output.readableLength))) return false; // closed: the sender failed
    }
    return true;
  }
}

/** One ffmpeg child reading the source (the shared supervisor: SIGTERM, grace, then SIGKILL). */
class FfmpegSource {
  /** Closed by us (end of stdout), not by the child's 'close', so the exit is read first. */
  readonly output = new PassThrough({ emitClose: false, highWaterMark: 256 * 1024 });
  readonly exited: Promise<FfmpegExit>;
  private readonly proc: FfmpegProcess;

  constructor(opts: IngestOptions, codec: 'copy' | 'x264', loop: LoopArgs | undefined) {
    const args = ['-hide_banner', '-nostdin', '-loglevel', 'error'];
    if (opts.realtime) args.push('-re');
    if (loop) args.push(...loop.inputOptions);
    if (isLavfi(opts.input)) {
      args.push('-f', 'lavfi', '-i', opts.input.slice('lavfi:'.length));
    } else {
      if (isRtsp(opts.input)) args.push(...RTSP_INPUT_OPTIONS);
      args.push('-i', inputArg(opts.input));
    }

    args.push('-map', '0:v:0', '-sn', '-dn', '-an');
    if (loop?.videoFilter) args.push('-vf', loop.videoFilter);
    if (codec === 'copy') {
      // Remux as is. ffmpeg 5.1's mpegts muxer inserts h264_mp4toannexb (hevc_mp4toannexb) by
      // itself when the packets are length-prefixed (MP4/MKV sources); Annex B input passes.
      args.push('-c:v', 'copy');
    } else {
      args.push(
        '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
        // Keep every source frame with its own timestamp: no drops, no duplicates (frame numbering
        // downstream counts decoded frames). The default would pick cfr or vfr by muxer.
        '-fps_mode', 'passthrough',
      );
      // x264's own default is 250 frames (10 s at 25 fps): a processor that must skip ahead to a
      // keyframe (a late start, a backlog) would lose up to 10 s. A camera for live analysis
      // sends one every 2 s, whatever its frame rate.
      if (opts.gop !== undefined) args.push('-g', String(opts.gop));
      else args.push('-force_key_frames', 'expr:gte(t,n_forced*2)');
    }
    args.push(
      // Write each TS packet group as soon as it is muxed instead of filling an I/O buffer.
      '-flush_packets', '1',
      // PES packets with their length: a receiver knows a frame is complete at its last byte
      // instead of when the next frame's packet starts (ffmpeg leaves video PES lengths 0 by default).
      '-omit_video_pes_length', '0',
      // The video PID that capture.ts reads the PTS from (also ffmpeg's default).
      '-mpegts_start_pid', String(VIDEO_PID),
      '-f', CHUNK_FORMAT, 'pipe:1',
    );

    this.proc = FfmpegProcess.spawn(process.env.FFMPEG_PATH || 'ffmpeg', args, { stderrLines: STDERR_LINES, graceMs: STOP_GRACE_MS });
    log.debug('ingest: ffmpeg started', { args });
    this.exited = this.proc.exited.then((exit) => {
      // Not spawned: nothing will end the output for us.
      if (exit.reason === 'spawn-failed') this.output.end();
      return exit;
    });
    this.proc.stdout.pipe(this.output, { end: true });
  }

  /** Graceful: ffmpeg stops reading, flushes the encoder, ends the TS stream, exits. */
  stop(): void {
    void this.proc.stop();
  }

  /** Immediate; idempotent; a no-op once ffmpeg has exited. */
  kill(): void {
    void this.proc.kill();
  }
}

/** The chunk topic as the processor would create it, in case ingest runs first. */
async function ensureTopic(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureTopics(admin, [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(CHUNK_TOPIC_MAX_MESSAGE_BYTES) }] }]);
  } finally {
    await admin.disconnect();
  }
}

function publishError(err: unknown, what: string): FramewireError {
  const e = err as { message?: string; retriable?: boolean; name?: string };
  const retriable = kafkaRetriable(err);
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

/**
 * RTSP input: TCP interleaving survives NAT and loss far better than RTSP's default UDP; a socket
 * timeout (µs) so a camera that stops answering ends the session instead of hanging ffmpeg.
 */
const RTSP_INPUT_OPTIONS = ['-rtsp_transport', 'tcp', '-timeout', '10000000'];

function isLavfi(input: string): boolean {
  return input.startsWith('lavfi:');
}

function isRtsp(input: string): boolean {
  return /^rtsps?:\/\//i.test(input);
}

/** A path starting with '-' would be read as an option. */
function inputArg(input: string): string {
  return input.startsWith('-') ? `file:${input}` : input;
}

/**
 * How --loop repeats an input, as ffmpeg options. A file (or a seekable URL) is read again from
 * its start (-stream_loop -1; ffmpeg offsets the timestamps of each pass). The lavfi device
 * cannot seek, so -stream_loop did nothing for a test pattern: its single pass ended the session.
 * A lavfi graph goes through ffmpeg's loop filter instead, after the device: the first pass is
 * sent as it is made and kept (as yuv420p, what the encoder takes anyway), then repeated forever
 * with pts continuing from the end of the pass, so the stream is one session whose capture times
 * keep increasing, as a real camera's would. Input pacing (-re) ends with the first pass, so a
 * paced graph is paced from then on by the realtime filter. The kept frames are bounded by
 * LAVFI_LOOP_MAX_BYTES: a graph longer than that (or endless) repeats its first `loopFrames`.
 * Pure: `frameBytes` is one yuv420p frame of the graph (lavfiFrameBytes).
 */
export function loopArgs(input: string, o: { realtime: boolean; frameBytes?: number }): LoopArgs {
  if (!isLavfi(input)) return { inputOptions: ['-stream_loop', '-1'] };
  if (o.frameBytes === undefined || !(o.frameBytes > 0)) throw new RangeError('a lavfi loop needs the frame size');
  const loopFrames = Math.max(1, Math.min(LOOP_FILTER_MAX_FRAMES, Math.floor(LAVFI_LOOP_MAX_BYTES / o.frameBytes)));
  return {
    inputOptions: [],
    videoFilter: `format=yuv420p,loop=loop=-1:size=${loopFrames}:start=0${o.realtime ? ',realtime' : ''}`,
    loopFrames,
  };
}

export interface LoopArgs {
  /** Before -i. */
  inputOptions: string[];
  /** The output's -vf (lavfi only). */
  videoFilter?: string;
  /** lavfi: the most frames the loop filter keeps (and repeats). */
  loopFrames?: number;
}

/** Memory ffmpeg may spend on a looped lavfi graph's first pass (decoded frames). */
export const LAVFI_LOOP_MAX_BYTES = 512 * 1024 * 1024;
/** The loop filter's own limit on `size` (ffmpeg 5.1: INT16_MAX). */
const LOOP_FILTER_MAX_FRAMES = 32767;

/** Bytes of one yuv420p frame: the luma plane and two quarter-size chroma planes. */
export function lavfiFrameBytes(width: number, height: number): number {
  return width * height + 2 * Math.ceil(width / 2) * Math.ceil(height / 2);
}

/**
 * The B-frame warning: what the stream will cost downstream. ffprobe's has_b_frames is the
 * decoder's reorder depth: every decoder of the stream holds that many frames back before it can
 * put one out, i.e. has_b_frames × frame duration of latency on every frame.
 */
export function bFramesWarning(hasBFrames: number, fps: number | undefined): string {
  const depth = `has_b_frames=${hasBFrames}`;
  const cost =
    fps !== undefined && fps > 0
      ? `~${Math.round((hasBFrames * 1000) / fps)} ms of reorder delay at ${Number(fps.toFixed(2))} fps`
      : `${hasBFrames} frame${hasBFrames === 1 ? '' : 's'} of reorder delay`;
  return `ingest: the source has B-frames, ${depth}: ${cost} in every decoder of the stream; use --codec x264 to re-encode without B-frames`;
}

/** An ffprobe rate ("25/1", "30000/1001"); undefined for "0/0" and the like. */
export function parseRate(rate: string | undefined): number | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(rate ?? '');
  if (!m) return undefined;
  const [num, den] = [Number(m[1]), Number(m[2])];
  return num > 0 && den > 0 ? num / den : undefined;
}

/**
 * copy or x264 for this input, and how --loop repeats it. lavfi is always encoded (and probed
 * only when looped, for its frame size); any other input is asked ffprobe about its first video
 * stream (a missing file fails here, before Kafka), and a warning is logged when its B-frames will
 * reach the processor (remuxed): each costs a frame of reorder delay in every decoder that reads
 * it. Undefined when aborted.
 */
async function chooseCodec(opts: IngestOptions): Promise<{ codec: 'copy' | 'x264'; sourceCodec?: string; loop?: LoopArgs } | undefined> {
  const mode = opts.codec ?? 'auto';
  const realtime = opts.realtime === true;
  if (isLavfi(opts.input)) {
    if (!opts.loop) return { codec: 'x264' };
    const video = await probeVideo(opts);
    if (video === undefined) return undefined;
    const loop = loopArgs(opts.input, { realtime, frameBytes: lavfiFrameBytes(video.width, video.height) });
    const frames = loop.loopFrames!;
    const bound = `${frames} frames${video.fps ? `, ${Number((frames / video.fps).toFixed(1))} s` : ''}, ${Math.round((frames * lavfiFrameBytes(video.width, video.height)) / (1 << 20))} MiB`;
    log.info(`ingest: --loop on a lavfi graph: its first pass is kept (at most ${bound}) and repeated, pts continuing; a longer graph repeats its first ${frames} frames`, {
      input: opts.input,
      size: `${video.width}x${video.height}`,
    });
    return { codec: 'x264', loop };
  }
  const video = await probeVideo(opts);
  if (video === undefined) return undefined;
  const loop = opts.loop ? loopArgs(opts.input, { realtime }) : undefined;
  if (mode === 'copy') {
    if (video.codec !== 'h264' && video.codec !== 'hevc') {
      throw new FramewireError(
        'INGEST_SOURCE_FAILED',
        'ingest',
        `cannot remux '${opts.input}': its video is ${video.codec}, --codec copy needs H.264 or H.265 (use --codec auto or x264)`,
      );
    }
  }
  const codec = mode === 'copy' || (mode === 'auto' && video.codec === 'h264') ? 'copy' : 'x264';
  // Re-encoded by libx264 with -tune zerolatency: no B-frames reach the processor.
  if (codec === 'copy' && video.hasBFrames > 0) {
    log.warn(bFramesWarning(video.hasBFrames, video.fps), {
      input: opts.input,
      codec: video.codec,
      hasBFrames: video.hasBFrames,
      fps: video.fps,
      reorderMs: video.fps ? Math.round((video.hasBFrames * 1000) / video.fps) : undefined,
    });
  }
  return { codec, sourceCodec: video.codec, loop };
}

interface ProbedVideo {
  codec: string;
  hasBFrames: number;
  width: number;
  height: number;
  /** Frames per second (average, else the stream's base rate); undefined when ffprobe does not know. */
  fps?: number;
}

async function probeVideo(opts: IngestOptions): Promise<ProbedVideo | undefined> {
  const args = ['-v', 'error'];
  if (isRtsp(opts.input)) args.push(...RTSP_INPUT_OPTIONS);
  if (isLavfi(opts.input)) args.push('-f', 'lavfi', '-i', opts.input.slice('lavfi:'.length));
  else args.push(inputArg(opts.input));
  args.push('-select_streams', 'v:0', '-show_entries', 'stream=codec_name,has_b_frames,width,height,avg_frame_rate,r_frame_rate', '-of', 'json');
  const retriable = isNetworkInput(opts.input);
  let stdout: string;
  try {
    stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        'ffprobe',
        args,
        { timeout: PROBE_TIMEOUT_MS, killSignal: 'SIGKILL', signal: opts.signal, maxBuffer: 1 << 20 },
        (err, out, errOut) => (err ? reject(Object.assign(err, { stderrText: errOut })) : resolve(out)),
      );
    });
  } catch (err) {
    if (opts.signal?.aborted) return undefined;
    const e = err as Error & { stderrText?: string; killed?: boolean };
    const detail = e.killed ? `no answer in ${PROBE_TIMEOUT_MS / 1000} s` : (lastLine(e.stderrText ?? null) ?? e.message);
    throw new FramewireError('INGEST_SOURCE_FAILED', 'ingest', `cannot read input '${opts.input}': ${detail}`, { retriable, cause: err });
  }
  type Stream = { codec_name?: string; has_b_frames?: number; width?: number; height?: number; avg_frame_rate?: string; r_frame_rate?: string };
  const stream = (JSON.parse(stdout) as { streams?: Stream[] }).streams?.[0];
  if (!stream?.codec_name) {
    throw new FramewireError('INGEST_SOURCE_FAILED', 'ingest', `cannot read input '${opts.input}': it has no video stream`, { retriable });
  }
  return {
    codec: stream.codec_name,
    hasBFrames: Number(stream.has_b_frames ?? 0),
    width: Number(stream.width ?? 0),
    height: Number(stream.height ?? 0),
    fps: parseRate(stream.avg_frame_rate) ?? parseRate(stream.r_frame_rate),
  };
}

function isNetworkInput(input: string): boolean {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(input);
}
