/**
 * Builds and runs a topology: sources → decode → batch → infer → sinks, plus HTTP and metrics.
 * Shutdown is two-phase: stop intake, drain within the deadline (decoders flush, batches finish,
 * labels publish, offsets commit), then close sinks and connections; forced after the deadline.
 */
import type { Server } from 'node:http';
import kafkajs, { type Admin, type Kafka, type Producer } from 'kafkajs';
import type { Frame } from '../core/frame.js';
import { FramewireError } from '../core/errors.js';
import { log } from '../core/log.js';
import { BoundedQueue } from '../core/queue.js';
import type { Topology } from '../config/topology.js';
import { Metrics } from '../telemetry/metrics.js';
import { startHttp } from '../telemetry/http.js';
import { KafkaSource } from '../sources/kafka/source.js';
import { DecodeStage, type Route } from '../decode/sessions.js';
import { Batcher } from '../batch/batcher.js';
import { InferStage } from '../infer/stage.js';
import { TritonClient } from '../infer/triton/client.js';
import { describeModel, type ModelSpec } from '../infer/triton/model.js';
import { KafkaSink } from '../sinks/kafka/sink.js';
import { WebSocketSink } from '../sinks/websocket/server.js';
import type { Sink } from '../sinks/types.js';
import { DropReporter } from './drops.js';

interface Lane {
  spec: ModelSpec;
  pattern: RegExp | undefined;
  queue: BoundedQueue<Frame>;
  stage: InferStage;
  route: Route;
}

export async function ensureTopics(admin: Admin, topics: { topic: string; numPartitions: number }[]): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const missing = topics.filter((t) => !existing.has(t.topic));
  if (missing.length === 0) return;
  try {
    await admin.createTopics({ topics: missing.map((t) => ({ ...t, replicationFactor: -1 })), waitForLeaders: true });
  } catch (err) {
    if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw err;
  }
}

export class Pipeline {
  readonly metrics = new Metrics();
  private kafka!: Kafka;
  private admin!: Admin;
  private producer!: Producer;
  private triton!: TritonClient;
  private sinks: Sink[] = [];
  private lanes: Lane[] = [];
  private decode!: DecodeStage;
  private source!: KafkaSource;
  private drops!: DropReporter;
  private http: Server | undefined;
  private closing: Promise<void> | undefined;

  constructor(readonly topology: Topology) {}

  get httpAddress(): string {
    return this.topology.http.listen;
  }

  async start(): Promise<void> {
    const t = this.topology;
    this.triton = new TritonClient({ url: t.triton.url });
    // Models first: an unknown model is a topology error, reported before anything else starts.
    const specs: ModelSpec[] = [];
    for (const [i, m] of t.models.entries()) {
      const ready = await this.triton.modelReady(m.name).catch((err: FramewireError) => {
        if (err.code === 'INFER_UNAVAILABLE') throw new FramewireError('INFER_UNAVAILABLE', 'infer', `Triton at ${t.triton.url} is not reachable: ${err.message}`, { retriable: true, cause: err });
        return false;
      });
      if (!ready) {
        const known = (await this.triton.repositoryIndex().catch(() => [])).map((x) => x.name);
        throw new FramewireError('TOPOLOGY_INVALID', 'config', `models[${i}].name: model '${m.name}' is not ready in Triton at ${t.triton.url} (repository has: ${known.join(', ') || 'nothing'})`);
      }
      specs.push(await describeModel(this.triton, m.name));
    }

    this.kafka = new kafkajs.Kafka({ clientId: t.kafka.clientId, brokers: t.kafka.brokers, logLevel: kafkajs.logLevel.WARN });
    this.admin = this.kafka.admin();
    await this.admin.connect();
    const src = t.sources[0]!;
    const topics = [
      { topic: src.topic, numPartitions: src.partitions },
      { topic: src.dlqTopic, numPartitions: src.partitions },
    ];
    for (const s of t.sinks) if (s.type === 'kafka') topics.push({ topic: s.topic, numPartitions: s.partitions }, { topic: s.eventsTopic, numPartitions: s.partitions });
    await ensureTopics(this.admin, topics);
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await this.producer.connect();

    let ws: WebSocketSink | undefined;
    for (const s of t.sinks) {
      if (s.type === 'kafka') this.sinks.push(new KafkaSink(this.producer, s));
      else this.sinks.push((ws = new WebSocketSink(s, this.metrics)));
    }
    this.drops = new DropReporter(this.sinks, this.metrics);

    for (const [i, spec] of specs.entries()) {
      const m = t.models[i]!;
      const queue = new BoundedQueue<Frame>(t.batch.queueFrames);
      const maxBatch = Math.min(spec.maxBatchSize, t.batch.maxBatchSize ?? spec.maxBatchSize);
      const stage = new InferStage({
        spec,
        topK: m.topK,
        client: this.triton,
        batcher: new Batcher(queue, maxBatch, t.batch.maxWaitMs),
        sinks: this.sinks,
        drops: this.drops,
        metrics: this.metrics,
        maxInflight: t.batch.maxInflight,
        timeoutMs: t.triton.timeoutMs,
        retries: t.triton.retries,
      });
      const gauge = this.metrics.queueFrames.labels({ model: spec.name });
      const route: Route = {
        model: spec.name,
        width: spec.width,
        height: spec.height,
        push: async (frame) => {
          await queue.push(frame);
          gauge.set(queue.length);
        },
      };
      this.lanes.push({ spec, pattern: m.streams ? new RegExp(m.streams) : undefined, queue, stage, route });
      stage.start();
    }

    const routes = new Map<string, Route>();
    this.decode = new DecodeStage({
      config: t.decode,
      budgetMs: t.latency.budgetMs,
      route: (stream) => {
        let r = routes.get(stream);
        if (!r) {
          const lane = this.lanes.find((l) => !l.pattern || l.pattern.test(stream)) ?? this.lanes[0]!;
          routes.set(stream, (r = lane.route));
        }
        return r;
      },
      deadLetter: (c, reason, detail) => this.source.deadLetter(c, reason, detail),
      drops: this.drops,
      metrics: this.metrics,
    });
    this.source = new KafkaSource(this.kafka, this.admin, this.producer, src, this.decode, this.metrics);

    this.http = await startHttp(t.http.listen, this.metrics, { notReadyReason: () => this.notReadyReason() });
    if (ws) ws.attach(this.http);
    await this.source.start();
    log.info('pipeline running', {
      topology: t.name,
      models: specs.map((s) => `${s.name} ${s.width}x${s.height} batch<=${s.maxBatchSize}`),
      http: t.http.listen,
    });
  }

  private async notReadyReason(): Promise<string | undefined> {
    if (this.closing) return 'shutting down';
    if (!this.source?.isConsuming) return 'not consuming (consumer group not joined)';
    try {
      for (const l of this.lanes) if (!(await this.triton.modelReady(l.spec.name))) return `model ${l.spec.name} not ready`;
    } catch (err) {
      return `Triton unreachable: ${(err as Error).message}`;
    }
    return undefined;
  }

  /** Two-phase shutdown; idempotent. */
  close(drainTimeoutMs = this.topology.shutdown.drainTimeoutMs): Promise<void> {
    if (!this.closing) this.closing = this.doClose(drainTimeoutMs);
    return this.closing;
  }

  private async doClose(drainTimeoutMs: number): Promise<void> {
    const drain = async () => {
      if (this.source) await this.source.stopIntake();
      if (this.decode) await this.decode.close();
      for (const l of this.lanes) l.queue.close();
      await Promise.all(this.lanes.map((l) => l.stage.finished()));
      await this.drops?.close();
    };
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      drain().then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), drainTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      log.warn('drain deadline passed; forcing shutdown', { drainTimeoutMs });
      await this.decode?.close();
    }
    await this.source?.close().catch((err) => log.warn('closing source failed', { err }));
    for (const s of this.sinks) await s.close().catch(() => {});
    await this.producer?.disconnect().catch(() => {});
    await this.admin?.disconnect().catch(() => {});
    this.triton?.close();
    if (this.http) {
      this.http.closeAllConnections();
      await new Promise<void>((r) => this.http!.close(() => r()));
    }
  }
}
