/**
 * Streams that keep crashing their decoder (hostile or broken bytes) are set aside for a while so
 * they cannot starve the others of CPU and decoder starts: `quarantineCrashes` crashes within
 * `quarantineWindowMs` quarantine a stream for `quarantineMs`. Meanwhile its chunks are
 * dead-lettered (reason `quarantined`), so every record stays accounted for; afterwards decoding
 * starts again at the next keyframe. Bounded: forgets streams whose crashes are old.
 */
export interface QuarantineOptions {
  crashes: number;
  windowMs: number;
  durationMs: number;
}

export class Quarantine {
  private readonly crashTimes = new Map<string, number[]>();
  private readonly until = new Map<string, number>();

  constructor(private readonly o: QuarantineOptions) {}

  /** A decoder of `stream` crashed; true when this crash starts a quarantine. */
  crashed(stream: string, now = Date.now()): boolean {
    if (this.until.has(stream)) return false;
    let t = this.crashTimes.get(stream);
    if (!t) {
      if (this.crashTimes.size >= 10_000) this.prune(now);
      this.crashTimes.set(stream, (t = []));
    }
    t.push(now);
    while (t.length > 0 && now - t[0]! > this.o.windowMs) t.shift();
    if (t.length < this.o.crashes) return false;
    this.crashTimes.delete(stream);
    this.until.set(stream, now + this.o.durationMs);
    return true;
  }

  /** Until when the stream is quarantined (Unix ms), or undefined when it is not (any more). */
  quarantinedUntil(stream: string, now = Date.now()): number | undefined {
    const u = this.until.get(stream);
    if (u === undefined) return undefined;
    if (now < u) return u;
    this.until.delete(stream);
    return undefined;
  }

  get size(): number {
    return this.until.size;
  }

  private prune(now: number): void {
    for (const [s, t] of this.crashTimes) if (t.length === 0 || now - t[t.length - 1]! > this.o.windowMs) this.crashTimes.delete(s);
  }
}
