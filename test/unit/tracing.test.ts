/** Traces of sampled frames: which frames, which spans, with which parent (a local OTLP/HTTP receiver, no stack). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { FrameTracer, sampledParent, telemetrySchema } from '../../src/telemetry/tracing.js';
import { OtlpReceiver } from '../helpers/otlp.js';
import { trace } from '@opentelemetry/api';

const TOPICS = { chunks: 'video.chunks', group: 'framewire', labels: 'video.labels' };

test('a sampled traceparent is a remote parent; unsampled, malformed or all-zero ones are not', () => {
  const ctx = sampledParent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
  assert.ok(ctx);
  const sc = trace.getSpanContext(ctx)!;
  assert.equal(sc.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(sc.spanId, '00f067aa0ba902b7');
  assert.equal(sc.isRemote, true);
  assert.equal(sampledParent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00'), undefined, 'not sampled');
  assert.equal(sampledParent('00-00000000000000000000000000000000-00f067aa0ba902b7-01'), undefined);
  assert.equal(sampledParent('garbage'), undefined);
  assert.equal(sampledParent(undefined), undefined);
});

test('no endpoint: no tracer at all', () => {
  assert.equal(FrameTracer.create(telemetrySchema.parse({}), TOPICS), undefined);
});

test('spans of a delivered batch: process <topic> with messaging attributes, children in stage order, a traceparent continued', async () => {
  const rx = await OtlpReceiver.start();
  try {
    const config = telemetrySchema.parse({ otlp: { endpoint: rx.url, sampleRatio: 0.5 } });
    // Frames 0 and 2 are drawn below the ratio, frame 1 above it; frame 3 has a sampled traceparent.
    const draws = [0.1, 0.9, 0.2, 0.99];
    const tracer = FrameTracer.create(config, TOPICS, () => draws.shift() ?? 1)!;
    const t = performance.now();
    const frame = (index: number, traceparent?: string) => ({ stream: 'cam-1', session: 's1', index, traceparent, partition: 2, offset: String(100 + index), fedAt: t, decodedAt: t + 3 });
    tracer.delivered([frame(0), frame(1), frame(2), frame(3, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')], {
      model: 'colour_probe',
      modelVersion: '1',
      batchSize: 4,
      sentAt: t + 10,
      answeredAt: t + 20,
      publishStart: t + 21,
      publishEnd: t + 30,
    });
    await tracer.close();
    const roots = rx.spans.filter((s) => s.name === 'process video.chunks');
    assert.deepEqual(roots.map((r) => r.attributes['framewire.frame']).sort(), [0, 2, 3], 'frames 0 and 2 by ratio, 3 by its traceparent, not 1');
    for (const r of roots) {
      assert.equal(r.kind, 5, 'CONSUMER');
      assert.equal(r.service, 'framewire');
      assert.equal(r.attributes['messaging.system'], 'kafka');
      assert.equal(r.attributes['messaging.destination.name'], 'video.chunks');
      assert.equal(r.attributes['messaging.consumer.group.name'], 'framewire');
      assert.equal(r.attributes['messaging.destination.partition.id'], '2');
      assert.equal(r.attributes['messaging.kafka.offset'], 100 + Number(r.attributes['framewire.frame']));
      const kids = rx.spans.filter((s) => s.parentSpanId === r.spanId).sort((a, b) => a.startMs - b.startMs);
      assert.deepEqual(kids.map((k) => k.name), ['decode', 'batch', 'infer colour_probe', 'publish video.labels']);
      for (let i = 1; i < kids.length; i++) assert.ok(kids[i]!.startMs >= kids[i - 1]!.endMs - 0.01, `${kids[i]!.name} starts before ${kids[i - 1]!.name} ends`);
      assert.ok(r.startMs <= kids[0]!.startMs && r.endMs >= kids[3]!.endMs - 0.01, 'children inside the process span');
      assert.ok(Math.abs(r.endMs - r.startMs - 30) < 1, `process span ${r.endMs - r.startMs} ms, fed to delivered is 30 ms`);
    }
    const continued = roots.find((r) => r.attributes['framewire.frame'] === 3)!;
    assert.equal(continued.traceId, '4bf92f3577b34da6a3ce929d0e0e4736', 'the chunk header\'s trace goes on');
    assert.equal(continued.parentSpanId, '00f067aa0ba902b7');
    assert.notEqual(roots.find((r) => r.attributes['framewire.frame'] === 0)!.traceId, continued.traceId, 'a sampled frame without a header starts its own trace');
  } finally {
    await rx.close();
  }
});
