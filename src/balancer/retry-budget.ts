/**
 * A retry budget (Envoy's idea): retries in the last `windowMs` may not exceed
 * `percent`% of requests in that window, but `min` retries are always allowed.
 * This keeps retries from multiplying an outage. Pure: times are passed in.
 */
export class RetryBudget {
  private readonly buckets: number;
  private readonly bucketMs: number;
  private readonly requests: Float64Array;
  private readonly retries: Float64Array;
  private readonly stamps: Float64Array;

  constructor(
    private readonly percent: number,
    private readonly min: number,
    windowMs = 10_000,
    buckets = 10,
  ) {
    this.buckets = buckets;
    this.bucketMs = windowMs / buckets;
    this.requests = new Float64Array(buckets);
    this.retries = new Float64Array(buckets);
    this.stamps = new Float64Array(buckets).fill(-1);
  }

  private slot(now: number): number {
    const epoch = Math.floor(now / this.bucketMs);
    const i = epoch % this.buckets;
    if (this.stamps[i] !== epoch) {
      this.stamps[i] = epoch;
      this.requests[i] = 0;
      this.retries[i] = 0;
    }
    return i;
  }

  recordRequest(now: number): void {
    this.requests[this.slot(now)]!++;
  }

  /** Reserves a retry if the budget allows it. */
  tryRetry(now: number): boolean {
    const i = this.slot(now);
    const epoch = Math.floor(now / this.bucketMs);
    let req = 0;
    let ret = 0;
    for (let b = 0; b < this.buckets; b++) {
      if (this.stamps[b]! > epoch - this.buckets) {
        req += this.requests[b]!;
        ret += this.retries[b]!;
      }
    }
    if (ret >= this.min && ret >= (req * this.percent) / 100) return false;
    this.retries[i]!++;
    return true;
  }
}
