/**
 * Forms batches for one model from the frames of all streams: up to `maxBatch` frames, waiting
 * at most `maxWaitMs` after the first frame for more.
 */
import type { Frame } from '../core/frame.js';
import type { BoundedQueue } from '../core/queue.js';

export class Batcher {
  constructor(
    private readonly queue: BoundedQueue<Frame>,
    readonly maxBatch: number,
    private readonly maxWaitMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The next batch, or undefined once the queue is closed and empty. */
  async next(): Promise<Frame[] | undefined> {
    while (this.queue.length === 0) {
      if (this.queue.isClosed) return undefined;
      await this.queue.waitForItem();
    }
    const batch: Frame[] = [];
    const until = this.now() + this.maxWaitMs;
    for (;;) {
      while (batch.length < this.maxBatch && this.queue.length > 0) batch.push(this.queue.shift()!);
      if (batch.length >= this.maxBatch || this.queue.isClosed) return batch;
      const left = until - this.now();
      if (left <= 0) return batch;
      await this.queue.waitForItem(left);
      if (this.queue.length === 0 && this.now() >= until) return batch;
    }
  }
}
