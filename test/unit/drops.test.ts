import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DropPublisher } from '../../src/topology/drops.js';
import { OutputStage } from '../../src/sinks/output.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import type { PipelineEvent } from '../../src/core/events.js';
import type { Sink, EventBatch } from '../../src/core/sink.js';
import type { DropReason, FrameOwner } from '../../src/core/frame.js';
import { FramewireError } from '../../src/core/errors.js';

class MemorySink implements Sink {
  readonly name = 'memory';
  events: PipelineEvent[] = [];
  failures = 0;
  retriable = true;
  async publishLabels(): Promise<void> {}
  async publishEvents(batch: EventBatch): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw new FramewireError('SINK_PUBLISH_FAILED', 'sink', 'broker down', { retriable: this.retriable });
    }
    this.events.push(...batch.records);
  }
  async close(): Promise<void> {}
}

class Owner implements FrameOwner {
  done: [number, number, DropReason][] = [];
  framePublished(): void {}
  framesDropped(from: number, to: number, reason: DropReason): void {
    this.done.push([from, to, reason]);
  }
}

test('consecutive drops of one session and reason merge into one event', async () => {
  const sink = new MemorySink();
  const r = new DropPublisher(new OutputStage([sink], new Metrics()), new Metrics(), 10_000);
  const o = new Owner();
  for (let i = 3; i <= 7; i++) r.drop(o, 'cam-1', 's', i, i, 'deadline');
  r.drop(o, 'cam-1', 's', 9, 9, 'deadline'); // not consecutive
  r.drop(o, 'cam-1', 's', 10, 10, 'overload'); // other reason
  r.drop(o, 'cam-2', 's', 0, 1, 'deadline'); // other stream
  await r.flush();
  const ev = sink.events.map((e) => e as unknown as { stream: string; fromFrame: number; toFrame: number; reason: string; count: number });
  assert.deepEqual(
    ev.map((e) => [e.stream, e.fromFrame, e.toFrame, e.reason, e.count]),
    [
      ['cam-1', 3, 7, 'deadline', 5],
      ['cam-1', 9, 9, 'deadline', 1],
      ['cam-1', 10, 10, 'overload', 1],
      ['cam-2', 0, 1, 'deadline', 2],
    ],
  );
  assert.equal(o.done.length, 4, 'frames are finished only after the events are published');
});

test('frames stay unfinished until a failing sink finally accepts the event', async () => {
  const sink = new MemorySink();
  // Failing until told otherwise: full-jitter retries could get past a fixed number of failures
  // within any wait the test picks.
  sink.failures = Infinity;
  const r = new DropPublisher(new OutputStage([sink], new Metrics()), new Metrics(), 10_000);
  const o = new Owner();
  r.drop(o, 'cam-1', 's', 0, 0, 'infer-failed');
  const p = r.flush();
  await new Promise((res) => setTimeout(res, 150));
  assert.equal(o.done.length, 0);
  sink.failures = 0;
  await p;
  assert.deepEqual(o.done, [[0, 0, 'infer-failed']]);
  assert.equal(sink.events.length, 1);
});

test('a refused event or a shutdown abort leaves the frames unfinished (uncommitted), and the flush ends', async () => {
  const sink = new MemorySink();
  sink.failures = 1;
  sink.retriable = false;
  const o = new Owner();
  const r = new DropPublisher(new OutputStage([sink], new Metrics()), new Metrics(), 10_000);
  r.drop(o, 'cam-1', 's', 0, 0, 'deadline');
  await r.flush();
  assert.deepEqual(o.done, [], 'not finished: the next run redoes the frame');

  const ac = new AbortController();
  const broken = new MemorySink();
  broken.failures = Infinity;
  const r2 = new DropPublisher(new OutputStage([broken], new Metrics(), ac.signal), new Metrics(), 10_000);
  r2.drop(o, 'cam-1', 's', 1, 1, 'deadline');
  const p = r2.close();
  setTimeout(() => ac.abort(), 300);
  const t0 = Date.now();
  await p;
  assert.ok(Date.now() - t0 < 1000, 'shutdown is not held by a broker that never comes back');
  assert.deepEqual(o.done, []);
});
