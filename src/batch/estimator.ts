/**
 * Live estimate of a model's request latency as a function of batch size: a least-squares line
 * through the most recent observations (client-measured, so it includes Triton's queue and the
 * network). The scheduler asks it how long a batch of n frames will take.
 */
export class LatencyEstimator {
  private readonly ns: Float64Array;
  private readonly ms: Float64Array;
  private count = 0;
  private next = 0;
  private a: number;
  private b = 0;

  constructor(initialMs = 50, private readonly size = 64) {
    this.ns = new Float64Array(size);
    this.ms = new Float64Array(size);
    this.a = initialMs;
  }

  observe(batchSize: number, ms: number): void {
    this.ns[this.next] = batchSize;
    this.ms[this.next] = ms;
    this.next = (this.next + 1) % this.size;
    if (this.count < this.size) this.count++;
    this.fit();
  }

  /** Expected latency of a request of n frames, ms. */
  estimate(n: number): number {
    return Math.max(0, this.a + this.b * n);
  }

  get samples(): number {
    return this.count;
  }

  private fit(): void {
    const c = this.count;
    let sn = 0;
    let sm = 0;
    for (let i = 0; i < c; i++) {
      sn += this.ns[i]!;
      sm += this.ms[i]!;
    }
    const mn = sn / c;
    const mm = sm / c;
    let sxx = 0;
    let sxy = 0;
    let maxMs = 0;
    for (let i = 0; i < c; i++) {
      const dx = this.ns[i]! - mn;
      sxx += dx * dx;
      sxy += dx * (this.ms[i]! - mm);
      if (this.ms[i]! > maxMs) maxMs = this.ms[i]!;
    }
    if (sxx > 0) {
      // Latency never falls with batch size; clamp a noisy negative slope.
      this.b = Math.max(0, sxy / sxx);
      this.a = mm - this.b * mn;
    } else {
      this.b = mm / Math.max(1, mn) / 2; // one batch size seen: assume half the cost scales with it
      this.a = mm - this.b * mn;
    }
  }
}
