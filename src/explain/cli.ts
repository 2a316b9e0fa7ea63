/**
 * `framewire explain STREAM FRAME [--session S]`: where a frame's label came from. Reads the
 * labels topic (and the events topic, for a frame that was dropped) up to its end and prints the
 * frame's lineage (docs/contracts.md): its chunk's partition and offset, the model and version,
 * the batch and its queueing, the topology hash. Exit 0 found, 1 not found (or Kafka failed), 2
 * bad arguments.
 */
import type { Command } from 'commander';
import { Kafka, logLevel } from 'kafkajs';
import type { DroppedEvent, LabelRecord } from '../core/frame.js';
import { readTopicToEnd } from '../kafka/topic-reader.js';
import { addTopicReaderOptions, topicReaderOptions, type TopicReaderFlags } from '../ingest/security.js';
import { explainFrame, formatExplanation } from './explain.js';

interface ExplainFlags extends TopicReaderFlags {
  session?: string;
  labelsTopic?: string;
  eventsTopic?: string;
}

/** Adds `explain` to the program; `done` receives the exit code. */
export function addExplainCommand(program: Command, done: (code: number) => void): void {
  const cmd = program
    .command('explain')
    .description("where a frame's label came from: its chunk (partition, offset), model version, batch and queueing, topology hash")
    .argument('<stream>', 'stream id')
    .argument('<frame>', 'frame number in its session')
    .option('--session <id>', "the stream's session (default: the latest one that has the frame)")
    .option('--labels-topic <topic>', 'labels topic (env FRAMEWIRE_LABELS_TOPIC, default video.labels)')
    .option('--events-topic <topic>', 'events topic (env FRAMEWIRE_EVENTS_TOPIC, default video.events)');
  addTopicReaderOptions(cmd, 'read only records published in the last <ms> (default: the whole topic)').action(async (stream: string, frame: string, values: ExplainFlags) => done(await explain(stream, frame, values)));
}

function usageError(message: string): number {
  process.stderr.write(`framewire explain: ${message}\n(add --help for usage)\n`);
  return 2;
}

export async function explain(stream: string, frameText: string, values: ExplainFlags): Promise<number> {
  if (!/^\d+$/.test(frameText)) return usageError(`FRAME must be a frame number (0, 1, …), got '${frameText}'`);
  const frame = Number(frameText);
  const opts = topicReaderOptions(values);
  if (typeof opts === 'string') return usageError(opts);
  const { brokers, security } = opts;
  const labelsTopic = values.labelsTopic ?? (process.env.FRAMEWIRE_LABELS_TOPIC || 'video.labels');
  const eventsTopic = values.eventsTopic ?? (process.env.FRAMEWIRE_EVENTS_TOPIC || 'video.events');
  const sinceMs = values.sinceMs === undefined ? undefined : Date.now() - Number(values.sinceMs);
  const timeoutMs = Number(values.timeoutMs ?? 30_000);

  const kafka = new Kafka({ clientId: 'framewire-explain', brokers, logLevel: logLevel.NOTHING, ...security });
  const admin = kafka.admin();
  const labels: LabelRecord[] = [];
  const dropped: DroppedEvent[] = [];
  // A stream's records are keyed by its id: others are skipped unparsed.
  const key = Buffer.from(stream, 'utf8');
  const collect = (want: 'label' | 'dropped', out: unknown[]) => (_p: number, m: { key: Buffer | null; value: Buffer | null }) => {
    if (!m.key?.equals(key) || !m.value) return;
    try {
      const v = JSON.parse(m.value.toString('utf8')) as { type?: string };
      if (v.type === want) out.push(v);
    } catch {
      /* not a framewire record */
    }
  };
  try {
    await admin.connect();
    const read = await Promise.all([
      readTopicToEnd(kafka, admin, labelsTopic, { sinceMs, timeoutMs, groupPrefix: 'framewire-explain' }, collect('label', labels)),
      readTopicToEnd(kafka, admin, eventsTopic, { sinceMs, timeoutMs, groupPrefix: 'framewire-explain' }, collect('dropped', dropped)),
    ]);
    if (read.some((r) => !r.complete)) console.error(`framewire explain: reading did not reach the end of the topics within ${timeoutMs} ms; the answer may be incomplete`);
  } catch (err) {
    console.error(`framewire explain: cannot read ${labelsTopic}/${eventsTopic} from ${brokers.join(',')}: ${(err as Error).message}`);
    return 1;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  const x = explainFrame(labels, dropped, stream, frame, values.session);
  if (x.kind === 'none') {
    const where = values.session === undefined ? `stream ${stream}` : `stream ${stream} session ${values.session}`;
    console.error(`framewire explain: no label record or dropped event of frame ${frame} of ${where} in ${labelsTopic}/${eventsTopic}${x.sessions.length ? ` (sessions with that frame: ${x.sessions.join(', ')})` : ''}`);
    return 1;
  }
  for (const line of formatExplanation(x, frame)) console.log(line);
  return 0;
}
