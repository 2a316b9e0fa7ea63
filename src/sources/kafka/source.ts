/**
 * Kafka source: a consumer group over the chunks topic. Records of a partition are handled in
 * order; a bad record is copied to the dead-letter topic with a reason and counts as handled;
 * offsets are committed on a timer, never past a frame that is not yet finished (see
 * checkpoint.ts), with each stream's resume point in the commit metadata.
 */
import type { Admin, Consumer, EachMessagePayload, Kafka, Producer } from 'kafkajs';
import { log } from '../../core/log.js';
import { OUTAGE_RETRY_BASE_MS, OUTAGE_RETRY_MAX_MS, isAbort, retry } from '../../core/retry.js';
import { kafkaRetriable } from '../../kafka/errors.js';
import type { Metrics } from '../../telemetry/metrics.js';
import type { ResumePoint } from '../../core/ack.js';
import { PartitionTracker, parseCommitMetadata } from './checkpoint.js';
import { DEAD_LETTER_REASONS, type DeadLetterCode } from '../../core/errors.js';
import { parseChunk, type Chunk, type RawRecord } from './chunk.js';
import type { KafkaSourceConfig } from './config.js';
import { Rebalance } from './rebalance.js';
import type { ChunkHandler, ChunkHistory, ConsumerLag, Source } from '../../core/source.js';
import { PartitionReader, readSessionChunks } from '../../kafka/topic-reader.js';
import { groupLag } from './lag.js';

/**
 * Bytes one fetch returns per partition at most: a few 64 KiB chunks of several streams per
 * round trip keep the decoders fed without one partition's backlog filling memory (a replay
 * catches up at 4 MiB a fetch).
 */
const MAX_FETCH_BYTES_PER_PARTITION = 4 << 20;

export class KafkaSource implements Source {
  readonly name = 'kafka';
  private readonly consumer: Consumer;
  private readonly partitions = new Map<number, PartitionTracker>();
  private readonly rebalance: Rebalance;
  private commitTimer: NodeJS.Timeout | undefined;
  private committing: Promise<void> = Promise.resolve();
  private joined = false;
  private stopped = false;
  private inProgress = 0;
  private idleWaiter: (() => void) | undefined;
  /** Resume points read from the group's last commit, by stream + session. */
  private readonly committed = new Map<string, ResumePoint>();
  /** The group's lag on the chunks topic. */
  readonly consumerLag: ConsumerLag = { lag: () => groupLag(this.admin, this.config.group, this.config.topic) };
  /** Chunks read back from the chunks topic (alert snapshots), by a reader of its own group, started on the first read. */
  private readonly reader: PartitionReader;
  readonly chunkHistory: ChunkHistory = { readSession: (q) => readSessionChunks(this.reader.read, this.config.topic, q), warm: () => this.reader.warm() };

  constructor(
    kafka: Kafka,
    private readonly admin: Admin,
    private readonly producer: Producer,
    private readonly config: KafkaSourceConfig,
    private readonly decode: ChunkHandler,
    private readonly metrics: Metrics,
    /** Aborted at shutdown: dead-letter retries stop. */
    private readonly signal?: AbortSignal,
  ) {
    this.reader = new PartitionReader(kafka, admin, config.topic, `${config.group}-readback`);
    this.consumer = kafka.consumer({
      groupId: config.group,
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: config.heartbeatIntervalMs,
      rebalanceTimeout: config.rebalanceTimeoutMs,
      maxWaitTimeInMs: config.fetchMaxWaitMs,
      maxBytesPerPartition: MAX_FETCH_BYTES_PER_PARTITION,
      allowAutoTopicCreation: false,
    });
    this.rebalance = new Rebalance(this.consumer, config.topic, {
      partitions: this.partitions,
      release: (t) => this.decode.release(t),
      commit: () => this.commit(),
      loadResumePoints: () => this.loadResumePoints(),
      joined: () => (this.joined = true),
    }, metrics);
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.joined = false;
      log.error('Kafka consumer crashed', { err: e.payload.error, restart: e.payload.restart });
    });
  }

  get isConsuming(): boolean {
    return this.joined && !this.stopped;
  }

  async start(): Promise<void> {
    await this.loadResumePoints();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.config.topic, fromBeginning: this.config.fromBeginning });
    await this.consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: Math.max(1, this.config.partitions),
      eachMessage: (p) => this.onMessage(p),
    });
    this.commitTimer = setInterval(() => void this.commit(), this.config.commitIntervalMs);
  }

  /** Resume points committed by the previous run of this group (all partitions of the topic). */
  private async loadResumePoints(): Promise<void> {
    try {
      const res = await this.admin.fetchOffsets({ groupId: this.config.group, topics: [this.config.topic] });
      for (const t of res) for (const p of t.partitions) for (const rp of parseCommitMetadata(p.metadata)) this.committed.set(rp.stream + '\u0000' + rp.session, rp);
    } catch (err) {
      log.warn('could not read committed resume points', { err });
    }
  }

  private tracker(topic: string, partition: number): PartitionTracker {
    let t = this.partitions.get(partition);
    if (!t) this.partitions.set(partition, (t = new PartitionTracker(topic, partition, (c, code, detail) => this.deadLetter(c as Chunk, code, detail), this.committed)));
    return t;
  }

  private async onMessage({ topic, partition, message, heartbeat }: EachMessagePayload): Promise<void> {
    if (this.stopped) {
      // Intake is stopping: the record is not tracked, so no commit passes it; the next run reads it.
      return;
    }
    // Records of a partition given up, or fetched again after a rebalance, were handled already.
    if (!this.rebalance.accepts(partition)) return;
    if (this.rebalance.mustWait(partition)) await this.rebalance.loaded;
    const tracker = this.tracker(topic, partition);
    if (tracker.seen(message.offset)) return;
    tracker.received(message.offset);
    this.inProgress++;
    this.metrics.chunksReceived.inc();
    const raw: RawRecord = { topic, partition, offset: message.offset, key: message.key, value: message.value, headers: message.headers };
    const chunk = parseChunk(raw);
    let failed = false;
    try {
      if ('code' in chunk) {
        await this.deadLetter(raw, chunk.code, chunk.detail).catch((err: unknown) => {
          failed = true; // not handled: no commit may pass it
          if (!isAbort(err)) throw err;
        });
        return;
      }
      const wait = this.decode.handle(chunk, tracker);
      if (wait) {
        // While the decoder is backed up, this await holds the partition; keep the group alive meanwhile.
        const beat = setInterval(() => void heartbeat().catch(() => {}), 1_000);
        try {
          await wait;
        } catch (err) {
          failed = true; // a dead letter that could not be written: not handled
          if (!isAbort(err)) throw err;
        } finally {
          clearInterval(beat);
        }
      }
    } finally {
      if (!failed) tracker.handled(message.offset);
      if (--this.inProgress === 0 && this.idleWaiter) this.idleWaiter();
    }
  }

  /** Copies a record unchanged to the dead-letter topic with the reason headers (docs/contracts.md). */
  readonly deadLetter = async (r: RawRecord, code: DeadLetterCode, detail: string): Promise<void> => {
    const reason = DEAD_LETTER_REASONS[code];
    this.metrics.chunksDeadLettered.inc({ reason });
    const stream = r.key?.toString('utf8') ?? '';
    log.once('warn', `dlq:${reason}:${stream}`, 'chunk dead-lettered', { code, reason, detail, stream, topic: r.topic, partition: r.partition, offset: r.offset });
    const headers = { ...(r.headers ?? {}) };
    headers['fw-dlq-reason'] = reason;
    headers['fw-dlq-code'] = code;
    headers['fw-dlq-detail'] = detail.replace(/[\r\n]+/g, ' ');
    headers['fw-dlq-topic'] = r.topic;
    headers['fw-dlq-partition'] = String(r.partition);
    headers['fw-dlq-offset'] = r.offset;
    try {
      await retry(() => this.producer.send({ topic: this.config.dlqTopic, acks: -1, messages: [{ key: r.key, value: r.value, headers }] }), {
        attempts: Infinity,
        baseMs: OUTAGE_RETRY_BASE_MS,
        maxMs: OUTAGE_RETRY_MAX_MS,
        signal: this.signal,
        retriable: kafkaRetriable,
        onRetry: (err, attempt) => {
          if (attempt === 0) log.warn('dead-lettering failed; retrying', { err });
        },
      });
    } catch (err) {
      // Aborted (shutdown) or refused: the record is not handled, so no commit passes it.
      if (!isAbort(err)) log.error('dead-lettering failed and cannot be retried; the record stays uncommitted', { err, offset: r.offset });
      throw err;
    }
  };

  /** Commits each partition's safe offset with its resume points. Serialised. */
  commit(): Promise<void> {
    this.committing = this.committing.then(async () => {
      const offsets = [];
      for (const t of this.partitions.values()) {
        t.prune();
        const cp = t.commitPoint();
        if (!cp) continue;
        const key = cp.offset + '|' + cp.metadata;
        if (key === t.lastCommitted) continue;
        offsets.push({ topic: t.topic, partition: t.partition, offset: cp.offset, metadata: cp.metadata, key, t });
      }
      if (offsets.length === 0) return;
      try {
        await this.consumer.commitOffsets(offsets.map(({ topic, partition, offset, metadata }) => ({ topic, partition, offset, metadata })));
        for (const o of offsets) o.t.lastCommitted = o.key;
        this.metrics.commits.inc();
      } catch (err) {
        log.warn('offset commit failed; will retry', { err });
      }
    });
    return this.committing;
  }

  /** Phase one of shutdown: stop fetching; records being handled finish. */
  async stopIntake(): Promise<void> {
    this.stopped = true;
    try {
      this.consumer.pause([{ topic: this.config.topic }]);
    } catch {
      /* never started (a failed start): nothing to pause */
    }
    while (this.inProgress > 0) await new Promise<void>((r) => (this.idleWaiter = r));
  }

  /** Final commit and disconnect. */
  async close(): Promise<void> {
    if (this.commitTimer) clearInterval(this.commitTimer);
    await this.commit();
    await this.consumer.disconnect();
    await this.reader.close();
  }
}
