/**
 * Kafka TLS and SASL against a real broker: a second broker (test/helpers/secure.ts: certificates
 * made here, SCRAM-SHA-512 credentials created when its storage is formatted, PLAIN users in its
 * JAAS settings) with SASL_SSL and SSL (mutual TLS) listeners. `framewire ingest` (SCRAM over TLS)
 * feeds `framewire run` (PLAIN over TLS) and every frame comes back labelled; wrong credentials
 * and an untrusted broker certificate fail at once with a clear line and exit 1. Triton is the
 * shared one (it is only read).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Kafka } from 'kafkajs';
import { checkLabels, type LabelRecord } from '../helpers/accounting.js';
import { colourVideo } from '../helpers/colours.js';
import { Processor, fmtStatus, stopAllProcessors, withLogs } from '../helpers/processes.js';
import { MODEL, TRITON_URL, ensureStack, freePort, randomId } from '../helpers/stack.js';
import { removeDir } from '../helpers/topics.js';
import { waitUntil, withTimeout } from '../helpers/wait.js';
import { SASL_USERS, makeCerts, startSecureKafka, type Certs, type SecureKafka } from '../helpers/secure.js';

/** A processor or `ingest` child with extra environment (passwords) for its lifetime only. */
function spawnWith(args: string[], env: Record<string, string>, label: string): Processor {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return new Processor(args, label);
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

async function readLabels(kafka: Kafka, topic: string, until: (labels: LabelRecord[]) => boolean, timeoutMs: number): Promise<LabelRecord[]> {
  const out: LabelRecord[] = [];
  const consumer = kafka.consumer({ groupId: `fw-tls-reader-${randomId()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void out.push(JSON.parse(String(message.value)) as LabelRecord) });
    await waitUntil(() => until(out), timeoutMs, 200);
    return out;
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

describe('Kafka over TLS with SASL (PLAIN, SCRAM-SHA-512), and mutual TLS', { timeout: 240_000 }, () => {
  let certs: Certs | undefined;
  let broker: SecureKafka | undefined;
  const id = randomId();
  const topics = { chunks: `tls.${id}.chunks`, dlq: `tls.${id}.dlq`, labels: `tls.${id}.labels`, events: `tls.${id}.events` };
  let dir: string;

  before(async () => {
    ensureStack();
    certs = makeCerts();
    dir = certs.dir;
    broker = startSecureKafka(certs);
  });

  after(async () => {
    await stopAllProcessors(5_000);
    broker?.stop(); // the whole broker (and its topics and groups) goes with its state dir
    if (certs) removeDir(certs.dir);
  });

  /** A topology on the SASL_SSL listener with the PLAIN user; its password from env FW_TEST_KAFKA_PASSWORD. */
  async function topology(): Promise<{ file: string; httpBase: string }> {
    const port = await freePort();
    const file = path.join(dir, `topology-${port}.yaml`);
    writeFileSync(
      file,
      `name: tls-${id}
kafka:
  brokers: ["${broker!.saslSsl}"]
  clientId: tls-${id}
  ssl: { ca: "${certs!.ca}" }
  sasl: { mechanism: plain, username: ${SASL_USERS.plain.username}, password: { env: FW_TEST_KAFKA_PASSWORD } }
http: { listen: "127.0.0.1:${port}" }
sources:
  - { type: kafka, topic: ${topics.chunks}, group: fw-tls-${id}, partitions: 1, dlqTopic: ${topics.dlq}, commitIntervalMs: 200 }
decode: { idleTimeoutMs: 1500 }
batch: { maxWaitMs: 15, maxInflight: 2, mode: replay }
triton: { url: "${TRITON_URL}", timeoutMs: 5000 }
models: [ { name: ${MODEL} } ]
sinks:
  - { type: kafka, topic: ${topics.labels}, eventsTopic: ${topics.events}, partitions: 1 }
`,
    );
    return { file, httpBase: `http://127.0.0.1:${port}` };
  }

  const ingestArgs = (stream: string, input: string, brokers: string, extra: string[]) => ['ingest', '--stream', stream, '--input', input, '--brokers', brokers, '--topic', topics.chunks, ...extra];

  test('ingest (SCRAM-SHA-512) → processor (PLAIN), both over TLS: every frame labelled with its colour', async () => {
    const topo = await topology();
    const proc = spawnWith(['run', '--topology', topo.file], { FW_TEST_KAFKA_PASSWORD: SASL_USERS.plain.password }, 'processor');
    await withLogs(() => [proc], async () => {
      await proc.waitReady(topo.httpBase, 60_000);
      const video = colourVideo(64, 48, 25, [
        { colour: 'red', frames: 20 },
        { colour: 'blue', frames: 20 },
        { colour: 'green', frames: 20 },
      ]);
      const ingest = spawnWith(
        ingestArgs('cam-tls', video.input, broker!.saslSsl, ['--kafka-ca', certs!.ca, '--sasl-mechanism', 'scram-sha-512', '--sasl-username', SASL_USERS.scram.username]),
        { FRAMEWIRE_KAFKA_SASL_PASSWORD: SASL_USERS.scram.password },
        'ingest',
      );
      const status = await withTimeout(ingest.exited, 60_000, 'ingest over SASL_SSL');
      assert.equal(status.code, 0, `ingest: ${fmtStatus(status)}\n${ingest.stderr}`);
      const frames = new Set<number>();
      const labels = await readLabels(broker!.kafka, topics.labels, (ls) => {
        for (const l of ls) frames.add(l.frame);
        return frames.size >= video.frames;
      }, 60_000);
      const check = checkLabels(labels.filter((l) => l.stream === 'cam-tls'), video);
      assert.deepEqual(check.missing, [], 'frames without a label');
      assert.deepEqual(check.wrong, [], 'frames with the wrong colour');
      assert.equal(check.duplicates, 0);
      const stopped = await proc.stop();
      assert.equal(stopped.code, 0, fmtStatus(stopped));
    });
  });

  test('wrong credentials: ingest and the processor exit 1 at once, saying the broker refused them', async () => {
    const t0 = Date.now();
    const badIngest = spawnWith(
      ingestArgs('cam-bad', 'lavfi:color=c=red:s=64x48:r=25:d=1', broker!.saslSsl, ['--kafka-ca', certs!.ca, '--sasl-mechanism', 'scram-sha-512', '--sasl-username', SASL_USERS.scram.username]),
      { FRAMEWIRE_KAFKA_SASL_PASSWORD: 'not-the-password' },
      'ingest (wrong password)',
    );
    const topo = await topology();
    const badProc = spawnWith(['run', '--topology', topo.file], { FW_TEST_KAFKA_PASSWORD: 'not-the-password' }, 'processor (wrong password)');
    const [i, p] = await Promise.all([withTimeout(badIngest.exited, 30_000, 'ingest with a wrong password'), withTimeout(badProc.exited, 30_000, 'processor with a wrong password')]);
    console.log(`wrong credentials refused in ${Date.now() - t0} ms`);
    assert.equal(i.code, 1, badIngest.stderr);
    assert.match(badIngest.stderr, /framewire ingest: Kafka 127\.0\.0\.1:\d+ refused our SASL credentials/);
    assert.equal(p.code, 1, badProc.stderr);
    assert.match(badProc.stderr, /framewire run: cannot start \[KAFKA_AUTH_FAILED\]: Kafka 127\.0\.0\.1:\d+ refused our SASL credentials/);
  });

  test("a broker certificate from a CA we do not trust fails the TLS handshake (exit 1, KAFKA_TLS_FAILED's line)", async () => {
    const ingest = spawnWith(
      ingestArgs('cam-untrusted', 'lavfi:color=c=red:s=64x48:r=25:d=1', broker!.saslSsl, ['--kafka-ca', certs!.otherCa, '--sasl-mechanism', 'scram-sha-512', '--sasl-username', SASL_USERS.scram.username]),
      { FRAMEWIRE_KAFKA_SASL_PASSWORD: SASL_USERS.scram.password },
      'ingest (untrusted CA)',
    );
    const s = await withTimeout(ingest.exited, 45_000, 'ingest with an untrusted CA');
    assert.equal(s.code, 1, ingest.stderr);
    assert.match(ingest.stderr, /framewire ingest: TLS to Kafka 127\.0\.0\.1:\d+ failed: .*certificate/i);
  });

  test('mutual TLS (SSL listener requiring a client certificate): with our certificate ingest publishes; without it, it fails', async () => {
    const ok = spawnWith(ingestArgs('cam-mtls', 'lavfi:color=c=blue:s=64x48:r=25:d=1', broker!.ssl, ['--kafka-ca', certs!.ca, '--kafka-cert', certs!.clientCert, '--kafka-key', certs!.clientKey]), {}, 'ingest (mTLS)');
    const s = await withTimeout(ok.exited, 45_000, 'ingest with a client certificate');
    assert.equal(s.code, 0, ok.stderr);
    assert.match(ok.stderr, /stream cam-mtls session \w+ \(encoded\): [1-9]\d* chunks/);
    const noCert = spawnWith(ingestArgs('cam-nocert', 'lavfi:color=c=blue:s=64x48:r=25:d=1', broker!.ssl, ['--kafka-ca', certs!.ca]), {}, 'ingest (no client certificate)');
    const f = await withTimeout(noCert.exited, 45_000, 'ingest without a client certificate');
    assert.equal(f.code, 1, noCert.stderr);
    assert.match(noCert.stderr, /framewire ingest: TLS to Kafka 127\.0\.0\.1:\d+ failed: .*bad certificate/);
    console.log(`without a client certificate: ${noCert.stderr.split('\n').find((l) => l.startsWith('framewire ingest:'))}`);
  });
});
