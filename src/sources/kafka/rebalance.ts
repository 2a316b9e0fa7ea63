/**
 * What a member does when the consumer group moves partitions (kafkajs 2.2.4, eager protocol: in
 * every rebalance each member stops fetching, rejoins and gets a new assignment).
 *
 * kafkajs has no revocation callback and no way to hold the rejoin until a flush is done. What
 * it gives is REBALANCING (it learnt of a rebalance and is about to rejoin) and GROUP_JOIN (the
 * new assignment). So:
 * - REBALANCING: commit what is finished now, while this member's generation is still valid; a
 *   partition this member gives up continues on its new owner from there (the frames finished
 *   since the last timed commit are not redone).
 * - GROUP_JOIN, partitions given up: released. Their decoders stop without reporting what they
 *   held (the new owner decodes it again from the resume point) and their trackers leave the
 *   commit, so no later commit of ours can move the new owner's offset back.
 * - GROUP_JOIN, partitions kept: kafkajs would fetch them again from the committed offset (a new
 *   offset manager per generation); seek to the record after the last one received instead.
 * - GROUP_JOIN, partitions gained: their first record waits until the group's resume points are
 *   read again (the previous owner's last commit), so a session continues rather than being
 *   taken for an unknown one.
 */
import type { Consumer } from 'kafkajs';
import { log } from '../../core/log.js';
import type { Metrics } from '../../telemetry/metrics.js';
import type { PartitionTracker } from './checkpoint.js';

export interface RebalanceHooks {
  /** The source's trackers by partition (entries of given-up partitions are deleted here). */
  partitions: Map<number, PartitionTracker>;
  /** Stops the sessions fed from a partition given up. */
  release(tracker: PartitionTracker): void;
  commit(): Promise<void>;
  loadResumePoints(): Promise<void>;
  joined(): void;
}

export class Rebalance {
  private assigned = new Set<number>();
  /** Partitions gained in the last join whose records wait on `loaded` (the resume points being read). */
  private waiting = new Set<number>();
  loaded: Promise<void> = Promise.resolve();
  private rebalancingSince = 0;

  constructor(
    private readonly consumer: Consumer,
    private readonly topic: string,
    private readonly hooks: RebalanceHooks,
    private readonly metrics: Metrics,
  ) {
    consumer.on(consumer.events.REBALANCING, () => {
      this.rebalancingSince = Date.now();
      this.metrics.rebalances.inc();
      void hooks.commit();
    });
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.joined(e.payload.memberAssignment[topic] ?? []));
  }

  /** Whether a record of `partition` belongs to this member now. */
  accepts(partition: number): boolean {
    return this.assigned.has(partition);
  }

  /** Whether a record of `partition` must wait for `loaded` first (gained, resume points not read yet). */
  mustWait(partition: number): boolean {
    return this.waiting.size > 0 && this.waiting.has(partition);
  }

  private joined(partitions: number[]): void {
    const next = new Set(partitions);
    const revoked = [...this.assigned].filter((p) => !next.has(p));
    const added = partitions.filter((p) => !this.assigned.has(p));
    this.assigned = next;
    for (const p of revoked) {
      const t = this.hooks.partitions.get(p);
      if (!t) continue;
      this.hooks.partitions.delete(p);
      this.hooks.release(t);
    }
    for (const p of partitions) {
      const offset = this.hooks.partitions.get(p)?.nextOffset;
      if (offset !== undefined) this.consumer.seek({ topic: this.topic, partition: p, offset });
    }
    // Kept partitions go on at once; gained ones wait for the previous owner's resume points.
    const waiting = (this.waiting = new Set([...this.waiting, ...added].filter((p) => next.has(p))));
    this.loaded = this.hooks.loadResumePoints().finally(() => {
      if (this.waiting === waiting) this.waiting = new Set();
    });
    this.metrics.partitionsAssigned.set(partitions.length);
    const pausedMs = this.rebalancingSince ? Date.now() - this.rebalancingSince : 0;
    this.rebalancingSince = 0;
    log.info('consumer group partitions assigned', { topic: this.topic, partitions: [...partitions].sort((a, b) => a - b), added, revoked, rebalanceMs: pausedMs });
    this.hooks.joined();
  }
}
