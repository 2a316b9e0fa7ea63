/**
 * Live estimate of a model's service time as a function of batch size: a least-squares line
 * through the most recent observations, padded by the 95th percentile of how far they came above
 * it, so that a noisy model (CPU contention, Python backend) is planned for its bad cases, not its
 * mean. A quantile, not a multiple of the standard deviation: one request held up 300 ms (the
 * machine busy starting decoders) inflated two standard deviations of 60 observations by ~70 ms,
 * and for 5 s every frame older than ~100 ms looked infeasible and was dropped (16 streams: whole
 * seconds of `deadline` drops that would have made it).
 * The scheduler asks it how long a batch of n frames will take.
 *
 * Observations older than the horizon are left out of each fit, so a bad spell (the machine
 * saturated) is forgotten as soon as newer requests show it is over: otherwise an estimate
 * inflated by it would make every frame look infeasible, nothing would be sent, and nothing would
 * ever correct it.
 */
export class LatencyEstimator {
  private readonly ns: Float64Array;
  private readonly ms: Float64Array;
  private readonly at: Float64Array;
  private count = 0;
  private next = 0;
  private a: number;
  private b: number;
  /** The 95th percentile of the observations' excess over the line. */
  private pad = 0;
  private readonly residuals: Float64Array;

  /**
   * Before any observation a batch is assumed to cost `initialMs` per frame: pessimistic, so the
   * first batches are small, finish in time and teach the estimate quickly.
   */
  constructor(
    initialMs = 50,
    private readonly size = 64,
    private readonly horizonMs = 5000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.ns = new Float64Array(size);
    this.ms = new Float64Array(size);
    this.at = new Float64Array(size);
    this.residuals = new Float64Array(size);
    this.a = 0;
    this.b = initialMs;
  }

  observe(batchSize: number, ms: number): void {
    this.ns[this.next] = batchSize;
    this.ms[this.next] = ms;
    this.at[this.next] = this.now();
    this.next = (this.next + 1) % this.size;
    if (this.count < this.size) this.count++;
    this.fit();
  }

  /** Expected latency of a request of n frames, ms. */
  estimate(n: number): number {
    return Math.max(0, this.a + this.b * n) + this.pad;
  }

  get samples(): number {
    return this.count;
  }

  private fit(): void {
    const oldest = this.now() - this.horizonMs;
    let c = 0;
    let sn = 0;
    let sm = 0;
    for (let i = 0; i < this.count; i++) {
      if (this.at[i]! < oldest) continue;
      c++;
      sn += this.ns[i]!;
      sm += this.ms[i]!;
    }
    const mn = sn / c;
    const mm = sm / c;
    let sxx = 0;
    let sxy = 0;
    for (let i = 0; i < this.count; i++) {
      if (this.at[i]! < oldest) continue;
      const dx = this.ns[i]! - mn;
      sxx += dx * dx;
      sxy += dx * (this.ms[i]! - mm);
    }
    if (sxx > 0) {
      // Latency never falls with batch size; clamp a noisy negative slope.
      this.b = Math.max(0, sxy / sxx);
      this.a = mm - this.b * mn;
    } else {
      this.b = mm / Math.max(1, mn) / 2; // one batch size seen: assume half the cost scales with it
      this.a = mm - this.b * mn;
    }
    let k = 0;
    for (let i = 0; i < this.count; i++) {
      if (this.at[i]! < oldest) continue;
      this.residuals[k++] = this.ms[i]! - (this.a + this.b * this.ns[i]!);
    }
    if (c <= 2) {
      this.pad = 0;
      return;
    }
    const r = this.residuals.subarray(0, k).sort();
    this.pad = Math.max(0, r[Math.min(k - 1, Math.floor(0.95 * k))]!);
  }
}
