/**
 * Access control of /ws and the HTTP endpoints on the real HTTP server and WebSocket sink (real
 * sockets, the `ws` client; no Kafka or Triton needed: labels are published to the sink directly).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { parseTopology } from '../../src/config/load.js';
import { HttpAuth } from '../../src/telemetry/auth/auth.js';
import { HttpEndpoint, addTelemetryRoutes } from '../../src/telemetry/http.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { websocketSink } from '../../src/sinks/websocket/index.js';
import { websocketSinkSchema } from '../../src/sinks/websocket/config.js';
import type { WebSocketSink } from '../../src/sinks/websocket/server.js';
import { RecordBatch, type Sink } from '../../src/core/sink.js';
import type { BuildContext } from '../../src/core/component.js';
import type { LabelRecord } from '../../src/core/frame.js';
import { metricValue } from '../helpers/processes.js';
import { freePort } from '../helpers/stack.js';
import { sleep, waitUntil } from '../helpers/wait.js';

const ENV = { FW_TEST_TOKEN_ALL: 'tok-all-0123456789', FW_TEST_TOKEN_LOBBY: 'tok-lobby-0123456789' };
let endpoint: HttpEndpoint;
let sink: Sink;
let metrics: Metrics;
let base: string;
let wsBase: string;
const open: WebSocket[] = [];

before(async () => {
  const port = await freePort();
  const topo = parseTopology(
    `http:
  listen: "127.0.0.1:${port}"
  auth:
    tokens:
      - { name: ops, secret: { env: FW_TEST_TOKEN_ALL } }
      - { name: lobby, secret: { env: FW_TEST_TOKEN_LOBBY }, streams: "^lobby-" }
sources: [{ type: kafka }]
models: [{ name: colour_probe }]
sinks:
  - { type: websocket, maxClients: 6, allowedOrigins: ["https://ops.example"], maxMessageBytes: 256, subscribeRatePerSec: 1, subscribeBurst: 3 }
`,
    'access.yaml',
  );
  const auth = HttpAuth.fromConfig(topo.http.auth, ENV);
  metrics = new Metrics();
  // As the builder wires them: the endpoint with the access control, the sink component's upgrade path.
  endpoint = new HttpEndpoint(topo.http.listen, auth, metrics);
  addTelemetryRoutes(endpoint, metrics, { notReadyReason: async () => undefined });
  sink = await websocketSink.build({ pipelineName: 'access', metrics, http: endpoint } as BuildContext, websocketSinkSchema.parse(topo.sinks[0]));
  await endpoint.start();
  base = `http://127.0.0.1:${port}`;
  wsBase = `ws://127.0.0.1:${port}/ws`;
});

after(async () => {
  for (const ws of open) ws.terminate();
  await sink.close();
  await endpoint.close();
});

interface Conn {
  ws: WebSocket;
  messages: Record<string, unknown>[];
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a client; resolves when open, or rejects with the HTTP status of a refused upgrade. */
function connect(query = '', opts: WebSocket.ClientOptions = {}, protocols?: string[]): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = protocols ? new WebSocket(wsBase + query, protocols, opts) : new WebSocket(wsBase + query, opts);
    open.push(ws);
    const messages: Record<string, unknown>[] = [];
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: String(reason) })));
    ws.on('message', (d) => messages.push(JSON.parse(String(d)) as Record<string, unknown>));
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
  });
}

const bearer = (token: string): WebSocket.ClientOptions => ({ headers: { authorization: `Bearer ${token}` } });

function label(stream: string, frame: number): LabelRecord {
  return { type: 'label', stream, session: 's1', frame, ptsMs: frame * 40, captureTs: Date.now(), model: 'colour_probe', labels: [{ label: 'red', score: 0.9 }], publishedTs: Date.now() } as LabelRecord;
}

async function refusedWith(p: Promise<Conn>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
  return 0;
}

test('an upgrade without a valid token is refused (401); nothing is sent to it', async () => {
  assert.equal(await refusedWith(connect()), 401);
  assert.equal(await refusedWith(connect('', bearer('tok-all-wrong'))), 401);
  assert.equal(await refusedWith(connect('?token=nope')), 401);
  assert.equal(metricValue(await (await fetch(`${base}/metrics`)).text(), 'framewire_websocket_rejected_total', { reason: 'unauthorized' }), 3);
});

test('/metrics and /healthz stay open; the dashboard needs the token (header or ?token=)', async () => {
  assert.equal((await fetch(`${base}/metrics`)).status, 200);
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  const denied = await fetch(`${base}/`);
  assert.equal(denied.status, 401);
  assert.match(denied.headers.get('www-authenticate') ?? '', /^Bearer/);
  // Past the token check, `/` is whatever the dashboard serves (404 until it exists).
  assert.notEqual((await fetch(`${base}/?token=${ENV.FW_TEST_TOKEN_LOBBY}`)).status, 401);
  assert.notEqual((await fetch(`${base}/`, { headers: { authorization: `Bearer ${ENV.FW_TEST_TOKEN_ALL}` } })).status, 401);
});

test("a restricted token receives only its streams and cannot subscribe outside them", async () => {
  assert.equal(await refusedWith(connect(`?token=${ENV.FW_TEST_TOKEN_LOBBY}&streams=cam-1`)), 403);
  const lobby = await connect(`?token=${ENV.FW_TEST_TOKEN_LOBBY}`);
  const viaProtocol = await connect('', {}, ['framewire', `framewire.bearer.${ENV.FW_TEST_TOKEN_LOBBY}`]);
  assert.equal(viaProtocol.ws.protocol, 'framewire', 'the token is not echoed as the selected subprotocol');
  const ops = await connect('', bearer(ENV.FW_TEST_TOKEN_ALL));
  lobby.ws.send(JSON.stringify({ type: 'subscribe', streams: ['lobby-1', 'cam-1'] }));
  await waitUntil(() => lobby.messages.length > 0, 2000);
  assert.deepEqual(lobby.messages[0], { type: 'error', error: 'forbidden', streams: ['cam-1'], message: 'this token may not see these streams; the subscription is unchanged' });
  await sink.publishLabels(new RecordBatch([label('cam-1', 0), label('lobby-1', 0), label('cam-2', 0), label('lobby-2', 0)]));
  await sink.publishEvents(new RecordBatch([{ type: 'dropped', stream: 'cam-1', session: 's1', fromFrame: 1, toFrame: 1, reason: 'deadline', count: 1 } as never]));
  await waitUntil(() => ops.messages.length >= 5 && lobby.messages.length >= 3 && viaProtocol.messages.length >= 2, 3000);
  await sleep(100);
  const streamsOf = (c: Conn) => c.messages.filter((m) => m.stream).map((m) => `${m.type}:${m.stream}`);
  assert.deepEqual(streamsOf(lobby), ['label:lobby-1', 'label:lobby-2']);
  assert.deepEqual(streamsOf(viaProtocol), ['label:lobby-1', 'label:lobby-2']);
  assert.deepEqual(streamsOf(ops), ['label:cam-1', 'label:lobby-1', 'label:cam-2', 'label:lobby-2', 'dropped:cam-1']);
  for (const c of [lobby, viaProtocol, ops]) c.ws.terminate();
});

test("a restricted dashboard's greeting, stats and pipeline messages hold only what its token may see", async () => {
  const ws = sink as WebSocketSink;
  // As the dashboard hub greets a client that asks for stats: hello, then each stream's alert and stats.
  ws.onStatsClient = (send) => {
    send(null, JSON.stringify({ type: 'hello', name: 'access', models: ['colour_probe'] }));
    for (const stream of ['cam-1', 'lobby-1']) {
      send(stream, JSON.stringify({ type: 'alert', state: 'firing', stream }));
      send(stream, JSON.stringify({ type: 'stats', stream }));
    }
  };
  const lobby = await connect(`?token=${ENV.FW_TEST_TOKEN_LOBBY}&stats=1`);
  const ops = await connect('?stats=1', bearer(ENV.FW_TEST_TOKEN_ALL));
  ws.sendStats('cam-1', JSON.stringify({ type: 'stats', stream: 'cam-1' }));
  ws.sendStats(undefined, JSON.stringify({ type: 'pipeline', streams: 2 }));
  await waitUntil(() => ops.messages.length >= 7 && lobby.messages.length >= 3, 3000);
  await sleep(100);
  const kinds = (c: Conn) => c.messages.map((m) => `${m.type}${m.stream ? ':' + m.stream : ''}`);
  assert.deepEqual(kinds(lobby), ['hello', 'alert:lobby-1', 'stats:lobby-1']);
  assert.deepEqual(kinds(ops), ['hello', 'alert:cam-1', 'stats:cam-1', 'alert:lobby-1', 'stats:lobby-1', 'stats:cam-1', 'pipeline']);
  ws.onStatsClient = undefined;
  for (const c of [lobby, ops]) c.ws.terminate();
});

test('a public route (the dashboard\'s script) is served without a token; the others still need one', async () => {
  endpoint.route('/test-public.js', (_req, res) => res.end('ok'), { public: true });
  endpoint.route('/test-private', (_req, res) => res.end('secret'));
  assert.equal((await fetch(`${base}/test-public.js`)).status, 200);
  assert.equal((await fetch(`${base}/test-private`)).status, 401);
  assert.equal((await fetch(`${base}/test-private?token=${ENV.FW_TEST_TOKEN_ALL}`)).status, 200);
});

test('a browser page from another origin is refused; one from an allowed origin connects', async () => {
  assert.equal(await refusedWith(connect('', { headers: { origin: 'https://evil.example', authorization: `Bearer ${ENV.FW_TEST_TOKEN_ALL}` } })), 403);
  const ok = await connect('', { headers: { origin: 'https://ops.example', authorization: `Bearer ${ENV.FW_TEST_TOKEN_ALL}` } });
  ok.ws.terminate();
});

test('subscribe messages past the rate are refused, and a client that keeps on is disconnected (1008)', async () => {
  const c = await connect('', bearer(ENV.FW_TEST_TOKEN_ALL));
  for (let i = 0; i < 10; i++) c.ws.send(JSON.stringify({ type: 'subscribe', streams: ['cam-1'] }));
  const { code } = await c.closed;
  assert.equal(code, 1008);
  const types = c.messages.map((m) => `${m.type}${m.error ? ':' + String(m.error) : ''}`);
  assert.deepEqual(types.slice(0, 3), ['subscribed', 'subscribed', 'subscribed'], 'the burst is served');
  assert.ok(types.slice(3).every((t) => t === 'error:rate-limited'), types.join(','));
});

test('a message larger than maxMessageBytes closes the connection (1009)', async () => {
  const c = await connect('', bearer(ENV.FW_TEST_TOKEN_ALL));
  c.ws.send(JSON.stringify({ type: 'subscribe', streams: ['x'.repeat(300)] }));
  assert.equal((await c.closed).code, 1009);
});

test('connections past maxClients are refused (503) and the places come back when clients leave', async () => {
  await waitUntil(async () => metricValue(await (await fetch(`${base}/metrics`)).text(), 'framewire_websocket_clients') === 0, 3000);
  const six = await Promise.all(Array.from({ length: 6 }, () => connect('', bearer(ENV.FW_TEST_TOKEN_ALL))));
  assert.equal(await refusedWith(connect('', bearer(ENV.FW_TEST_TOKEN_ALL))), 503);
  six[0]!.ws.close();
  await six[0]!.closed;
  await waitUntil(async () => metricValue(await (await fetch(`${base}/metrics`)).text(), 'framewire_websocket_clients') === 5, 3000);
  const again = await connect('', bearer(ENV.FW_TEST_TOKEN_ALL));
  for (const c of [...six, again]) c.ws.terminate();
});
