/**
 * The topology builder: turns a loaded topology into its components, checking everything that
 * can be checked before anything starts — models ready in Triton and shaped as the config needs,
 * topics present, every component type registered. Nothing consumes or listens yet; the
 * RunningTopology it returns starts the parts in order. A failure closes what was opened.
 */
import type { LabelRecord } from '../core/frame.js';
import { FramewireError } from '../core/errors.js';
import { log } from '../core/log.js';
import type { Topology } from '../config/topology.js';
import { Metrics } from '../telemetry/metrics.js';
import { HttpEndpoint, addTelemetryRoutes } from '../telemetry/http.js';
import { HttpAuth } from '../telemetry/auth/auth.js';
import { readTls } from '../config/tls.js';
import { DecodeStage } from '../decode/sessions.js';
import type { TritonClient } from '../infer/triton/client.js';
import { tritonEndpoints } from '../infer/triton/config.js';
import { describeModel, frameTensorBytes, inputMismatch, type ModelSpec } from '../infer/triton/model.js';
import { TritonPool } from '../infer/triton/pool.js';
import { ShmRing } from '../infer/triton/shm.js';
import { StatsPoller } from '../infer/triton/stats.js';
import { Smoother } from '../postprocess/smoothing.js';
import { changeEvents } from '../postprocess/changes.js';
import { RecordBatch, type Sink } from '../core/sink.js';
import { OutputStage } from '../sinks/output.js';
import { Snapshotter } from '../clip/snapshots.js';
import { FrameTracer } from '../telemetry/tracing.js';
import type { Source } from '../core/source.js';
import { registry } from './registry.js';
import type { BuildContext, ComponentKind, TopicSpec } from '../core/component.js';
import { SharedKafka } from '../kafka/connections.js';
import { ensureTopics } from '../kafka/topics.js';
import { buildLane, laneMaxBatch, type Lane } from './lanes.js';
import { StreamRouter } from './routes.js';
import { DegradeLoop } from './degrade.js';
import { degradeOn } from '../batch/degrade.js';
import { DropPublisher } from './drops.js';
import { RunningTopology, closeAll } from './running.js';
import { FAILED_START_STEP_MS, Startup, bounded } from './lifecycle.js';
import { kafkaRetriable } from '../kafka/errors.js';
import { Monitor } from './monitor.js';
import { ModelReloader, requestedVersion } from './reload.js';
import { promoter } from './promotion.js';
import { topologyHash } from '../config/hash.js';

/**
 * `abort` cancels the build (a signal during start-up) and, once running, every retry loop (the
 * drain deadline passed); Kafka and Triton are waited for up to `startupTimeoutMs`.
 */
export async function buildTopology(t: Topology, abort = new AbortController()): Promise<RunningTopology> {
  const startup = new Startup(t.startupTimeoutMs, abort.signal);
  const signal = abort.signal;
  const metrics = new Metrics();
  // Secrets and certificates first: a missing one fails the start before any connection is made.
  const auth = HttpAuth.fromConfig(t.http.auth);
  const tritonTls = t.triton.tls ? readTls(t.triton.tls, 'triton.tls') : undefined;
  const kafka = new SharedKafka(t.kafka);
  const pool = new TritonPool({
    endpoints: tritonEndpoints(t.triton),
    models: t.models.map((m) => ({ name: m.name, version: requestedVersion(m) })),
    transport: t.triton.transport,
    healthIntervalMs: t.triton.healthIntervalMs,
    metrics,
    tls: tritonTls,
  });
  const sinks: Sink[] = [];
  try {
    await pool.start();
    // Triton not up yet is waited for; a model it does not have is a topology error at once.
    const specs = await startup.until(`Triton at ${pool.primary.url}`, () => checkModels(t, pool.primary));
    const shadowSpecs = await checkShadows(t, pool.primary, specs);
    const kafkaAt = `Kafka at ${t.kafka.brokers.join(',')}`;

    const sourceComponents = t.sources.map((c, i) => lookup(registry.sources, 'source', c.type, i));
    const sinkComponents = t.sinks.map((c, i) => lookup(registry.sinks, 'sink', c.type, i));
    const topics: TopicSpec[] = [];
    for (const [i, c] of sourceComponents.entries()) topics.push(...(c.topics?.(t.sources[i]!) ?? []));
    for (const [i, c] of sinkComponents.entries()) topics.push(...(c.topics?.(t.sinks[i]!) ?? []));
    if (topics.length > 0) await startup.until(kafkaAt, async () => ensureTopics(await kafka.admin(), topics), kafkaRetriable);
    await startup.until(kafkaAt, () => kafka.producer(), kafkaRetriable);

    const http = new HttpEndpoint(t.http.listen, auth, metrics);
    // Alert snapshots: published through the output stage (made below), from the chunks a source reads back (set once built).
    let output: OutputStage | undefined;
    const snapshots = new Snapshotter({ config: t.snapshots, metrics, ffmpegPath: t.decode.ffmpegPath ?? 'ffmpeg', publish: (r) => output?.snapshot(r) });
    const ctx: BuildContext = { pipelineName: t.name, metrics, kafka, http, signal, snapshots };
    for (const [i, c] of sinkComponents.entries()) sinks.push(await c.build(ctx, t.sinks[i]!));
    // The one place records fan out to the sinks (sinks/output.ts).
    output = new OutputStage(sinks, metrics, signal);
    snapshots.wanted = sinks.some((s) => s.publishSnapshots || s.sendsSnapshots);
    const drops = new DropPublisher(output, metrics, t.accounting.dropFlushMs);
    // Lineage: every record names the configuration that produced it; a reload that applies changes it.
    let runningHash = topologyHash(t);
    drops.topologyHash = runningHash;
    const currentHash = (): string => runningHash;
    // Stream health, alert rules and the dashboard feed, beside the data path (monitor.ts).
    let decode: DecodeStage | undefined;
    const monitor = new Monitor({ topology: t, output, metrics, sinks, models: specs.map((s) => s.name), snapshots, decoding: (stream) => decode?.decoderRunning(stream), inputClock: () => decode?.inputClock() ?? Date.now() });
    drops.onDrop = monitor.dropped;
    monitor.addRoutes(http);

    const onChanges = changeEvents(new Smoother(t.smoothing), output, metrics, (events) => monitor.changes(events));
    const changes = (records: LabelRecord[]): void => {
      monitor.published(records);
      onChanges(records);
    };
    // Traces name what the components declare: the (first) source's topic and group, the first
    // sink's labels destination (core/component.ts `messaging`).
    const src = sourceComponents[0]!.messaging?.(t.sources[0]!);
    const labelsTo = sinkComponents.map((c, i) => c.messaging?.(t.sinks[i]!)).find((m) => m !== undefined);
    const tracer = FrameTracer.create(t.telemetry, { chunks: src?.destination ?? t.sources[0]!.type, group: src?.group ?? '', labels: labelsTo?.destination ?? 'labels' });
    const lanes: Lane[] = [];
    // Shadows that meet their promoteWhen swap with their primary through the reloader (made below).
    let reloader: ModelReloader | undefined;
    const promote = promoter({ reloader: () => reloader, lanes, output, metrics });
    for (const [i, spec] of specs.entries()) {
      const ring = await shmRing(t, pool, spec, laneMaxBatch(spec, t));
      lanes.push(buildLane({ spec, model: t.models[i]!, topology: t, pool, ring, output, drops, metrics, published: changes, signal, tracer, topologyHash: currentHash, shadowSpec: shadowSpecs[i], promote: (sh) => promote(i, sh) }));
    }
    const stats =
      t.triton.statsIntervalMs > 0 ? new StatsPoller({ clients: () => pool.clients, models: () => [...new Set(lanes.map((l) => l.stage.spec.name))], intervalMs: t.triton.statsIntervalMs, metrics }) : undefined;

    const router = new StreamRouter(t, lanes);
    decode = new DecodeStage({ config: t.decode, route: (stream) => monitor.route(router.route(stream)), drops, metrics, shed: t.batch.mode === 'live' && t.decode.shedLoad, observer: monitor, event: (e) => output.bestEffort(new RecordBatch([e]), 'stream events') });
    // Degrading by sampling before dropping: only where frames can be dropped at all (off, the loop only measures).
    const degrade = t.batch.mode === 'live' ? new DegradeLoop({ config: { ...t.priority.degrade, enabled: degradeOn(t.priority) }, decode, lanes, output, metrics }) : undefined;
    if (degrade) {
      const health = drops.onDrop;
      drops.onDrop = (stream, reason, count) => {
        health?.(stream, reason, count);
        degrade.dropped(stream, reason, count);
      };
    }
    const sources: Source[] = [];
    for (const [i, c] of sourceComponents.entries()) sources.push(await c.build({ ...ctx, decode }, t.sources[i]!));
    snapshots.history = sources.find((s) => s.chunkHistory)?.chunkHistory;

    startup.check();
    reloader = new ModelReloader(t, lanes, pool, (now) => {
      runningHash = drops.topologyHash = topologyHash(now);
      log.info('topology reloaded: records carry its new hash', { topologyHash: runningHash });
    });
    const graph = new RunningTopology({ topology: t, metrics, pool, kafka, http, sinks, drops, lanes, stats, decode, sources, reloader, monitor, abort, startup, tracer, degrade });
    addTelemetryRoutes(http, metrics, graph);
    return graph;
  } catch (err) {
    // Bounded: a connection still being attempted to an unreachable broker must not hold the exit.
    await bounded(closeAll(sinks), FAILED_START_STEP_MS, 'closing sinks');
    await bounded(kafka.close(), FAILED_START_STEP_MS, 'closing Kafka connections');
    await bounded(pool.close(), FAILED_START_STEP_MS, 'closing Triton connections');
    throw err;
  }
}

function lookup<C>(components: Map<string, C>, kind: ComponentKind, type: string, index: number): C {
  const c = components.get(type);
  // The schema admits registered types only; this guards a component unregistered since loading.
  if (!c) throw new FramewireError('TOPOLOGY_INVALID', 'config', `${kind}s[${index}].type: unknown ${kind} type '${type}'`);
  return c;
}

/** Models first: an unknown or unfit model is a topology error, reported before anything starts. */
async function checkModels(t: Topology, triton: TritonClient): Promise<ModelSpec[]> {
  const specs: ModelSpec[] = [];
  for (const [i, m] of t.models.entries()) {
    const ready = await triton.modelReady(m.name, requestedVersion(m)).catch((err: FramewireError) => {
      if (err.code === 'INFER_UNAVAILABLE') throw new FramewireError('INFER_UNAVAILABLE', 'infer', `Triton at ${triton.url} is not reachable: ${err.message}`, { retriable: true, cause: err });
      return false;
    });
    if (!ready) {
      const known = (await triton.repositoryIndex().catch(() => [])).map((x) => x.name);
      throw new FramewireError('TOPOLOGY_INVALID', 'config', `models[${i}].${m.version === undefined ? 'name' : 'version'}: model '${m.name}'${m.version === undefined ? '' : ` version ${m.version}`} is not ready in Triton at ${triton.url} (repository has: ${known.join(', ') || 'nothing'})`);
    }
    const spec = await describeModel(triton, m.name, { version: requestedVersion(m), clipFrames: m.clip?.frames }).catch((err: FramewireError) => {
      throw err.code === 'MODEL_UNSUPPORTED' ? new FramewireError('TOPOLOGY_INVALID', 'config', `models[${i}]: ${err.message}`, { cause: err }) : err;
    });
    if (m.clip && spec.clipFrames === 0) {
      throw new FramewireError('TOPOLOGY_INVALID', 'config', `models[${i}].clip: model '${m.name}' has no time axis (input [height, width, 3]); clip windows need a [time, height, width, 3] input`);
    }
    specs.push(spec);
  }
  return specs;
}

/** The shadow models' descriptions (undefined where a model has none), each checked against its primary's input. */
async function checkShadows(t: Topology, triton: TritonClient, specs: ModelSpec[]): Promise<(ModelSpec | undefined)[]> {
  const out: (ModelSpec | undefined)[] = [];
  for (const [i, m] of t.models.entries()) {
    const sh = m.shadow;
    if (!sh) {
      out.push(undefined);
      continue;
    }
    const version = sh.version === undefined ? '' : String(sh.version);
    const ready = await triton.modelReady(sh.name, version).catch(() => false);
    if (!ready) throw new FramewireError('TOPOLOGY_INVALID', 'config', `models[${i}].shadow.name: model '${sh.name}'${sh.version === undefined ? '' : ` version ${sh.version}`} is not ready in Triton at ${triton.url}`);
    const spec = await describeModel(triton, sh.name, { version }).catch((err: FramewireError) => {
      throw err.code === 'MODEL_UNSUPPORTED' ? new FramewireError('TOPOLOGY_INVALID', 'config', `models[${i}].shadow: ${err.message}`, { cause: err }) : err;
    });
    const mismatch = inputMismatch(specs[i]!, spec);
    if (mismatch) throw new FramewireError('TOPOLOGY_INVALID', 'config', `models[${i}].shadow.name: ${mismatch}`);
    out.push(spec);
  }
  return out;
}

/**
 * A lane's shared-memory input slots (one per in-flight batch), registered with every endpoint
 * that accepts them; none with `transport: grpc`, or with `auto` when the files cannot be made.
 */
async function shmRing(t: Topology, pool: TritonPool, spec: ModelSpec, maxBatch: number): Promise<ShmRing | undefined> {
  const setting = t.triton.transport;
  if (setting === 'grpc') return undefined;
  let ring: ShmRing;
  try {
    ring = new ShmRing({ tag: spec.name, slots: t.batch.maxInflight, inputSlotBytes: frameTensorBytes(spec) * maxBatch });
  } catch (err) {
    if (setting === 'shm') throw err;
    log.warn('cannot create shared memory; sending tensors in the gRPC message', { model: spec.name, err });
    return undefined;
  }
  await pool.addRing(ring);
  return ring;
}
