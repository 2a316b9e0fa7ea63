/** The webhook sink against a real local HTTP server: signature, retries, order, the drop-oldest queue. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookSink, signature } from '../../src/sinks/webhook/sink.js';
import { webhookSinkSchema } from '../../src/sinks/webhook/config.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import type { AlertRecord } from '../../src/core/events.js';
import { RecordBatch } from '../../src/core/sink.js';
import { waitUntil } from '../helpers/wait.js';

const alert = (n: number): AlertRecord => ({ type: 'alert', id: `r:cam:${n}`, rule: 'r', stream: 'cam', session: 's', state: 'firing', severity: 'warning', fromFrame: n, atFrame: n, captureTs: n, publishedTs: n });

async function server(handler: (body: string, req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const s = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => handler(body, req, res));
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`, close: () => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r()))) };
}

const until = (cond: () => boolean, ms = 5000) => waitUntil(cond, ms, 10);

test('POSTs each alert in order with a valid signature; failures are retried with backoff', async () => {
  const got: { body: string; sig: string | undefined }[] = [];
  let failures = 3;
  const srv = await server((body, req, res) => {
    if (failures-- > 0) {
      res.writeHead(503);
      return res.end();
    }
    got.push({ body, sig: req.headers['x-framewire-signature'] as string | undefined });
    res.writeHead(200);
    res.end('ok');
  });
  const metrics = new Metrics();
  const sink = new WebhookSink(webhookSinkSchema.parse({ type: 'webhook', url: srv.url, secret: 'k', backoffMs: 5, maxBackoffMs: 20 }), metrics);
  try {
    await sink.publishAlerts(new RecordBatch([alert(1), alert(2)]));
    await sink.publishAlerts(new RecordBatch([alert(3)]));
    assert.ok(await until(() => got.length === 3));
    assert.deepEqual(got.map((g) => (JSON.parse(g.body) as AlertRecord).id), ['r:cam:1', 'r:cam:2', 'r:cam:3']);
    for (const g of got) assert.equal(g.sig, signature('k', g.body));
    assert.match(got[0]!.sig!, /^sha256=[0-9a-f]{64}$/);
    assert.equal((await metrics.webhookErrors.get()).values[0]?.value, 3);
    // The receiver has the third body a moment before the sink has read its answer.
    assert.ok(await until(() => sink.queued === 0));
    await sink.close();
    assert.equal((await metrics.webhookSent.get()).values[0]?.value, 3);
  } finally {
    await sink.close();
    await srv.close();
  }
});

test('a full queue drops its oldest alert (counted); publishAlerts never waits for the receiver', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const got: string[] = [];
  const srv = await server((body, _req, res) => {
    void gate.then(() => {
      got.push((JSON.parse(body) as AlertRecord).id);
      res.writeHead(204);
      res.end();
    });
  });
  const metrics = new Metrics();
  const sink = new WebhookSink(webhookSinkSchema.parse({ type: 'webhook', url: srv.url, queueSize: 3, timeoutMs: 10_000 }), metrics);
  try {
    const t0 = performance.now();
    await sink.publishAlerts(new RecordBatch([alert(1)]));
    await until(() => got.length === 0 && sink.queued === 0); // alert 1 is in flight (the receiver holds it)
    for (let n = 2; n <= 6; n++) await sink.publishAlerts(new RecordBatch([alert(n)]));
    assert.ok(performance.now() - t0 < 1000);
    assert.equal(sink.queued, 3);
    const dropped = (await metrics.webhookDropped.get()).values.find((v) => v.labels.reason === 'queue-full')?.value;
    assert.equal(dropped, 2, 'the two oldest waiting ones, 2 and 3; not alert 1, in flight');
    release();
    assert.ok(await until(() => got.length === 4));
    assert.deepEqual(got, ['r:cam:1', 'r:cam:4', 'r:cam:5', 'r:cam:6']);
  } finally {
    await sink.close();
    await srv.close();
  }
});

test('a 4xx other than 408/429 is not retried', async () => {
  let calls = 0;
  const srv = await server((_b, _req, res) => {
    calls++;
    res.writeHead(400);
    res.end();
  });
  const metrics = new Metrics();
  const sink = new WebhookSink(webhookSinkSchema.parse({ type: 'webhook', url: srv.url, backoffMs: 1 }), metrics);
  try {
    await sink.publishAlerts(new RecordBatch([alert(1)]));
    // The sink is done with the alert once it counts it dropped; a retry would have come before that.
    const rejected = async () => (await metrics.webhookDropped.get()).values.find((v) => v.labels.reason === 'rejected')?.value ?? 0;
    assert.ok(await waitUntil(async () => (await rejected()) > 0, 5000, 10), 'the refused alert was never counted dropped');
    assert.equal(calls, 1);
    assert.equal(await rejected(), 1);
  } finally {
    await sink.close();
    await srv.close();
  }
});
