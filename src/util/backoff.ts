/** Exponential backoff: `initialMs` before the first retry, doubling per retry, never above `maxMs`. */
export interface BackoffPolicy {
  /** ms before the first retry. */
  readonly initialMs: number;
  /** ms, the longest wait. */
  readonly maxMs: number;
}

/** The wait before retry number `n` (n ≥ 1). */
export function backoffDelay(policy: BackoffPolicy, n: number): number {
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(30, n - 1));
}
