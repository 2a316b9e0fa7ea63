/**
 * Recycles frame-sized buffers so the decode → infer path does not allocate per frame once warm.
 * Bounded: at most `maxFree` buffers are kept; the rest go to the GC.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  constructor(readonly size: number, private readonly maxFree = 256) {}

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
