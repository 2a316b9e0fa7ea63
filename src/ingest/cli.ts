/**
 * `framewire ingest --stream ID --input SRC [--brokers B] [--topic T] [--realtime] [--loop] [--codec copy|x264|auto] [--gop N]`
 * Exit codes: 0 when the input ended (or SIGINT/SIGTERM stopped it cleanly), 1 on failure, 2 on bad arguments.
 */
import { Option, type Command } from 'commander';
import { FramewireError } from '../core/errors.js';
import { INGEST_CODECS, runIngest, type IngestCodec } from './ingest.js';
import { DEFAULT_BROKERS, addKafkaSecurityOptions, ingestKafkaSecurity, type KafkaSecurityFlags } from './security.js';
const DEFAULT_TOPIC = 'video.chunks';

interface IngestFlags extends KafkaSecurityFlags {
  stream: string;
  input: string;
  brokers?: string;
  topic?: string;
  realtime?: boolean;
  loop?: boolean;
  codec: string;
  gop?: string;
  bufferMs?: string;
  giveUpAfter?: string;
}

/** Adds `ingest` to the program; `done` receives the exit code. */
export function addIngestCommand(program: Command, done: (code: number) => void): void {
  const cmd = program
    .command('ingest')
    .description('send a camera, file or test pattern to Kafka as MPEG-TS chunks (docs/contracts.md)')
    .requiredOption('--stream <id>', 'stream id (record key and fw-stream header)')
    .requiredOption('--input <src>', 'file path, rtsp:// or http(s):// URL, or lavfi:<filtergraph> test pattern')
    .option('--brokers <list>', `comma-separated Kafka brokers (env FRAMEWIRE_BROKERS, default ${DEFAULT_BROKERS})`)
    .option('--topic <topic>', `chunk topic (env FRAMEWIRE_CHUNKS_TOPIC, default ${DEFAULT_TOPIC})`)
    .option('--realtime', 'pace at the source frame rate')
    .option('--loop', 'repeat the input forever as one continuous session, pts increasing (a file: -stream_loop; a lavfi graph: its first pass kept in memory, at most 512 MiB, and repeated)')
    .option('--gop <frames>', 'when encoding: a keyframe every N frames (default: every 2 s)')
    .option('--buffer-ms <ms>', 'stream time held while the broker is unreachable (default 10000); a live source then drops its oldest chunks and goes on in a new session at the next keyframe')
    .option('--give-up-after <ms>', 'exit 1 once the broker has been unreachable this long (default 300000)')
    .addOption(
      new Option('--codec <codec>', 'copy: remux the source\'s H.264/H.265; x264: encode (veryfast, zerolatency); auto: copy when the source is H.264, else x264 (lavfi: always x264)')
        .choices(INGEST_CODECS)
        .default('auto'),
    );
  addKafkaSecurityOptions(cmd).action(async (values: IngestFlags) => done(await ingest(values)));
}

async function ingest(values: IngestFlags): Promise<number> {
  const brokers = (values.brokers ?? (process.env.FRAMEWIRE_BROKERS || DEFAULT_BROKERS))
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  if (brokers.length === 0) return usageError('--brokers names no broker');
  const topic = values.topic ?? (process.env.FRAMEWIRE_CHUNKS_TOPIC || DEFAULT_TOPIC);
  if (!topic) return usageError('--topic must not be empty');

  const codec = values.codec as IngestCodec;
  if (values.gop !== undefined && !/^[1-9]\d*$/.test(values.gop)) return usageError(`--gop must be a positive whole number of frames, got '${values.gop}'`);

  for (const [flag, v] of [['--buffer-ms', values.bufferMs], ['--give-up-after', values.giveUpAfter]] as const) {
    if (v !== undefined && !/^[1-9]\d*$/.test(v)) return usageError(`${flag} must be a positive whole number of milliseconds, got '${v}'`);
  }
  const kafkaSecurity = ingestKafkaSecurity(values);
  if (typeof kafkaSecurity === 'string') return usageError(kafkaSecurity);

  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await runIngest({
      stream: values.stream,
      input: values.input,
      brokers,
      topic,
      realtime: values.realtime ?? false,
      loop: values.loop ?? false,
      gop: values.gop === undefined ? undefined : Number(values.gop),
      codec,
      kafkaSecurity,
      signal: controller.signal,
      bufferMs: values.bufferMs === undefined ? undefined : Number(values.bufferMs),
      giveUpAfterMs: values.giveUpAfter === undefined ? undefined : Number(values.giveUpAfter),
    });
    const stopped = controller.signal.aborted ? ' (stopped by signal)' : '';
    const how = result.codec === 'copy' ? 'remuxed' : 'encoded';
    process.stderr.write(
      `framewire ingest: stream ${values.stream} session ${result.session} (${how}): ${result.chunks} chunks, ${result.bytes} bytes to ${topic}${stopped}\n` +
        `framewire ingest: ${result.frames} frames, ${result.sessions.reduce((n, s) => n + s.frames, 0)} sent in ${result.sessions.length} session(s) ` +
        `(${result.sessions.map((s) => `${s.session}: ${s.frames}`).join(', ')}); ${result.gaps.length} gap(s), ${lost(result)} frames lost` +
        `${result.gaps.map((g) => ` [${g.endedSession}→${g.nextSession ?? 'end'}: ${g.frames} frames, ${g.to - g.from} ms]`).join('')}\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof FramewireError && err.code === 'INGEST_ARGUMENT_INVALID') return usageError(err.message);
    process.stderr.write(`framewire ingest: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function lost(r: { gaps: { frames: number }[] }): number {
  return r.gaps.reduce((n, g) => n + g.frames, 0);
}

function usageError(message: string): number {
  process.stderr.write(`framewire ingest: ${message}\n(add --help for usage)\n`);
  return 2;
}
