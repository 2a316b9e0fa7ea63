/**
 * The component registry is the only place a component type is named: a sink type registered by
 * this test (not by the product) is accepted by the topology schema and runs a real topology —
 * Kafka source, ffmpeg decode, Triton — with every frame labelled through it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod/v4';
import type { LabelRecord } from '../../src/core/frame.js';
import { FramewireError } from '../../src/core/errors.js';
import { parseTopology } from '../../src/config/load.js';
import { runIngest } from '../../src/ingest/ingest.js';
import { buildTopology } from '../../src/topology/builder.js';
import { registry } from '../../src/topology/registry.js';
import type { RunningTopology } from '../../src/topology/running.js';
import type { PipelineEvent } from '../../src/core/events.js';
import type { EventBatch, LabelBatch, Sink } from '../../src/core/sink.js';
import { checkLabels, hasAllFrames } from '../helpers/accounting.js';
import { colourVideo } from '../helpers/colours.js';
import { BROKERS, ensureStack, randomId } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';

const TYPE = `memory-${randomId()}`;

/** A sink that keeps what it is given, as a new component folder would define it. */
class MemorySink implements Sink {
  readonly name = TYPE;
  readonly labels: LabelRecord[] = [];
  readonly events: PipelineEvent[] = [];
  constructor(readonly tag: string) {}
  async publishLabels(batch: LabelBatch): Promise<void> {
    // The shared serialisation is what a real sink sends: check it is the record's own JSON.
    for (const text of batch.json) this.labels.push(JSON.parse(text) as LabelRecord);
    assert.equal(batch.json.length, batch.records.length);
  }
  async publishEvents(batch: EventBatch): Promise<void> {
    this.events.push(...batch.records);
  }
  async close(): Promise<void> {}
}

const built: MemorySink[] = [];

describe('registry: a sink type registered by the test runs a topology', { timeout: 120_000 }, () => {
  let topo: TestTopology;
  let graph: RunningTopology | undefined;
  let text: string;

  before(async () => {
    ensureStack();
    topo = await newTopology({ mode: 'replay' });
    // The generated topology with its sinks replaced by one of the test's own type.
    const yaml = readFileSync(topo.file, 'utf8');
    text = yaml.replace(/sinks:\n(  - .*\n)+/, `sinks:\n  - { type: ${TYPE}, tag: blue-team }\n`);
    assert.notEqual(text, yaml, 'the sinks section was not replaced');
  });

  after(async () => {
    await graph?.close();
    await removeTopology(topo);
  });

  test('an unregistered type is a topology error naming the field', () => {
    assert.throws(
      () => parseTopology(text, topo.file),
      (err: unknown) => err instanceof FramewireError && err.code === 'TOPOLOGY_INVALID' && err.message.includes('sinks[0]') && err.message.includes('type'),
    );
  });

  test('once registered, its schema checks its fields and the topology runs through it', async () => {
    registry.sink({
      type: TYPE,
      schema: z.strictObject({ type: z.literal(TYPE), tag: z.string().min(1).describe('Free text kept by the sink.') }).describe('Test sink.'),
      build: async (_ctx, c) => {
        const s = new MemorySink(c.tag);
        built.push(s);
        return s;
      },
    });
    // Its own schema now validates its entry: a field it does not declare names the path.
    assert.throws(() => parseTopology(text.replace('tag: blue-team', 'tag: blue-team, colour: red'), topo.file), /sinks\[0\]/);

    graph = await buildTopology(parseTopology(text, topo.file));
    await graph.start();
    assert.equal(built.length, 1);
    assert.equal(built[0]!.tag, 'blue-team');

    const stream = `${topo.name}-cam`;
    const video = colourVideo(320, 240, 25, [
      { colour: 'red', frames: 20 },
      { colour: 'green', frames: 20 },
      { colour: 'blue', frames: 20 },
    ]);
    const { session } = await runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo.chunks, gop: 10 });
    const sink = built[0]!;
    assert.ok(await waitUntil(() => hasAllFrames(sink.labels, stream, session, video.frames), 60_000), `only ${sink.labels.length} of ${video.frames} labels reached the test sink`);
    const check = checkLabels(sink.labels.filter((r) => r.session === session), video);
    assert.deepEqual(check.missing, []);
    assert.equal(check.wrong.length, 0, `wrong labels: ${JSON.stringify(check.wrong.slice(0, 5))}`);
  });
});
