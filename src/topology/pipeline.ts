/**
 * Builds and runs a topology: sources → decode → batch → infer → sinks, plus HTTP and metrics.
 * Shutdown is two-phase: stop intake, drain within the deadline (decoders flush, batches finish,
 * labels publish, offsets commit), then close sinks and connections; forced after the deadline.
 */
import type { Server } from 'node:http';
import kafkajs, { type Admin, type Kafka, type Producer } from 'kafkajs';
import type { Frame, LabelRecord } from '../core/frame.js';
import { FramewireError } from '../core/errors.js';
import { log } from '../core/log.js';
import { poolFor } from '../core/pool.js';
import type { Topology } from '../config/topology.js';
import { Metrics } from '../telemetry/metrics.js';
import { startHttp } from '../telemetry/http.js';
import { HttpAuth } from '../telemetry/auth/auth.js';
import { kafkaConnectError, kafkaSecurityOptions } from '../config/kafka-security.js';
import { readTls } from '../config/tls.js';
import { KafkaSource } from '../sources/kafka/source.js';
import { DecodeStage, type Route } from '../decode/sessions.js';
import { Batcher } from '../batch/batcher.js';
import { LatencyEstimator } from '../batch/estimator.js';
import { samplingRuleFor } from '../decode/sampling.js';
import { Smoother } from '../postprocess/smoothing.js';
import { InferStage, dropItem } from '../infer/stage.js';
import { ClipAssembler } from '../batch/clips.js';
import type { TritonClient } from '../infer/triton/client.js';
import { tritonEndpoints } from '../infer/triton/config.js';
import { describeModel, frameTensorBytes, type ModelSpec } from '../infer/triton/model.js';
import { TritonPool } from '../infer/triton/pool.js';
import { ShmRing } from '../infer/triton/shm.js';
import { StatsPoller } from '../infer/triton/stats.js';
import { KafkaSink } from '../sinks/kafka/sink.js';
import { WebSocketSink } from '../sinks/websocket/server.js';
import type { Sink } from '../sinks/types.js';
import { DropReporter } from './drops.js';

interface Lane {
  spec: ModelSpec;
  pattern: RegExp | undefined;
  batcher: Batcher;
  stage: InferStage;
  push(frame: Frame): void | Promise<void>;
  sessionEnded(stream: string, session: string): Promise<void>;
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
  private pool!: TritonPool;
  private stats: StatsPoller | undefined;
  private sinks: Sink[] = [];
  private lanes: Lane[] = [];
  private decode!: DecodeStage;
  private source!: KafkaSource;
  private drops!: DropReporter;
  private smoother!: Smoother;
  private http: Server | undefined;
  private closing: Promise<void> | undefined;

  constructor(readonly topology: Topology) {}

  get httpAddress(): string {
    return this.topology.http.listen;
  }

  async start(): Promise<void> {
    const t = this.topology;
    // Secrets first: a missing token fails the start before any connection is made.
    const auth = HttpAuth.fromConfig(t.http.auth);
    const kafkaSecurity = kafkaSecurityOptions(t.kafka);
    const endpoints = tritonEndpoints(t.triton);
    this.pool = new TritonPool({
      endpoints,
      models: t.models.map((m) => m.name),
      transport: t.triton.transport,
      healthIntervalMs: t.triton.healthIntervalMs,
      metrics: this.metrics,
      tls: t.triton.tls ? readTls(t.triton.tls, 'triton.tls') : undefined,
    });
    await this.pool.start();
    // Control calls go to a ready endpoint (the first one when none is).
    const triton: TritonClient = this.pool.primary;
    // Models first: an unknown model is a topology error, reported before anything else starts.
    const specs: ModelSpec[] = [];
    for (const [i, m] of t.models.entries()) {
      const ready = await triton.modelReady(m.name).catch((err: FramewireError) => {
        if (err.code === 'INFER_UNAVAILABLE') throw new FramewireError('INFER_UNAVAILABLE', 'infer', `Triton at ${triton.url} is not reachable: ${err.message}`, { retriable: true, cause: err });
        return false;
      });
      if (!ready) {
        const known = (await triton.repositoryIndex().catch(() => [])).map((x) => x.name);
        throw new FramewireError('TOPOLOGY_INVALID', 'config', `models[${i}].name: model '${m.name}' is not ready in Triton at ${triton.url} (repository has: ${known.join(', ') || 'nothing'})`);
      }
      const spec = await describeModel(triton, m.name, { clipFrames: m.clip?.frames }).catch((err: FramewireError) => {
        throw err.code === 'MODEL_UNSUPPORTED' ? new FramewireError('TOPOLOGY_INVALID', 'config', `models[${i}]: ${err.message}`, { cause: err }) : err;
      });
      if (m.clip && spec.clipFrames === 0) {
        throw new FramewireError('TOPOLOGY_INVALID', 'config', `models[${i}].clip: model '${m.name}' has no time axis (input [height, width, 3]); clip windows need a [time, height, width, 3] input`);
      }
      specs.push(spec);
    }

    this.kafka = new kafkajs.Kafka({ clientId: t.kafka.clientId, brokers: t.kafka.brokers, logLevel: kafkajs.logLevel.WARN, ...kafkaSecurity });
    this.admin = this.kafka.admin();
    await this.admin.connect().catch((err: unknown) => {
      throw kafkaConnectError(err, t.kafka.brokers, 'source') ?? err;
    });
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
    this.smoother = new Smoother(t.smoothing);

    for (const [i, spec] of specs.entries()) {
      const m = t.models[i]!;
      const maxBatch = Math.min(spec.maxBatchSize, t.batch.maxBatchSize ?? spec.maxBatchSize);
      const estimator = new LatencyEstimator();
      let lastFinished = 0;
      const gauge = this.metrics.queueFrames.labels({ model: spec.name });
      const queued = this.metrics.stageSeconds.labels({ stage: 'queued' });
      const batcher = new Batcher({
        maxBatch,
        maxWaitMs: t.batch.maxWaitMs,
        mode: t.batch.mode,
        streamQueueFrames: t.batch.streamQueueFrames,
        queueFrames: t.batch.queueFrames,
        marginMs: t.batch.marginMs,
        fairShares: t.batch.fairShares,
        estimator,
        drop: (f, reason) => {
          dropItem(this.drops, f, reason);
          poolFor(f.data.length).give(f.data);
        },
        taken: (frames) => {
          const now = performance.now();
          for (const f of frames) queued.observe((now - f.decodedAt) / 1000);
          gauge.set(batcher.length);
        },
      });
      const stage = new InferStage({
        spec,
        topK: m.topK,
        pool: this.pool,
        ring: await this.shmRing(spec, maxBatch, t.batch.maxInflight),
        // Replay has no deadlines to keep: a past deadline must not become a 1 ms Triton timeout.
        deadlineTimeout: t.triton.deadlineTimeout && t.batch.mode === 'live',
        priority: t.triton.priority,
        batcher,
        sinks: this.sinks,
        drops: this.drops,
        metrics: this.metrics,
        maxInflight: t.batch.maxInflight,
        timeoutMs: t.triton.timeoutMs,
        retries: t.triton.retries,
        // The estimate is of service time: with requests overlapping, a response's latency also
        // holds its wait behind the previous one, which the batcher already accounts for.
        observeLatency: (n, ms) => {
          const finished = performance.now();
          estimator.observe(n, finished - Math.max(finished - ms, lastFinished));
          lastFinished = finished;
        },
        settled: () => batcher.settled(),
        published: (records) => this.smoothed(records),
      });
      // Clip models: frames gather in per-session windows; each complete window is one batch item.
      const clips = spec.clipFrames
        ? new ClipAssembler({
            frames: spec.clipFrames,
            stride: m.clip?.stride ?? spec.clipFrames,
            frameBytes: spec.width * spec.height * 3,
            skipped: (f) => this.drops.drop(f.owner, f.stream, f.session, f.index, f.index, 'sampled'),
          })
        : undefined;
      // Synchronous unless the batcher must wait (replay mode, full queues).
      const push = (frame: Frame): void | Promise<void> => {
        const item = clips ? clips.add(frame) : frame;
        if (!item) return;
        const r = batcher.push(item);
        if (r instanceof Promise) return r.then(() => gauge.set(batcher.length));
        gauge.set(batcher.length);
      };
      const sessionEnded = async (stream: string, session: string) => {
        const item = clips?.end(stream, session);
        if (item) await batcher.push(item);
      };
      this.lanes.push({ spec, pattern: m.streams ? new RegExp(m.streams) : undefined, batcher, stage, push, sessionEnded });
      stage.start();
    }

    if (t.triton.statsIntervalMs > 0) {
      this.stats = new StatsPoller({ clients: () => this.pool.clients, models: specs.map((s) => s.name), intervalMs: t.triton.statsIntervalMs, metrics: this.metrics });
      this.stats.start();
    }

    const routes = new Map<string, Route>();
    this.decode = new DecodeStage({
      config: t.decode,
      route: (stream) => {
        let r = routes.get(stream);
        if (!r) {
          const lane = this.lanes.find((l) => !l.pattern || l.pattern.test(stream)) ?? this.lanes[0]!;
          const budget = t.latency.streams.find((o) => new RegExp(o.streams).test(stream))?.budgetMs ?? t.latency.budgetMs;
          r = { model: lane.spec.name, width: lane.spec.width, height: lane.spec.height, budgetMs: budget, sampling: samplingRuleFor(t.sampling, stream), push: lane.push, sessionEnded: lane.sessionEnded };
          // Bounded: forget routes of streams long gone rather than grow without limit.
          if (routes.size >= 10_000) routes.clear();
          routes.set(stream, r);
        }
        return r;
      },
      drops: this.drops,
      metrics: this.metrics,
      shed: t.batch.mode === 'live' && t.decode.shedLoad,
    });
    for (const l of this.lanes) this.decode.warm(l.spec.width, l.spec.height);
    this.source = new KafkaSource(this.kafka, this.admin, this.producer, src, this.decode, this.metrics);

    this.http = await startHttp(t.http.listen, this.metrics, { notReadyReason: () => this.notReadyReason() }, auth);
    if (ws) ws.attach(this.http, auth);
    await this.source.start();
    log.info('pipeline running', {
      topology: t.name,
      models: specs.map((s) => `${s.name} ${s.clipFrames ? `${s.clipFrames}x` : ''}${s.width}x${s.height} batch<=${s.maxBatchSize}`),
      http: t.http.listen,
    });
  }

  /** Smoothed labels → `change` events, published best-effort (they do not gate offsets). */
  private smoothed(records: LabelRecord[]): void {
    const events = this.smoother.observe(records);
    if (events.length === 0) return;
    this.metrics.changeEvents.inc(events.length);
    for (const s of this.sinks) s.publishEvents(events).catch((err) => log.warn('publishing change events failed', { err }));
  }

  /**
   * The lane's shared-memory input slots (one per in-flight batch), registered with every endpoint
   * that accepts them; none with `transport: grpc`, or with `auto` when the files cannot be made.
   */
  private async shmRing(spec: ModelSpec, maxBatch: number, slots: number): Promise<ShmRing | undefined> {
    const setting = this.topology.triton.transport;
    if (setting === 'grpc') return undefined;
    let ring: ShmRing;
    try {
      ring = new ShmRing({ tag: spec.name, slots, inputSlotBytes: frameTensorBytes(spec) * maxBatch });
    } catch (err) {
      if (setting === 'shm') throw err;
      log.warn('cannot create shared memory; sending tensors in the gRPC message', { model: spec.name, err });
      return undefined;
    }
    await this.pool.addRing(ring);
    return ring;
  }

  private async notReadyReason(): Promise<string | undefined> {
    if (this.closing) return 'shutting down';
    if (!this.source?.isConsuming) return 'not consuming (consumer group not joined)';
    try {
      if (this.pool.readyCount === 0) return 'no Triton endpoint is ready';
      const triton = this.pool.primary;
      for (const l of this.lanes) if (!(await triton.modelReady(l.spec.name))) return `model ${l.spec.name} not ready`;
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
      for (const l of this.lanes) l.batcher.close();
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
    this.stats?.stop();
    await this.pool?.close();
    if (this.http) {
      this.http.closeAllConnections();
      await new Promise<void>((r) => this.http!.close(() => r()));
    }
  }
}
