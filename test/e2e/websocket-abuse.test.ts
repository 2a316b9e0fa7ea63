/**
 * WebSocket abuse, on the real processor: 50 clients with a token, 10 of which never read
 * (their sockets are paused: the kernel buffers fill, then the server's). Four streams are sent
 * as fast as the processor can label them, with 8 labels a record, so each client is offered
 * several MB, more than the kernel buffers of a connection hold. The processor's RSS stays
 * bounded (non-readers are skipped, then disconnected), and every reader gets every label and
 * event, as on Kafka. A client without a token is refused and a client whose token covers none
 * of the streams gets nothing, not even after asking to subscribe to them.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { Kafka, logLevel } from 'kafkajs';
import { encodeVideo, sendVideo } from '../helpers/cameras.js';
import { type LabelRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, fmtStatus, metricValue, scrapeMetrics, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS, ensureStack, randomId } from '../helpers/stack.js';
import { newTopology, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitQuiet, waitUntil } from '../helpers/wait.js';

const STREAMS = 4;
/** colour_clip: 8 frames per inference item, 64x64, so the processor labels frames fastest. */
const MODEL = process.env.FW_ABUSE_MODEL ?? 'colour_clip';
const FRAMES = Number(process.env.FW_ABUSE_FRAMES ?? 1200);
/**
 * Long stream ids (~1 KB; the contract sets no limit) make each label ~1.5 KB, so a client is
 * offered several MB from a few thousand frames: the test's length then hardly depends on how fast
 * the shared Triton is at the moment.
 */
const streamId = (base: string, s: number) => `${base}-${s}-${'long-camera-name-'.repeat(60)}`;
const CLIENTS = Number(process.env.FW_ABUSE_CLIENTS ?? 50);
const NON_READERS = Number(process.env.FW_ABUSE_NON_READERS ?? 10);
const MAX_BUFFERED = Number(process.env.FW_ABUSE_MAX_BUFFERED ?? 64 * 1024);
const TOKENS = { FW_ABUSE_TOKEN: `abuse-${randomId(12)}`, FW_ABUSE_TOKEN_NONE: `none-${randomId(12)}` };

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

interface Client {
  ws: WebSocket;
  /** label keys stream/session/frame */
  labels: Set<string>;
  labelMessages: number;
  bytes: number;
  events: Map<string, number>;
  other: Record<string, unknown>[];
  closed: boolean;
}

function connect(url: string, token: string, read: boolean): Promise<Client> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
    const c: Client = { ws, labels: new Set(), labelMessages: 0, bytes: 0, events: new Map(), other: [], closed: false };
    ws.on('message', (data: Buffer) => {
      c.bytes += data.length;
      const m = JSON.parse(String(data)) as Record<string, unknown> & { type: string };
      if (m.type === 'label') {
        c.labelMessages++;
        c.labels.add(`${String(m.stream)}/${String(m.session)}/${String(m.frame)}`);
      } else if (m.type === 'dropped' || m.type === 'change' || m.type === 'stream') c.events.set(m.type, (c.events.get(m.type) ?? 0) + 1);
      else c.other.push(m);
    });
    ws.on('close', () => (c.closed = true));
    ws.on('error', () => undefined);
    ws.once('open', () => {
      if (!read) ws.pause(); // never reads again: what arrives stays in the kernel, then in the server
      resolve(c);
    });
    ws.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

describe('WebSocket abuse: 50 clients, 10 never reading', { timeout: 240_000 }, () => {
  let topo: TestTopology;
  let proc: Processor | undefined;
  let labels: TopicCollector | undefined;
  let events: TopicCollector | undefined;
  const clients: Client[] = [];
  const saved = { ...process.env };

  before(async () => {
    ensureStack();
    topo = await newTopology({ mode: 'replay', partitions: STREAMS, idleTimeoutMs: 3000 });
    let text = readFileSync(topo.file, 'utf8');
    const swap = (from: RegExp, to: string) => {
      assert.match(text, from);
      text = text.replace(from, to);
    };
    swap(/^http: .*$/m, `http: { listen: "127.0.0.1:${topo.port}", auth: { tokens: [ { name: abuse, secret: { env: FW_ABUSE_TOKEN } }, { name: none, secret: { env: FW_ABUSE_TOKEN_NONE }, streams: "^no-such-stream-" } ] } }`);
    swap(/name: colour_probe, topK: 3/, `name: ${MODEL}, topK: 8`);
    swap(/- \{ type: websocket, path: \/ws \}/, `- { type: websocket, path: /ws, maxBufferedBytes: ${MAX_BUFFERED}, slowClientTimeoutMs: 2000, maxClients: 100 }`);
    writeFileSync(topo.file, text);
    Object.assign(process.env, TOKENS);
    proc = Processor.run(topo.file, 'processor');
    for (const k of Object.keys(TOKENS)) if (saved[k] === undefined) delete process.env[k];
    await proc.waitReady(topo.httpBase, 60_000);
    [labels, events] = await Promise.all([TopicCollector.start(topo.labels), TopicCollector.start(topo.events)]);
  });

  after(async () => {
    for (const c of clients) c.ws.terminate();
    await Promise.all([labels?.stop(), events?.stop()]);
    await stopAllProcessors();
    await removeTopology(topo);
  });

  test('RSS stays bounded, every reader gets every message, the unauthorised and the out-of-scope client get nothing', async () => {
    await withLogs(() => [proc], async () => {
      const load0 = os.loadavg();
      // Refused before anything is sent: no token, a wrong one.
      for (const headers of [{}, { authorization: 'Bearer wrong' }]) {
        const ws = new WebSocket(topo.wsUrl, { headers });
        const status = await new Promise<number>((resolve) => {
          ws.once('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
          ws.once('open', () => resolve(101));
          ws.once('error', () => resolve(-1));
        });
        assert.equal(status, 401);
        ws.terminate();
      }
      const outOfScope = await connect(topo.wsUrl, TOKENS.FW_ABUSE_TOKEN_NONE, true);
      for (let i = 0; i < CLIENTS; i++) clients.push(await connect(topo.wsUrl, TOKENS.FW_ABUSE_TOKEN, i >= NON_READERS));
      const readers = clients.slice(NON_READERS);
      assert.equal(metricValue(await scrapeMetrics(topo.httpBase), 'framewire_websocket_clients'), CLIENTS + 1);

      const video = colourVideo(64, 48, 25, Array.from({ length: FRAMES / 40 }, (_, i) => ({ colour: (['red', 'green', 'blue', 'yellow'] as const)[i % 4]!, frames: 40 })));
      const encoded = encodeVideo(video.graph, 50);
      const rss0 = rssBytes(proc!.pid);
      let rssMax = rss0;
      let bufferedMax = 0;
      const sampler = setInterval(() => {
        rssMax = Math.max(rssMax, rssBytes(proc!.pid));
        scrapeMetrics(topo.httpBase).then((m) => (bufferedMax = Math.max(bufferedMax, metricValue(m, 'framewire_websocket_buffered_bytes'))), () => undefined);
      }, 250);
      const t0 = Date.now();
      const kafka = new Kafka({ clientId: 'fw-abuse-camera', brokers: BROKERS, logLevel: logLevel.NOTHING });
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await producer.connect();
      try {
        await Promise.all(
          Array.from({ length: STREAMS }, (_, s) => {
            return sendVideo(producer, encoded, { topic: topo.chunks, stream: streamId(topo.name, s), session: randomId(), epochMs: Date.now(), paced: false, eos: true, framesPerChunk: 25 });
          }),
        );
      } finally {
        await producer.disconnect();
      }
      const expected = STREAMS * FRAMES;
      // Every frame accounted for on Kafka: labelled, or in a `dropped` event (replay mode drops
      // nothing by design; a frame a decoder loses is still reported, and the readers must get
      // that report too).
      const accounted = () => {
        let n = labels!.records.length;
        for (const e of events!.json<{ type: string; count?: number }>()) if (e.type === 'dropped') n += e.count ?? 0;
        return n;
      };
      const labelled = await waitUntil(() => accounted() >= expected, 150_000, 250);
      // Changes are published after their labels; let the last ones arrive.
      await waitQuiet(() => readers.reduce((n, c) => n + c.labelMessages, 0) + events!.records.length, 1500, 20_000);
      // A non-reader is cut off once it has been behind for slowClientTimeoutMs (2 s here), whether
      // or not more messages come; on a fast run the stream may end before that.
      await waitUntil(async () => metricValue(await scrapeMetrics(topo.httpBase), 'framewire_websocket_rejected_total', { reason: 'slow' }) >= NON_READERS, 5000, 250);
      clearInterval(sampler);
      const seconds = (Date.now() - t0) / 1000;
      const load1 = os.loadavg();
      const metrics = await scrapeMetrics(topo.httpBase);
      const skipped = metricValue(metrics, 'framewire_websocket_messages_skipped_total');
      // A paused client does not notice its socket closed: the server's count says who is left.
      const cutOff = metricValue(metrics, 'framewire_websocket_rejected_total', { reason: 'slow' });
      const connected = metricValue(metrics, 'framewire_websocket_clients');
      console.log(
        `${labels!.records.length} labels of ${expected} frames (${(readers[0]!.bytes / 2 ** 20).toFixed(1)} MB a client) in ${seconds.toFixed(1)} s to ${CLIENTS} clients (${NON_READERS} not reading): processor RSS ${(rss0 / 2 ** 20).toFixed(0)} MB before, max ${(rssMax / 2 ** 20).toFixed(0)} MB (+${((rssMax - rss0) / 2 ** 20).toFixed(0)} MB); ` +
          `max queued for WebSocket clients ${(bufferedMax / 2 ** 10).toFixed(0)} KiB; messages skipped ${skipped}, slow clients cut off ${cutOff}; load average ${load0.map((x) => x.toFixed(1)).join(' ')} → ${load1.map((x) => x.toFixed(1)).join(' ')}`,
      );
      assert.ok(labelled, `only ${accounted()} of ${expected} frames accounted for on Kafka (${labels!.records.length} labels)`);

      // What Kafka has is what every reader must have.
      const kafkaLabels = new Set(labels!.json<LabelRecord>().map((l) => `${l.stream}/${l.session}/${l.frame}`));
      assert.equal(kafkaLabels.size, labels!.records.length, 'no label twice on Kafka');
      const kafkaEvents = new Map<string, number>();
      const droppedBy = new Map<string, number>();
      for (const e of events!.json<{ type: string; reason?: string; count?: number }>()) {
        kafkaEvents.set(e.type, (kafkaEvents.get(e.type) ?? 0) + 1);
        if (e.type === 'dropped') droppedBy.set(String(e.reason), (droppedBy.get(String(e.reason)) ?? 0) + (e.count ?? 0));
      }
      if (droppedBy.size > 0) console.log(`frames reported dropped instead of labelled: ${JSON.stringify(Object.fromEntries(droppedBy))}`);
      for (const [i, r] of readers.entries()) {
        assert.equal(r.closed, false, `reader ${i} was disconnected`);
        assert.equal(r.labels.size, kafkaLabels.size, `reader ${i} got ${r.labels.size} of ${kafkaLabels.size} labels`);
        for (const k of kafkaLabels) if (!r.labels.has(k)) assert.fail(`reader ${i} lacks label ${k}`);
        assert.deepEqual(Object.fromEntries(r.events), Object.fromEntries(kafkaEvents), `reader ${i}: events as on Kafka`);
      }
      // The non-readers were skipped, then cut off; the memory they could pin is bounded by that.
      assert.ok(skipped > 0, 'non-reading clients were skipped');
      assert.equal(cutOff, NON_READERS, 'every non-reader was cut off');
      assert.equal(connected, CLIENTS - NON_READERS + 1, 'the readers and the out-of-scope client are still connected');
      // Each client's queue stops at the limit (plus the one message that crossed it).
      assert.ok(bufferedMax > MAX_BUFFERED, `the non-readers' queues were exercised (max ${bufferedMax} bytes)`);
      assert.ok(bufferedMax <= CLIENTS * (MAX_BUFFERED + 1024), `at most ${bufferedMax} bytes queued for WebSocket clients`);
      assert.ok(rssMax - rss0 < 120 * 2 ** 20, `RSS grew by ${((rssMax - rss0) / 2 ** 20).toFixed(0)} MB`);
      // Out of scope: nothing at all, and asking for the streams is refused.
      assert.equal(outOfScope.labelMessages + outOfScope.events.size, 0, 'a token for other streams received messages');
      outOfScope.ws.send(JSON.stringify({ type: 'subscribe', streams: [streamId(topo.name, 0)] }));
      await waitUntil(() => outOfScope.other.length > 0, 3000);
      assert.equal(outOfScope.other[0]?.error, 'forbidden');
      assert.equal(outOfScope.labelMessages, 0);
      const stopped = await proc!.stop();
      assert.equal(stopped.code, 0, fmtStatus(stopped));
    });
  });
});
