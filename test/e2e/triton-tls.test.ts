/**
 * TLS gRPC to a remote Triton: a second tritonserver (ports 8120-8122, colour_probe only) started
 * with --grpc-use-ssl-mutual and certificates made by the test. Both of the client's connections
 * (grpc-js for control calls, node:http2 for ModelInfer) must verify the server and present our
 * client certificate; a client that does not trust the CA, has no certificate, or speaks
 * plaintext gets nothing and a retriable INFER_UNAVAILABLE. Then `framewire run` with
 * `triton.tls` labels a stream from the shared Kafka through it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { FramewireError } from '../../src/core/errors.js';
import { readTls } from '../../src/config/tls.js';
import { TritonClient } from '../../src/infer/triton/client.js';
import { describeModel, classificationRequest, parseClassification } from '../../src/infer/triton/model.js';
import { TritonPool } from '../../src/infer/triton/pool.js';
import { makeCerts, type Certs } from '../helpers/secure.js';
import { ensureStack } from '../helpers/stack.js';
import { startTriton, type TritonProcess } from '../helpers/triton.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { runIngest } from '../../src/ingest/ingest.js';
import { checkLabels, type LabelRecord } from '../helpers/accounting.js';
import { TopicCollector } from '../helpers/collectors.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, fmtStatus, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { BROKERS } from '../helpers/stack.js';
import { newTopology, removeDir, removeTopology, type TestTopology } from '../helpers/topics.js';
import { waitUntil } from '../helpers/wait.js';

const PORTS = { httpPort: Number(process.env.FW_TLS_TRITON_HTTP ?? 8120), grpcPort: Number(process.env.FW_TLS_TRITON_GRPC ?? 8121), metricsPort: Number(process.env.FW_TLS_TRITON_METRICS ?? 8122) };
let certs: Certs | undefined;
let triton: TritonProcess | undefined;
const clients: TritonClient[] = [];

before(async () => {
  ensureStack(); // installs the binary and model files when missing; its Triton is not used here
  certs = makeCerts();
  triton = await startTriton({
    ...PORTS,
    models: ['colour_probe'],
    extraArgs: ['--grpc-use-ssl=true', '--grpc-use-ssl-mutual=true', `--grpc-server-cert=${certs.serverCert}`, `--grpc-server-key=${certs.serverKey}`, `--grpc-root-cert=${certs.ca}`],
  });
});

let topo: TestTopology | undefined;
let labels: TopicCollector | undefined;
after(async () => {
  await labels?.stop();
  await stopAllProcessors(5_000);
  await removeTopology(topo);
  for (const c of clients) c.close();
  await triton?.stop();
  if (certs) removeDir(certs.dir);
});

function client(tls: Parameters<typeof readTls>[0] | undefined, url = triton!.url): TritonClient {
  const c = new TritonClient({ url, controlDeadlineMs: 3000, tls: tls ? readTls(tls, 'triton.tls') : undefined });
  clients.push(c);
  return c;
}

/** One red and one blue 224x224 frame through ModelInfer. */
async function classify(c: TritonClient, viaGrpcJs: boolean): Promise<string[]> {
  const spec = await describeModel(c, 'colour_probe');
  const frame = spec.height * spec.width * 3;
  const pixels = Buffer.alloc(2 * frame);
  for (let p = 0; p < frame; p += 3) pixels[p] = 255;
  for (let p = frame + 2; p < 2 * frame; p += 3) pixels[p] = 255;
  const req = classificationRequest(spec, pixels, 2, 1, 'tls');
  const res = viaGrpcJs ? await c.modelInferGrpcJs(req, 10_000) : await c.modelInfer(req, 10_000);
  return parseClassification(res.raw_output_contents[0]!, 2, 1).map((l) => l[0]!.label);
}

const unavailable = (err: unknown) => err instanceof FramewireError && err.code === 'INFER_UNAVAILABLE' && err.retriable;

test('with the CA and our client certificate: control calls (grpc-js) and ModelInfer over both paths work', async () => {
  const c = client({ ca: certs!.ca, cert: certs!.clientCert, key: certs!.clientKey });
  assert.equal(await c.serverReady(), true);
  assert.equal(await c.modelReady('colour_probe'), true);
  assert.deepEqual(await classify(c, false), ['red', 'blue'], 'node:http2 ModelInfer over TLS');
  assert.deepEqual(await classify(c, true), ['red', 'blue'], 'grpc-js ModelInfer over TLS');
  // The server name to verify can differ from the address dialled (here: the certificate's DNS name).
  const named = client({ ca: certs!.ca, cert: certs!.clientCert, key: certs!.clientKey, servername: 'localhost' });
  assert.deepEqual(await classify(named, false), ['red', 'blue']);
  assert.equal(await named.serverReady(), true);
});

test('the pool health-checks and serves a TLS endpoint', async () => {
  const pool = new TritonPool({ endpoints: [triton!.url], models: ['colour_probe'], transport: 'grpc', healthIntervalMs: 500, tls: readTls({ ca: certs!.ca, cert: certs!.clientCert, key: certs!.clientKey }, 'triton.tls') });
  try {
    await pool.start();
    assert.equal(pool.readyCount, 1);
  } finally {
    await pool.close();
  }
});

test('no client certificate, an untrusted CA, a wrong server name, or plaintext: refused, as a retriable INFER_UNAVAILABLE', async () => {
  const cases: [string, TritonClient][] = [
    ['no client certificate', client({ ca: certs!.ca })],
    ['untrusted CA', client({ ca: certs!.otherCa, cert: certs!.clientCert, key: certs!.clientKey })],
    ['wrong server name', client({ ca: certs!.ca, cert: certs!.clientCert, key: certs!.clientKey, servername: 'triton.example' })],
    ['plaintext', client(undefined)],
  ];
  for (const [what, c] of cases) {
    await assert.rejects(c.serverReady(), unavailable, `${what}: control call`);
    await assert.rejects(classifyRaw(c), unavailable, `${what}: ModelInfer (node:http2)`);
  }
});

/** ModelInfer without fetching metadata first (which would fail on its own). */
function classifyRaw(c: TritonClient) {
  return c.modelInfer({ model_name: 'colour_probe', id: 'x', inputs: [{ name: 'FRAME', datatype: 'UINT8', shape: [1, 224, 224, 3] }], outputs: [{ name: 'SCORES', parameters: { classification: { int64_param: 1 } } }], raw_input_contents: [Buffer.alloc(224 * 224 * 3)] }, 3000);
}

test('framewire run with triton.tls (mutual) labels every frame of a stream through the TLS endpoint', async () => {
  topo = await newTopology();
  const text = readFileSync(topo.file, 'utf8');
  const plain = /^triton: .*$/m;
  assert.match(text, plain);
  writeFileSync(topo.file, text.replace(plain, `triton: { url: "${triton!.url}", timeoutMs: 5000, tls: { ca: "${certs!.ca}", cert: "${certs!.clientCert}", key: "${certs!.clientKey}" } }`));
  const proc = Processor.run(topo.file, 'processor (Triton over TLS)');
  await withLogs(() => [proc], async () => {
    await proc.waitReady(topo!.httpBase, 60_000);
    labels = await TopicCollector.start(topo!.labels);
    const video = colourVideo(64, 48, 25, [
      { colour: 'yellow', frames: 15 },
      { colour: 'magenta', frames: 15 },
    ]);
    const stream = `${topo!.name}-tls`;
    const sent = await runIngest({ stream, input: video.input, brokers: BROKERS, topic: topo!.chunks, gop: 10 });
    const mine = () => labels!.json<LabelRecord>().filter((l) => l.stream === stream && l.session === sent.session);
    await waitUntil(() => new Set(mine().map((l) => l.frame)).size >= video.frames, 60_000, 200);
    const check = checkLabels(mine(), video);
    assert.deepEqual(check.missing, []);
    assert.deepEqual(check.wrong, []);
    const stopped = await proc.stop();
    assert.equal(stopped.code, 0, fmtStatus(stopped));
  });
});
