/**
 * Request samples and the figures derived from them: percentiles overall and
 * within failover windows, and failover gaps. Pure: times are plain ms values
 * from whatever monotonic clock the caller uses.
 */

export interface Sample {
  /** ms, monotonic */
  readonly start: number;
  readonly end: number;
  readonly ok: boolean;
}

/** The p-th percentile (0..100) of `values` by nearest rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** A time range [from, to] in ms. */
export interface Window {
  readonly from: number;
  readonly to: number;
}

/** Latencies of the samples that started inside any of `windows`. */
export function latenciesIn(samples: readonly Sample[], windows: readonly Window[]): number[] {
  const out: number[] = [];
  for (const s of samples) {
    if (windows.some((w) => s.start >= w.from && s.start <= w.to)) out.push(s.end - s.start);
  }
  return out;
}

/**
 * Failover gap of one fault: for each affected user, the time from the fault
 * to its first successful answer that completed after the fault. Returns the
 * first (fastest user) and the last (every affected user served again); a
 * user never served again counts as `Infinity`.
 */
export function failoverGap(faultAt: number, affectedUsers: Iterable<number>, firstSuccessAfter: (user: number, t: number) => number | undefined): { first: number; all: number; users: number } {
  let first = Number.POSITIVE_INFINITY;
  let all = 0;
  let users = 0;
  for (const u of affectedUsers) {
    users++;
    const t = firstSuccessAfter(u, faultAt);
    const gap = t === undefined ? Number.POSITIVE_INFINITY : t - faultAt;
    first = Math.min(first, gap);
    all = Math.max(all, gap);
  }
  return users === 0 ? { first: 0, all: 0, users: 0 } : { first, all, users };
}
