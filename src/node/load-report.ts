/**
 * Nodes may report their load, which the balancer may use (mod_cluster's
 * idea): with `loadReport: true` a node publishes in its cluster meta a
 * `loadfactor` derived from its event loop's utilization — the share of time
 * the loop was busy — so a balancer that learns the nodes from the membership
 * (src/discovery/balancer-discovery.ts) sends a busy node fewer new requests.
 *
 * The decisions are pure (smoothing, mapping, when to publish); the sampler
 * of `performance.eventLoopUtilization` is the only edge.
 */
import { performance } from 'node:perf_hooks';

/** ms between load samples (the node's meta tick); a changed loadfactor is published at most this often. */
export const LOAD_REPORT_INTERVAL_MS = 2_000;
/** Weight of the newest sample in the moving average (0..1]. */
export const LOAD_SMOOTHING = 0.5;
/** Spare capacity is rounded to steps of this many percent, so noise does not republish. */
export const LOAD_STEP_PERCENT = 5;
/** The loadfactor of an idle node when `loadfactor` is not configured. */
export const DEFAULT_LOAD_CEILING = 100;

/** Exponential moving average of the utilization (0..1); the first sample is taken as is. */
export function smoothUtilization(previous: number | undefined, sample: number, alpha = LOAD_SMOOTHING): number {
  const s = clamp01(sample);
  return previous === undefined ? s : previous + alpha * (s - previous);
}

/**
 * The loadfactor for a utilization: the spare capacity (1 − u), rounded to
 * {@link LOAD_STEP_PERCENT} steps, times `ceiling` (1..100), at least 1.
 * An idle node reports `ceiling`; a saturated one 1.
 */
export function loadfactorFromUtilization(utilization: number, ceiling: number): number {
  const spare = Math.round(((1 - clamp01(utilization)) * 100) / LOAD_STEP_PERCENT) * LOAD_STEP_PERCENT;
  return Math.min(ceiling, Math.max(1, Math.round((ceiling * spare) / 100)));
}

/** What to publish: `loadfactor` (1..100) and `load`, the smoothed utilization as text with two decimals. */
export interface LoadReport {
  readonly loadfactor: number;
  readonly load: string;
}

/**
 * Turns utilization samples into reports, only when the loadfactor changed.
 * `utilization()` returns the loop's utilization since its previous call.
 */
export class LoadReporter {
  private smoothed: number | undefined;

  constructor(
    private readonly ceiling: number,
    private readonly utilization: () => number,
    /** The loadfactor already published (the node starts with `ceiling`). */
    private published: number = ceiling,
  ) {}

  /** Takes a sample; returns the report to publish, or undefined when the loadfactor is unchanged. */
  sample(): LoadReport | undefined {
    this.smoothed = smoothUtilization(this.smoothed, this.utilization());
    const loadfactor = loadfactorFromUtilization(this.smoothed, this.ceiling);
    if (loadfactor === this.published) return undefined;
    this.published = loadfactor;
    return { loadfactor, load: this.smoothed.toFixed(2) };
  }
}

/** Utilization of this process's event loop between successive calls (0..1). */
export function eventLoopUtilizationSampler(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, last);
    last = now;
    return delta.utilization;
  };
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}
