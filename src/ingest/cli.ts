/**
 * `framewire ingest --stream ID --input SRC [--brokers B] [--topic T] [--realtime] [--loop] [--codec copy|x264|auto] [--gop N]`
 * Exit codes: 0 when the input ended (or SIGINT/SIGTERM stopped it cleanly), 1 on failure, 2 on bad arguments.
 */
import { parseArgs } from 'node:util';
import { INGEST_CODECS, runIngest, type IngestCodec } from './ingest.js';
import { SECURITY_OPTIONS, SECURITY_USAGE, ingestKafkaSecurity } from './security.js';

const USAGE = `usage: framewire ingest --stream ID --input SRC [--brokers B] [--topic T] [--realtime] [--loop] [--codec copy|x264|auto] [--gop N] [Kafka TLS/SASL options]
  --stream ID    stream id (record key and fw-stream header)
  --input SRC    file path, rtsp:// or http(s):// URL, or lavfi:<filtergraph> test pattern
  --brokers B    comma-separated Kafka brokers (env FRAMEWIRE_BROKERS, default 127.0.0.1:9092)
  --topic T      chunk topic (env FRAMEWIRE_CHUNKS_TOPIC, default video.chunks)
  --realtime     pace at the source frame rate
  --loop         repeat a file forever as one continuous session
  --gop N        when encoding: a keyframe every N frames (default: every 2 s)
  --codec C      copy: remux the source's H.264/H.265; x264: encode (veryfast, zerolatency);
                 auto (default): copy when the source is H.264, else x264 (lavfi: always x264)
${SECURITY_USAGE}`;

const DEFAULT_BROKERS = '127.0.0.1:9092';
const DEFAULT_TOPIC = 'video.chunks';

export async function ingestCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        stream: { type: 'string' },
        input: { type: 'string' },
        brokers: { type: 'string' },
        topic: { type: 'string' },
        realtime: { type: 'boolean' },
        loop: { type: 'boolean' },
        codec: { type: 'string' },
        gop: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...SECURITY_OPTIONS,
      },
    }));
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.stream) return usageError('--stream is required');
  if (!values.input) return usageError('--input is required');
  const brokers = (values.brokers ?? (process.env.FRAMEWIRE_BROKERS || DEFAULT_BROKERS))
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  if (brokers.length === 0) return usageError('--brokers names no broker');
  const topic = values.topic ?? (process.env.FRAMEWIRE_CHUNKS_TOPIC || DEFAULT_TOPIC);
  if (!topic) return usageError('--topic must not be empty');

  const codec = (values.codec ?? 'auto') as IngestCodec;
  if (!INGEST_CODECS.includes(codec)) return usageError(`--codec must be one of ${INGEST_CODECS.join(', ')}`);
  if (values.gop !== undefined && !/^[1-9]\d*$/.test(values.gop)) return usageError(`--gop must be a positive whole number of frames, got '${values.gop}'`);

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
    });
    const stopped = controller.signal.aborted ? ' (stopped by signal)' : '';
    const how = result.codec === 'copy' ? 'remuxed' : 'encoded';
    process.stderr.write(
      `framewire ingest: stream ${values.stream} session ${result.session} (${how}): ${result.chunks} chunks, ${result.bytes} bytes to ${topic}${stopped}\n`,
    );
    return 0;
  } catch (err) {
    process.stderr.write(`framewire ingest: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function usageError(message: string): number {
  process.stderr.write(`framewire ingest: ${message}\n${USAGE}`);
  return 2;
}
