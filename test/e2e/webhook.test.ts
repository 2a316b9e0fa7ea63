/**
 * Webhook sink end to end: a local HTTP receiver gets every alert record with a valid
 * `X-Framewire-Signature`; while the receiver is down for 5 s the alerts wait and arrive after it
 * is back, and the pipeline's labelled rate meanwhile is that of before.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type LabelRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo, type Segment } from '../helpers/colours.js';
import { Processor, scrapeMetrics, metricValue, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { ensureStack, freePort } from '../helpers/stack.js';
import { kafka, newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { sleep, waitUntil } from '../helpers/wait.js';
import { encodeVideo, sendVideo } from '../helpers/cameras.js';
import { signature } from '../../src/sinks/webhook/sink.js';
import type { AlertRecord } from '../../src/core/events.js';

const FPS = 25;
const SECRET = randomBytes(16).toString('hex');

interface Received {
  at: number;
  alert: AlertRecord;
  signed: boolean;
}

/** A receiver that can be taken down and brought back on the same port. */
class Receiver {
  readonly got: Received[] = [];
  private server: http.Server | undefined;
  constructor(readonly port: number) {}

  async up(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', () => {
        const body = Buffer.concat(parts);
        const want = Buffer.from(signature(SECRET, body));
        const have = Buffer.from(String(req.headers['x-framewire-signature'] ?? ''));
        this.got.push({ at: Date.now(), alert: JSON.parse(body.toString('utf8')) as AlertRecord, signed: have.length === want.length && timingSafeEqual(have, want) });
        res.writeHead(204);
        res.end();
      });
    });
    await new Promise<void>((r) => this.server!.listen(this.port, '127.0.0.1', r));
  }

  async down(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

describe('webhook sink', { timeout: 120_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let receiver: Receiver;
  let labels: TopicCollector | undefined;
  let alerts: TopicCollector | undefined;

  before(async () => {
    ensureStack();
    receiver = new Receiver(await freePort());
    await receiver.up();
    topo = await newTopology({
      mode: 'replay',
      extra: `alerts:\n  - { name: red, label: red, forMs: 0, clearMs: 200 }`,
      extraSinks: `  - { type: webhook, url: "http://127.0.0.1:${receiver.port}/hook", secret: "${SECRET}", backoffMs: 100, maxBackoffMs: 1000, timeoutMs: 1000 }`,
    });
    proc = Processor.run(topo.file, 'processor');
    await proc.waitReady(topo.httpBase);
    [labels, alerts] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.alerts)]);
  });

  after(async () => {
    await receiver?.down();
    await Promise.all([labels?.stop(), alerts?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('every alert arrives signed; a receiver down for 5 s gets them after, and the labelled rate does not change', async () => {
    await withLogs(() => [proc], async () => {
      // 14 s: red and blue alternating every 0.8 s, so an episode starts and ends every 1.6 s.
      const segments: Segment[] = [];
      for (let i = 0; i < 18; i++) segments.push({ colour: i % 2 ? 'blue' : 'red', frames: 20 });
      const video = colourVideo(320, 240, FPS, segments);
      const ts = encodeVideo(video.graph, FPS);
      const stream = `${topo.name}-hook`;
      const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const epochMs = Date.now() + 300;
      const downAt = epochMs + 4000;
      const upAt = downAt + 5000;
      const sending = sendVideo(producer, ts, { topic: topo.chunks, stream, session: randomBytes(4).toString('hex'), epochMs, paced: true, eos: true });
      await sleep(downAt - Date.now());
      await receiver.down();
      const sentBeforeDown = receiver.got.length;
      await sleep(upAt - Date.now());
      const duringDown = receiver.got.length - sentBeforeDown;
      await receiver.up();
      await sending;
      await producer.disconnect();

      const onKafka = () => alerts!.json<AlertRecord>().filter((a) => a.stream === stream);
      await waitUntil(() => onKafka().length >= 18 && receiver.got.length >= onKafka().length, 30_000);
      const kafkaAlerts = onKafka();
      const key = (a: AlertRecord) => `${a.id}:${a.state}`;
      console.log(`alerts on Kafka ${kafkaAlerts.length}, received by the webhook ${receiver.got.length} (${sentBeforeDown} before it went down, ${duringDown} while down)`);
      assert.equal(kafkaAlerts.length, 18, `9 red episodes: ${kafkaAlerts.map(key).join(' ')}`);
      assert.equal(duringDown, 0);
      assert.ok(sentBeforeDown > 0, 'some alerts arrived before the receiver went down');
      assert.deepEqual(receiver.got.map((g) => key(g.alert)), kafkaAlerts.map(key), 'every alert, in order, once');
      assert.ok(receiver.got.every((g) => g.signed), 'every request carries a valid signature');
      const late = receiver.got.filter((g) => g.alert.publishedTs >= downAt && g.alert.publishedTs < upAt);
      assert.ok(late.length > 0, 'alerts were published while the receiver was down');
      assert.ok(late.every((g) => g.at >= upAt), 'those arrived after it came back');

      // Labelled rate while the receiver was down against the 3 s before.
      const published = labels!.json<LabelRecord>().filter((l) => l.stream === stream).map((l) => l.publishedTs);
      const rate = (from: number, to: number) => published.filter((t) => t >= from && t < to).length / ((to - from) / 1000);
      const beforeRate = rate(downAt - 3000, downAt);
      const downRate = rate(downAt, upAt);
      console.log(`LABELLED RATE: ${beforeRate.toFixed(1)} frames/s in the 3 s before the receiver went down, ${downRate.toFixed(1)} frames/s while it was down`);
      assert.ok(downRate >= 0.85 * beforeRate && downRate >= 0.85 * FPS, `labelled rate fell while the receiver was down: ${downRate} vs ${beforeRate}`);
      const metrics = await scrapeMetrics(topo.httpBase);
      assert.ok(metricValue(metrics, 'framewire_webhook_errors_total') > 0, 'failed attempts are counted');
      assert.equal(metricValue(metrics, 'framewire_webhook_dropped_total'), 0);
    });
  });
});
