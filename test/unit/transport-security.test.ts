import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseTopology } from '../../src/config/load.js';
import kafkajs from 'kafkajs';
import { kafkaConnectError, kafkaSecurityOptions } from '../../src/kafka/security.js';
import { FramewireError } from '../../src/core/errors.js';
import { ingestKafkaSecurity } from '../../src/ingest/security.js';

const { KafkaJSConnectionError, KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError, KafkaJSSASLAuthenticationError } = kafkajs;

const base = 'sources: [{ type: kafka }]\nmodels: [{ name: m }]\nsinks: [{ type: kafka }]\n';

function withFiles<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-tls-unit-'));
  try {
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(path.join(dir, f), `-----BEGIN ${f}-----\n`);
    writeFileSync(path.join(dir, 'password'), 'from-a-file\n');
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('kafka.ssl and kafka.sasl in the topology become kafkajs options; the password comes from env or a file', () => {
  withFiles((dir) => {
    const t = parseTopology(
      `${base}kafka:\n  ssl: { ca: ${dir}/ca.pem, cert: ${dir}/cert.pem, key: ${dir}/key.pem }\n  sasl: { mechanism: scram-sha-512, username: fw, password: { env: PW } }\n`,
      't.yaml',
    );
    const o = kafkaSecurityOptions(t.kafka, 'kafka', { PW: 'from-env' });
    assert.deepEqual(o.sasl, { mechanism: 'scram-sha-512', username: 'fw', password: 'from-env' });
    assert.ok(typeof o.ssl === 'object' && String(o.ssl.ca) === '-----BEGIN ca.pem-----\n' && o.ssl.cert && o.ssl.key);
    const f = parseTopology(`${base}kafka:\n  ssl: {}\n  sasl: { mechanism: plain, username: fw, password: { file: ${dir}/password } }\n`, 't.yaml');
    const of = kafkaSecurityOptions(f.kafka);
    assert.equal(of.ssl, true, '`ssl: {}` is TLS with the system CAs');
    assert.equal((of.sasl as { password: string }).password, 'from-a-file');
    assert.deepEqual(kafkaSecurityOptions(parseTopology(base, 't.yaml').kafka), {}, 'plaintext by default');
    assert.throws(() => kafkaSecurityOptions(t.kafka, 'kafka', {}), /kafka\.sasl\.password: environment variable PW is not set/);
    assert.throws(() => kafkaSecurityOptions({ ssl: { ca: `${dir}/nope.pem` } }), (e: FramewireError) => e.code === 'SECRET_UNREADABLE' && /kafka\.ssl\.ca: cannot read/.test(e.message));
  });
});

test('bad TLS/SASL settings are topology errors naming the field', () => {
  const problems = (yaml: string) => {
    try {
      parseTopology(base + yaml, 't.yaml');
    } catch (err) {
      return (err as Error).message;
    }
    return '';
  };
  assert.match(problems('kafka: { sasl: { mechanism: gssapi, username: a, password: { env: X } } }\n'), /kafka\.sasl\.mechanism/);
  assert.match(problems('kafka: { sasl: { mechanism: plain, username: a, password: hunter2 } }\n'), /kafka\.sasl\.password/);
  assert.match(problems('kafka: { ssl: { cert: /c.pem } }\n'), /kafka\.ssl: cert and key go together/);
  assert.match(problems('triton: { tls: { key: /k.pem } }\n'), /triton\.tls: cert and key go together/);
  assert.match(problems('triton: { tls: { ca: /ca.pem, verify: false } }\n'), /triton\.tls/);
  assert.equal(problems('triton: { tls: { ca: /ca.pem, servername: triton.internal } }\n'), '');
});

test('ingest: TLS and SASL from flags or environment, the password never from a flag', () => {
  withFiles((dir) => {
    assert.deepEqual(ingestKafkaSecurity({}, {}), {}, 'plaintext by default');
    assert.deepEqual(ingestKafkaSecurity({ kafkaTls: true }, {}), { ssl: true });
    const viaEnv = ingestKafkaSecurity({}, { FRAMEWIRE_KAFKA_CA: `${dir}/ca.pem`, FRAMEWIRE_KAFKA_SASL_MECHANISM: 'scram-sha-512', FRAMEWIRE_KAFKA_SASL_USERNAME: 'cam', FRAMEWIRE_KAFKA_SASL_PASSWORD: 'pw' });
    assert.ok(typeof viaEnv === 'object' && typeof viaEnv.ssl === 'object' && viaEnv.ssl.ca);
    assert.deepEqual(typeof viaEnv === 'object' && viaEnv.sasl, { mechanism: 'scram-sha-512', username: 'cam', password: 'pw' });
    const viaFile = ingestKafkaSecurity({ saslMechanism: 'plain', saslUsername: 'cam', saslPasswordFile: `${dir}/password` }, {});
    assert.deepEqual(typeof viaFile === 'object' && viaFile.sasl, { mechanism: 'plain', username: 'cam', password: 'from-a-file' });
    assert.match(String(ingestKafkaSecurity({ saslMechanism: 'plain', saslUsername: 'cam' }, {})), /SASL password: environment variable FRAMEWIRE_KAFKA_SASL_PASSWORD is not set/);
    assert.match(String(ingestKafkaSecurity({ saslMechanism: 'kerberos' }, {})), /--sasl-mechanism must be one of plain, scram-sha-256, scram-sha-512/);
    assert.match(String(ingestKafkaSecurity({ saslMechanism: 'plain' }, {})), /needs --sasl-username/);
    assert.match(String(ingestKafkaSecurity({ saslUsername: 'cam' }, {})), /need --sasl-mechanism/);
    assert.match(String(ingestKafkaSecurity({ kafkaCert: `${dir}/cert.pem` }, {})), /--kafka-cert and --kafka-key go together/);
  });
});

test("kafkajs connect failures: refused credentials and TLS handshakes are told apart from the rest, by kafkajs's error types", () => {
  // As kafkajs 2.2.4 throws them from admin.connect(): the last attempt's error, wrapped by its retrier.
  const retriesExceeded = (e: Error) => new KafkaJSNumberOfRetriesExceeded(e, { retryCount: 5, retryTime: 100 });
  const connectionError = (message: string, code: string) => new KafkaJSConnectionError(`Connection error: ${message}`, { broker: 'b:9094', code });
  // kafkajs's typings leave out the arguments its SASL authenticators and its retrier pass.
  const saslError = (message: string) => new (KafkaJSSASLAuthenticationError as unknown as new (m: string) => Error)(message);
  const bailed = (e: Error) => new (KafkaJSNonRetriableError as unknown as new (e: Error, o: { cause: Error }) => Error)(e, { cause: e });

  const sasl = saslError('SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512');
  const auth = kafkaConnectError(bailed(sasl), ['b:9094'], 'source');
  assert.equal(auth?.code, 'KAFKA_AUTH_FAILED');
  assert.equal(auth?.retriable, false);
  assert.match(auth!.message, /^Kafka b:9094 refused our SASL credentials: /);
  assert.equal(kafkaConnectError(sasl, ['b:9094'], 'source')?.code, 'KAFKA_AUTH_FAILED', 'unwrapped too');
  const brokerSaid = new KafkaJSProtocolError(Object.assign(new Error('SASL Authentication failed'), { type: 'SASL_AUTHENTICATION_FAILED', code: 58, retriable: false }));
  assert.equal(kafkaConnectError(brokerSaid, ['b:9094'], 'source')?.code, 'KAFKA_AUTH_FAILED');

  // The socket error codes seen against a local TLS server and a plaintext listener.
  for (const [message, code] of [
    ['unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ["Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list: ", 'ERR_TLS_CERT_ALTNAME_INVALID'],
    ['80ACCD18947F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number', 'ERR_SSL_WRONG_VERSION_NUMBER'],
    ['Client network socket disconnected before secure TLS connection was established', 'ECONNRESET'],
  ]) {
    const tls = kafkaConnectError(retriesExceeded(connectionError(message!, code!)), ['b:9094'], 'ingest');
    assert.equal(tls?.code, 'KAFKA_TLS_FAILED', code);
    assert.equal(tls?.retriable, false);
  }

  const refused = retriesExceeded(connectionError('connect ECONNREFUSED 127.0.0.1:9094', 'ECONNREFUSED'));
  assert.equal(kafkaConnectError(refused, ['b:9094'], 'ingest'), undefined, 'an unreachable broker is neither');
  const reset = retriesExceeded(connectionError('read ECONNRESET', 'ECONNRESET'));
  assert.equal(kafkaConnectError(reset, ['b:9094'], 'ingest'), undefined, 'a broker that went away mid-connection is neither');
  const saysTls = new KafkaJSNonRetriableError(new Error('TLS certificate problem, SASL authentication failed'));
  assert.equal(kafkaConnectError(saysTls, ['b:9094'], 'ingest'), undefined, 'a message alone classifies nothing');
});
