/** One waiting consumer, woken by a producer or after a timeout (shared by the stage queues). */
export class Wakeup {
  private waiter: (() => void) | undefined;

  /** Resolves at the next `wake()`, or after timeoutMs when given. */
  wait(timeoutMs?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        if (this.waiter === done) this.waiter = undefined;
        resolve();
      };
      this.waiter = done;
      if (timeoutMs !== undefined) timer = setTimeout(done, Math.max(0, timeoutMs));
    });
  }

  wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w) w();
  }
}

/**
 * Bounded FIFO used at every stage boundary. `push` resolves when there is room (the `block`
 * policy: the producer waits, which in the end pauses the Kafka partition). A ring buffer:
 * no allocation per item once warmed up.
 */
export class BoundedQueue<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private count = 0;
  private readonly spaceWaiters: (() => void)[] = [];
  private readonly itemArrived = new Wakeup();
  private closed = false;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.items = new Array(capacity);
  }

  get length(): number {
    return this.count;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Adds an item now if there is room; false when full or closed. */
  tryPush(item: T): boolean {
    if (this.closed || this.count === this.capacity) return false;
    this.items[(this.head + this.count) % this.capacity] = item;
    this.count++;
    this.itemArrived.wake();
    return true;
  }

  /** Waits for room, then adds. Resolves false if the queue was closed meanwhile. */
  async push(item: T): Promise<boolean> {
    while (!this.tryPush(item)) {
      if (this.closed) return false;
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
    return true;
  }

  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    const w = this.spaceWaiters.shift();
    if (w) w();
    return item;
  }

  /** Resolves when an item is available (or the queue is closed), or after timeoutMs. */
  waitForItem(timeoutMs?: number): Promise<void> {
    if (this.count > 0 || this.closed) return Promise.resolve();
    return this.itemArrived.wait(timeoutMs);
  }

  /** Stops intake; waiting producers resolve false, a waiting consumer wakes. Items stay readable. */
  close(): void {
    this.closed = true;
    for (const w of this.spaceWaiters.splice(0)) w();
    this.itemArrived.wake();
  }
}
