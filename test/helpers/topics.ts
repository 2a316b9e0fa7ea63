/**
 * Kafka topics and consumer groups of a test, and the temp topology files that name them: every
 * test gets random topics, a random group and a free HTTP port, and deletes them afterwards.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { BROKERS, MODEL, TRITON_URL, freePort, randomId } from './stack.js';

export const kafka = new Kafka({ clientId: 'framewire-e2e', brokers: BROKERS, logLevel: logLevel.NOTHING });

/** Produces raw records (for bad input); resolves when acknowledged. Returns their offsets. */
export async function produceRaw(
  topic: string,
  messages: { key: string; value: Buffer; headers: Record<string, string> }[],
): Promise<{ partition: number; offset: string }[]> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const out: { partition: number; offset: string }[] = [];
    // One at a time: each record's own partition/offset, and order kept within a stream.
    for (const m of messages) {
      const [res] = await producer.send({ topic, acks: -1, messages: [m] });
      out.push({ partition: res!.partition, offset: res!.baseOffset ?? '' });
    }
    return out;
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

/** Best effort: the topics of a finished test are removed so the broker does not fill up. */
export async function deleteTopics(topics: string[], client: Kafka = kafka): Promise<void> {
  const admin = client.admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const mine = topics.filter((t) => existing.has(t));
    if (mine.length) await admin.deleteTopics({ topics: mine, timeout: 10_000 });
  } catch {
    /* best effort */
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Best effort: deletes (empty) consumer groups a test created, e.g. the processor's once it stopped. */
export async function deleteGroups(groups: string[], client: Kafka = kafka): Promise<void> {
  const admin = client.admin();
  try {
    await admin.connect();
    await admin.deleteGroups(groups);
  } catch {
    /* best effort: a group with members left, or already gone */
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export interface TestTopology {
  file: string;
  dir: string;
  name: string;
  port: number;
  httpBase: string;
  wsUrl: string;
  group: string;
  chunks: string;
  dlq: string;
  labels: string;
  events: string;
  alerts: string;
  snapshots: string;
  topics: string[];
}

export interface TopologyOptions {
  idleTimeoutMs?: number;
  commitIntervalMs?: number;
  partitions?: number;
  budgetMs?: number;
  drainTimeoutMs?: number;
  /**
   * Scheduling mode. Tests that assert every frame is labelled use `replay` (nothing dropped);
   * `live` drops frames that miss the budget, e.g. the first frames while ffmpeg starts.
   */
  mode?: 'live' | 'replay';
  model?: string;
  /** Extra fields of the model entry, YAML flow style (e.g. `clip: { stride: 4 }`). */
  modelFields?: string;
  /** Extra top-level YAML (sampling, smoothing, …). */
  extra?: string;
  /** Another stack (test/helpers/stack2.ts): its brokers and Triton. */
  brokers?: string[];
  tritonUrl?: string;
  /** Extra fields of the decode entry, YAML flow style (e.g. `stallMs: 2000`). */
  decodeFields?: string;
  startupTimeoutMs?: number;
  /** Extra entries of the sinks list, YAML lines (e.g. `  - { type: webhook, url: … }`). */
  extraSinks?: string;
}

/** A temp YAML topology with random topic names, a random group and a free HTTP port. */
export async function newTopology(opts: TopologyOptions = {}): Promise<TestTopology> {
  const id = randomId();
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-e2e-'));
  const base = `e2e.${id}`;
  const t: TestTopology = {
    file: path.join(dir, 'topology.yaml'),
    dir,
    name: `e2e-${id}`,
    port,
    httpBase: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    group: `fw-e2e-${id}`,
    chunks: `${base}.chunks`,
    dlq: `${base}.dlq`,
    labels: `${base}.labels`,
    events: `${base}.events`,
    alerts: `${base}.alerts`,
    snapshots: `${base}.snapshots`,
    topics: [],
  };
  t.topics = [t.chunks, t.dlq, t.labels, t.events, t.alerts, t.snapshots];
  const yaml = `name: ${t.name}
kafka: { brokers: ["${(opts.brokers ?? BROKERS).join('", "')}"], clientId: ${t.name} }
http: { listen: "127.0.0.1:${port}" }
latency: { budgetMs: ${opts.budgetMs ?? 250} }
sources:
  - { type: kafka, topic: ${t.chunks}, group: ${t.group}, partitions: ${opts.partitions ?? 3}, dlqTopic: ${t.dlq}, commitIntervalMs: ${opts.commitIntervalMs ?? 200} }
decode: { idleTimeoutMs: ${opts.idleTimeoutMs ?? 1500}${opts.decodeFields ? `, ${opts.decodeFields}` : ''} }
batch: { maxWaitMs: 15, queueFrames: 256, maxInflight: 2, mode: ${opts.mode ?? 'replay'} }
triton: { url: "${opts.tritonUrl ?? TRITON_URL}", timeoutMs: 5000 }
startupTimeoutMs: ${opts.startupTimeoutMs ?? 30_000}
models: [ { name: ${opts.model ?? MODEL}, topK: 3${opts.modelFields ? `, ${opts.modelFields}` : ''} } ]
${opts.extra ?? ''}
sinks:
  - { type: kafka, topic: ${t.labels}, eventsTopic: ${t.events}, alertsTopic: ${t.alerts}, snapshotsTopic: ${t.snapshots} }
  - { type: websocket, path: /ws }
${opts.extraSinks ?? ''}
shutdown: { drainTimeoutMs: ${opts.drainTimeoutMs ?? 10_000} }
`;
  writeFileSync(t.file, yaml);
  return t;
}

/** Deletes a test topology's topics, consumer group and temp folder (after hooks). */
export async function removeTopology(topo: TestTopology | undefined, client: Kafka = kafka): Promise<void> {
  if (!topo) return;
  await deleteTopics(topo.topics, client);
  await deleteGroups([topo.group], client);
  removeDir(topo.dir);
}

/** Writes arbitrary topology text to a temp file (for invalid topologies). */
export function writeTempFile(text: string, name = 'topology.yaml'): { file: string; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'framewire-e2e-'));
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return { file, dir };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
