/**
 * Reports dropped frames as `dropped` events (docs/contracts.md), merging consecutive indices of one
 * session with the same reason into one record. A frame counts as finished only once its event
 * is published, so offsets never pass an unreported drop.
 */
import type { DropReason, DroppedEvent, FrameOwner } from '../core/frame.js';
import { log } from '../core/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { DropReporter } from '../core/drops.js';
import type { PipelineEvent } from '../core/events.js';
import { RecordBatch } from '../core/sink.js';
import type { OutputStage } from '../sinks/output.js';

interface Pending {
  owner: FrameOwner;
  stream: string;
  session: string;
  from: number;
  to: number;
  reason: DropReason;
  degraded: boolean;
  /** Chunk offsets of `from` and `to` (lineage), while the owner knows them. */
  fromOffset: number | undefined;
  toOffset: number | undefined;
}

export class DropPublisher implements DropReporter {
  /** The open range of each session, by its owner (one object per session: no key built per frame). */
  private pending = new Map<FrameOwner, Pending>();
  private ready: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** Told of every drop as it is reported (stream health). */
  onDrop: ((stream: string, reason: DropReason, count: number) => void) | undefined;
  /** The running topology's content hash, put on every record (set at start and by a reload). */
  topologyHash: string | undefined;

  /** The output stage's signal aborts its retries (shutdown past its deadline): unreported frames stay unfinished, so uncommitted. */
  constructor(private readonly output: OutputStage, private readonly metrics: Metrics, private readonly flushMs = 100) {}

  drop(owner: FrameOwner, stream: string, session: string, from: number, to: number, reason: DropReason, degraded = false): void {
    this.metrics.framesDropped.inc({ reason }, to - from + 1);
    this.onDrop?.(stream, reason, to - from + 1);
    const p = this.pending.get(owner);
    // Asked now: once the event is published the frames are finished and the owner forgets them.
    const toOffset = owner.chunkOffset?.(to);
    if (p && p.reason === reason && p.degraded === degraded && p.to + 1 === from) {
      p.to = to;
      p.toOffset = toOffset;
    } else {
      if (p) this.ready.push(p);
      this.pending.set(owner, { owner, stream, session, from, to, reason, degraded, fromOffset: from === to ? toOffset : owner.chunkOffset?.(from), toOffset });
    }
    if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.flushMs);
  }

  /** Publishes everything pending; resolves when published (or failed and retried later). */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch = this.ready.concat([...this.pending.values()]);
    this.ready = [];
    this.pending.clear();
    if (batch.length === 0) return this.flushing;
    this.flushing = this.flushing.then(() => this.publish(batch));
    return this.flushing;
  }

  private async publish(batch: Pending[]): Promise<void> {
    const events: PipelineEvent[] = batch.map((p) => droppedEvent(p, this.topologyHash));
    const outcome = await this.output.deliver('events', new RecordBatch(events), 'dropped events');
    if (outcome !== 'ok') {
      // Never given up silently: the frames stay unfinished (so uncommitted), and the next run redoes them.
      if (outcome === 'failed') log.error('dropped events refused by a sink; their frames stay uncommitted', { events: events.length });
      return;
    }
    for (const p of batch) p.owner.framesDropped(p.from, p.to, p.reason);
  }

  async close(): Promise<void> {
    await this.flush();
  }
}

/** The `dropped` record of a range; lineage fields the owner did not know are left out. */
export function droppedEvent(p: Omit<Pending, 'owner' | 'degraded'> & { degraded?: boolean; owner: Pick<FrameOwner, 'chunkPartition'> }, topologyHash: string | undefined): DroppedEvent {
  const e: DroppedEvent = { type: 'dropped', stream: p.stream, session: p.session, fromFrame: p.from, toFrame: p.to, reason: p.reason, count: p.to - p.from + 1 };
  if (p.degraded) e.degraded = true;
  const partition = p.owner.chunkPartition;
  if (partition !== undefined && p.fromOffset !== undefined && p.toOffset !== undefined) {
    e.partition = partition;
    e.offset = p.fromOffset;
    e.toOffset = p.toOffset;
  }
  if (topologyHash !== undefined) e.topologyHash = topologyHash;
  return e;
}
