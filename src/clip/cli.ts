/**
 * `framewire clip ALERT_ID -o FILE [--mp4]` (issue #19): the video of an alert's episode, fetched
 * from the chunk topic itself; no second recording system. The alert's records (alerts topic)
 * name the chunk its clip starts at (`clipOffset`: the keyframe decoding `fromFrame` starts from)
 * and the chunk its last frame began in (`offset` of the `resolved` record, or of the `firing`
 * one while the episode is open). The session's chunks from the first to one past the last (the
 * last frame may end in the next chunk) are written as they are on the topic: an MPEG-TS file,
 * or with `--mp4` remuxed by ffmpeg without re-encoding. So the file holds the episode's frames
 * from the keyframe on, and a few after its last frame (the rest of the last chunk or two); the
 * summary line says which of its frames are the episode's.
 *
 * Exit 0 written, 1 not found (no such alert in the time read, chunks deleted by the topic's
 * retention, Kafka or ffmpeg failed), 2 bad arguments.
 */
import { unlink, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { Kafka, logLevel } from 'kafkajs';
import type { AlertRecord } from '../core/events.js';
import { FfmpegProcess } from '../core/ffmpeg-process.js';
import { oneShotReads, readSessionChunks, readTopicToEnd } from '../kafka/topic-reader.js';
import type { SessionChunks } from '../core/source.js';
import { addTopicReaderOptions, topicReaderOptions, type TopicReaderFlags } from '../ingest/security.js';

/** Chunks of the session kept after the one the last frame began in: its access unit may end in the next. */
export const TAIL_CHUNKS = 1;

interface ClipFlags extends TopicReaderFlags {
  output?: string;
  mp4?: boolean;
  alertsTopic?: string;
  chunksTopic?: string;
}

export function addClipCommand(program: Command, done: (code: number) => void): void {
  const cmd = program
    .command('clip')
    .description("an alert's episode as a video file, from the chunk topic: the keyframe before its first frame to its last frame")
    .argument('<alert-id>', "the alert's id (its records' `id`)")
    .requiredOption('-o, --output <file>', 'where to write the clip')
    .option('--mp4', 'MP4 (remuxed by ffmpeg, not re-encoded) instead of MPEG-TS')
    .option('--alerts-topic <topic>', 'alerts topic (env FRAMEWIRE_ALERTS_TOPIC, default video.alerts)')
    .option('--chunks-topic <topic>', 'chunk topic (env FRAMEWIRE_CHUNKS_TOPIC, default video.chunks)');
  addTopicReaderOptions(cmd, 'look for the alert in the records of the last <ms> (default 86400000)').action(async (id: string, values: ClipFlags) => done(await clip(id, values)));
}

function usageError(message: string): number {
  process.stderr.write(`framewire clip: ${message}\n(add --help for usage)\n`);
  return 2;
}

function notFound(message: string): number {
  process.stderr.write(`framewire clip: ${message}\n`);
  return 1;
}

/** What a clip is cut from: the alert's records. */
export interface ClipPlan {
  stream: string;
  session: string;
  partition: number;
  /** The keyframe's chunk (first written) and the chunk the last frame began in. */
  fromOffset: string;
  toOffset: string;
  clipFrame: number;
  fromFrame: number;
  lastFrame: number;
  /** The episode is still open: the clip ends at the frame it fired at. */
  open: boolean;
}

/** The clip of an episode from its records (firing, and resolved when there is one); a string says why there is none. */
export function planClip(records: readonly AlertRecord[]): ClipPlan | string {
  const firing = records.filter((r) => r.state === 'firing').at(-1);
  const resolved = records.filter((r) => r.state === 'resolved').at(-1);
  const first = firing ?? resolved;
  if (!first) return 'no records';
  if (first.fromFrame < 0) return 'a stale alert with no frame labelled before the stall has no video';
  const end = resolved ?? firing!;
  const start = [firing, resolved].find((r) => r?.clipOffset !== undefined && r.clipFrame !== undefined);
  if (!start || end.partition === undefined || end.offset === undefined || start.partition !== end.partition) {
    return 'its records carry no clip lineage (`clipOffset`: published before framewire 0.4, or its chunks were not read from Kafka)';
  }
  return {
    stream: first.stream,
    session: first.session,
    partition: end.partition,
    fromOffset: String(start.clipOffset),
    toOffset: String(end.offset),
    clipFrame: start.clipFrame!,
    fromFrame: first.fromFrame,
    lastFrame: end.atFrame,
    open: !resolved,
  };
}

export async function clip(id: string, values: ClipFlags): Promise<number> {
  if (!values.output) return usageError('-o FILE is required');
  const opts = topicReaderOptions(values);
  if (typeof opts === 'string') return usageError(opts);
  const { brokers, security } = opts;
  const alertsTopic = values.alertsTopic ?? (process.env.FRAMEWIRE_ALERTS_TOPIC || 'video.alerts');
  const chunksTopic = values.chunksTopic ?? (process.env.FRAMEWIRE_CHUNKS_TOPIC || 'video.chunks');
  const timeoutMs = Number(values.timeoutMs ?? 30_000);
  const kafka = new Kafka({ clientId: 'framewire-clip', brokers, logLevel: logLevel.NOTHING, ...security });
  const admin = kafka.admin();
  const records: AlertRecord[] = [];
  let plan: ClipPlan | string;
  let read: SessionChunks | string;
  try {
    await admin.connect();
    await readTopicToEnd(kafka, admin, alertsTopic, { sinceMs: Date.now() - Number(values.sinceMs ?? 86_400_000), timeoutMs, groupPrefix: 'framewire-clip' }, (_p, m) => {
      if (!m.value) return;
      try {
        const r = JSON.parse(m.value.toString('utf8')) as AlertRecord;
        if (r.type === 'alert' && r.id === id) records.push(r);
      } catch {
        /* not a framewire record */
      }
    });
    if (records.length === 0) return notFound(`no alert '${id}' on '${alertsTopic}' in the time read`);
    plan = planClip(records);
    if (typeof plan === 'string') return notFound(`alert '${id}': ${plan}`);
    const p = plan;
    read = await readSessionChunks(oneShotReads(kafka, admin, chunksTopic, 'framewire-clip'), chunksTopic, { stream: p.stream, session: p.session, partition: p.partition, fromOffset: p.fromOffset, toOffset: p.toOffset, tailChunks: TAIL_CHUNKS, timeoutMs });
  } catch (err) {
    return notFound(`reading Kafka failed: ${(err as Error).message}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  const p = plan;
  if (typeof read === 'string') return notFound(`alert '${id}': ${read}`);
  const { chunks } = read;
  const bytes = Buffer.concat(chunks.map((c) => c.value));
  try {
    const failed = values.mp4 ? await remuxToMp4(bytes, values.output) : void (await writeFile(values.output, bytes));
    if (failed) return notFound(`writing ${values.output} failed: ${failed}`);
  } catch (err) {
    return notFound(`writing ${values.output} failed: ${(err as Error).message}`);
  }
  process.stdout.write(
    `clip of alert ${id}: stream ${p.stream} session ${p.session}, frames ${p.clipFrame}- (from the keyframe before the episode's first frame ${p.fromFrame}; its last frame ${p.lastFrame}${p.open ? ', still firing: the frame it fired at' : ''}); ` +
      `the episode is the file's frames ${p.fromFrame - p.clipFrame}-${p.lastFrame - p.clipFrame}; ` +
      `chunks fw-seq ${chunks[0]!.seq}-${chunks.at(-1)!.seq} (partition ${p.partition}, offsets ${chunks[0]!.offset}-${chunks.at(-1)!.offset}), ${bytes.length} bytes -> ${values.output}\n`,
  );
  return 0;
}

/** The MPEG-TS bytes as MP4, streams copied (no re-encoding); what went wrong, if anything. */
async function remuxToMp4(ts: Buffer, file: string): Promise<string | undefined> {
  const proc = FfmpegProcess.spawn(process.env.FFMPEG_PATH || 'ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'mpegts', '-i', 'pipe:0', '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4', file], { stderrLines: 20 });
  proc.stdin.on('error', () => undefined);
  proc.stdin.end(ts);
  const exit = await proc.exited;
  if (exit.reason !== 'ended') {
    await unlink(file).catch(() => undefined);
    return `ffmpeg ${exit.reason}: ${exit.stderr.join(' / ') || exit.error?.message || ''}`;
  }
  return undefined;
}
