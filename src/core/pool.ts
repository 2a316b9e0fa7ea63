/**
 * Recycles frame-sized buffers so the decode → infer path does not allocate per frame once warm.
 * Bounded by bytes: a pool keeps at most `maxFreeBytes` of free buffers (at least two); the rest
 * go to the GC. A burst (queues filling up under overload) therefore leaves at most that much
 * behind, instead of a free list that only ever grows to its largest peak.
 */
export const POOL_MAX_FREE_BYTES = 16 * 1024 * 1024;

export class BufferPool {
  private readonly free: Buffer[] = [];
  readonly maxFree: number;
  constructor(readonly size: number, maxFreeBytes = POOL_MAX_FREE_BYTES) {
    this.maxFree = Math.max(2, Math.floor(maxFreeBytes / Math.max(1, size)));
  }

  get freeCount(): number {
    return this.free.length;
  }

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }

  give(buf: Buffer): void {
    if (buf.length === this.size && this.free.length < this.maxFree) this.free.push(buf);
  }
}

const pools = new Map<number, BufferPool>();
export function poolFor(size: number): BufferPool {
  let p = pools.get(size);
  if (!p) pools.set(size, (p = new BufferPool(size)));
  return p;
}
