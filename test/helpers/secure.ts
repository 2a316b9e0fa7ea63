/**
 * Transport-security fixtures for the TLS/SASL tests: a throw-away CA with server and client
 * certificates (openssl, into a temp dir), and a second Kafka broker (scripts/stack.sh with its
 * own state dir and ports) with SASL_SSL (PLAIN and SCRAM-SHA-512) and SSL (mutual TLS) listeners
 * beside its PLAINTEXT one. Nothing here touches the shared stack.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import { ROOT } from './stack.js';

export interface Certs {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** Key + certificate in one PEM file (Kafka's PEM keystore). */
  serverPem: string;
  clientCert: string;
  clientKey: string;
  /** A second CA that signed nothing we use: trusting it must fail. */
  otherCa: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all PEM (unencrypted PKCS#8 keys). */
export function makeCerts(prefix = 'framewire-tls-'): Certs {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const p = (f: string) => path.join(dir, f);
  const ca = (name: string) => {
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  };
  ca('ca');
  ca('other-ca');
  const leaf = (name: string, ext: string) => {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
    writeFileSync(p(`${name}.ext`), ext);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`], dir);
  };
  leaf('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'extendedKeyUsage=clientAuth\n');
  execFileSync('sh', ['-c', 'cat server.key server.pem > server-keystore.pem'], { cwd: dir });
  return {
    dir,
    ca: p('ca.pem'),
    serverCert: p('server.pem'),
    serverKey: p('server.key'),
    serverPem: p('server-keystore.pem'),
    clientCert: p('client.pem'),
    clientKey: p('client.key'),
    otherCa: p('other-ca.pem'),
  };
}

export const SASL_USERS = {
  /** SCRAM-SHA-512 credential, created when the broker's storage is formatted. */
  scram: { username: 'fw-scram', password: 'scram-secret-4242' },
  /** PLAIN user, from the listener's JAAS configuration. */
  plain: { username: 'fw-plain', password: 'plain-secret-4242' },
};

export interface SecureKafka {
  state: string;
  plaintext: string;
  saslSsl: string;
  ssl: string;
  certs: Certs;
  /** A kafkajs client on the SASL_SSL listener (SCRAM user). */
  kafka: Kafka;
  stop(): void;
}

const PORTS = {
  plaintext: Number(process.env.FRAMEWIRE_SECURE_KAFKA_PORT ?? 9292),
  controller: Number(process.env.FRAMEWIRE_SECURE_KAFKA_CONTROLLER_PORT ?? 9293),
  saslSsl: Number(process.env.FRAMEWIRE_SECURE_KAFKA_SASL_SSL_PORT ?? 9294),
  ssl: Number(process.env.FRAMEWIRE_SECURE_KAFKA_SSL_PORT ?? 9295),
};

function stackEnv(state: string, certs: Certs, extraConfig: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    FRAMEWIRE_STACK_STATE: state,
    FRAMEWIRE_KAFKA_PORT: String(PORTS.plaintext),
    FRAMEWIRE_KAFKA_CONTROLLER_PORT: String(PORTS.controller),
    FRAMEWIRE_KAFKA_HEAP: '256m',
    FRAMEWIRE_KAFKA_EXTRA_LISTENERS: `SASL_SSL://127.0.0.1:${PORTS.saslSsl},SSL://127.0.0.1:${PORTS.ssl}`,
    FRAMEWIRE_KAFKA_EXTRA_CONFIG: extraConfig,
    FRAMEWIRE_KAFKA_SCRAM: `SCRAM-SHA-512=[name=${SASL_USERS.scram.username},password=${SASL_USERS.scram.password}]`,
    FRAMEWIRE_READY_TIMEOUT: '120',
  };
}

/**
 * Where the secured brokers keep their state (and kafka.pid): under the clone, so that .ci/run
 * stops what a failed run left behind, and only this clone's.
 */
export const SECURE_KAFKA_STATES = path.join(ROOT, '.stack/secure-kafka');

/** Starts the second broker (fresh storage each time) and waits until it is ready. */
export function startSecureKafka(certs: Certs): SecureKafka {
  mkdirSync(SECURE_KAFKA_STATES, { recursive: true });
  const state = mkdtempSync(path.join(SECURE_KAFKA_STATES, 'state-'));
  const extraConfig = path.join(state, 'security.properties');
  writeFileSync(
    extraConfig,
    [
      'ssl.keystore.type=PEM',
      `ssl.keystore.location=${certs.serverPem}`,
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${certs.ca}`,
      'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512',
      `listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${SASL_USERS.plain.username}="${SASL_USERS.plain.password}";`,
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      'listener.name.ssl.ssl.client.auth=required',
      '',
    ].join('\n'),
  );
  const env = stackEnv(state, certs, extraConfig);
  const stop = () => {
    try {
      execFileSync('bash', [path.join(ROOT, 'scripts/stack.sh'), 'down'], { env, stdio: 'ignore' });
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  };
  try {
    execFileSync('bash', [path.join(ROOT, 'scripts/stack.sh'), 'up', 'kafka'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  } catch (err) {
    try {
      console.error(execFileSync('tail', ['-n', '40', path.join(state, 'logs/kafka.log')], { encoding: 'utf8' }));
    } catch {
      /* no log */
    }
    stop();
    throw err;
  }
  const saslSsl = `127.0.0.1:${PORTS.saslSsl}`;
  return {
    state,
    plaintext: `127.0.0.1:${PORTS.plaintext}`,
    saslSsl,
    ssl: `127.0.0.1:${PORTS.ssl}`,
    certs,
    kafka: new Kafka({ clientId: 'framewire-tls-test', brokers: [saslSsl], logLevel: logLevel.NOTHING, ...scramClient(certs) }),
    stop,
  };
}

/** kafkajs options of the SCRAM-SHA-512 test user over TLS. */
export function scramClient(certs: Certs): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  return { ssl: { ca: [readFileSync(certs.ca, 'utf8')] }, sasl: { mechanism: 'scram-sha-512', ...SASL_USERS.scram } };
}
