/** The output stage's fan-out: each sink retried on its own, partial failure, abort, best effort. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutputStage } from '../../src/sinks/output.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { RecordBatch, type EventBatch, type LabelBatch, type Sink } from '../../src/core/sink.js';
import type { PipelineEvent } from '../../src/core/events.js';
import type { LabelRecord } from '../../src/core/frame.js';
import { FramewireError } from '../../src/core/errors.js';

/** A sink that fails its next `failures` calls (retriable or not) and counts every call. */
class CountingSink implements Sink {
  calls = 0;
  received: number[] = [];
  events = 0;
  constructor(
    readonly name: string,
    public failures = 0,
    private readonly retriable = true,
  ) {}
  async publishLabels(batch: LabelBatch): Promise<void> {
    this.calls++;
    if (this.failures > 0) {
      this.failures--;
      throw new FramewireError('SINK_PUBLISH_FAILED', 'sink', `${this.name} down`, { retriable: this.retriable });
    }
    for (const r of batch.records) this.received.push(r.frame);
  }
  async publishEvents(_batch: EventBatch): Promise<void> {
    this.calls++;
    if (this.failures > 0) {
      this.failures--;
      throw new FramewireError('SINK_PUBLISH_FAILED', 'sink', `${this.name} down`, { retriable: this.retriable });
    }
    this.events++;
  }
  async close(): Promise<void> {}
}

function labels(from: number, n: number): LabelBatch {
  const records: LabelRecord[] = [];
  for (let i = 0; i < n; i++) records.push({ type: 'label', stream: 'cam', session: 's', frame: from + i, ptsMs: 0, captureTs: 0, model: 'm', modelVersion: '1', labels: [], publishedTs: 0 });
  return new RecordBatch(records);
}

test('a sink that fails is retried on its own: the healthy one gets every label exactly once', async () => {
  const kafka = new CountingSink('kafka', 3);
  const ws = new CountingSink('websocket');
  const out = new OutputStage([kafka, ws], new Metrics());
  for (let b = 0; b < 3; b++) assert.equal(await out.deliver('labels', labels(b * 10, 10), 'labels'), 'ok');
  assert.deepEqual(ws.received, [...Array(30).keys()], 'each label once, in order');
  assert.equal(ws.calls, 3, 'one call per batch: the retries of the failing sink did not resend to it');
  assert.deepEqual(kafka.received, [...Array(30).keys()]);
  assert.equal(kafka.calls, 3 + 3, 'the failing sink was retried until it took the batch');
});

test('a sink that refuses for good makes the delivery fail; the others still have it once', async () => {
  const refusing = new CountingSink('kafka', 1, false);
  const ws = new CountingSink('websocket');
  const out = new OutputStage([refusing, ws], new Metrics());
  assert.equal(await out.deliver('labels', labels(0, 4), 'labels'), 'failed');
  assert.equal(refusing.calls, 1, 'not retried');
  assert.deepEqual(ws.received, [0, 1, 2, 3]);
});

test('shutdown aborts a delivery to a sink that never comes back', async () => {
  const ac = new AbortController();
  const out = new OutputStage([new CountingSink('kafka', Infinity), new CountingSink('websocket')], new Metrics(), ac.signal);
  const p = out.deliver('events', new RecordBatch<PipelineEvent>([{ type: 'dropped', stream: 'cam', session: 's', fromFrame: 0, toFrame: 0, reason: 'shutdown', count: 1 }]), 'dropped events');
  setTimeout(() => ac.abort(), 200);
  const t0 = Date.now();
  assert.equal(await p, 'aborted');
  assert.ok(Date.now() - t0 < 1000);
});

test('best effort: each sink once, a failure stays with its sink, and settled() waits for the sends', async () => {
  const failing = new CountingSink('kafka', 1);
  const ws = new CountingSink('websocket');
  const out = new OutputStage([failing, ws], new Metrics());
  out.bestEffort(new RecordBatch<PipelineEvent>([{ type: 'change', stream: 'cam', session: 's', model: 'm', from: 'a', to: 'b', atFrame: 0, captureTs: 0 }]), 'change events');
  await out.settled();
  assert.equal(failing.calls, 1, 'not retried');
  assert.equal(failing.events, 0);
  assert.equal(ws.events, 1);
});
