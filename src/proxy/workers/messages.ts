/**
 * The IPC messages between the state owner (the node:cluster primary) and its
 * worker engines (`--workers N`). None is sent per request in a steady state:
 * leases move in blocks, state on changes, counters every STATS_INTERVAL_MS.
 */
import type { SharedBalancer, SharedMember } from '../../balancer/workers/shared-state.js';
import type { FinishedExchange } from '../forward.js';
import type { MemberCounters } from '../../balancer/member.js';

/** How often a worker sends its counter deltas (and finished exchanges for the manager's histograms), ms. */
export const STATS_INTERVAL_MS = 500;
/**
 * With `timeout: 0`, how long a request whose worker's lease is used up waits for more, ms: long enough for
 * a lease round trip (≈ 0.15 ms idle, a few ms on a loaded host) and a spare from another worker.
 */
export const LEASE_WAIT_MS = 100;
/** Finished exchanges a worker buffers per interval for the owner's metrics; beyond, they are counted as dropped. */
export const MAX_FINISHED_PER_FLUSH = 20_000;

/** The lease key of a member: balancer name and route. */
export function leaseKey(balancer: string, route: string): string {
  return `${balancer}\n${route}`;
}

export interface MemberStats extends MemberCounters {
  readonly busy: number;
}

export type ToWorker =
  | { readonly t: 'hello'; readonly index: number; readonly count: number }
  | { readonly t: 'state'; readonly balancers: readonly SharedBalancer[] }
  | { readonly t: 'grant'; readonly key: string; readonly n: number }
  | { readonly t: 'recall'; readonly key: string; readonly target: number }
  | { readonly t: 'spare'; readonly key: string }
  | { readonly t: 'reload' }
  | { readonly t: 'drain' };

export type ToOwner =
  | { readonly t: 'up' }
  | { readonly t: 'ready'; readonly urls: readonly string[] }
  | { readonly t: 'health'; readonly balancer: string; readonly member: SharedMember }
  | { readonly t: 'want'; readonly key: string; readonly n: number; readonly waiting: boolean }
  | { readonly t: 'return'; readonly key: string; readonly n: number }
  | { readonly t: 'withdraw'; readonly key: string }
  | {
      readonly t: 'stats';
      /** balancer → route → counter deltas since the last stats, and busy now. */
      readonly members: Record<string, Record<string, MemberStats>>;
      /** balancer → [unavailable, queueTimeouts] deltas, and requests queued now. */
      readonly balancers: Record<string, readonly [number, number, number]>;
      /** Finished exchanges, packed (see packFinished): the manager's latency histogram and history. */
      readonly finished: PackedFinished;
    };

/** Finished exchanges as one flat number array (6 per exchange) and a string table: cheap to serialize. */
export interface PackedFinished {
  readonly names: readonly string[];
  readonly rows: readonly number[];
}

/** Packs finished exchanges: [balancer, member (-1: none), status, durationMs, upstreamMs (-1: none), attempts] each. */
export function packFinished(list: readonly FinishedExchange[]): PackedFinished {
  const names: string[] = [];
  const index = new Map<string, number>();
  const id = (s: string): number => {
    let i = index.get(s);
    if (i === undefined) {
      i = names.push(s) - 1;
      index.set(s, i);
    }
    return i;
  };
  const rows: number[] = [];
  for (const e of list) rows.push(id(e.balancer), e.member === undefined ? -1 : id(e.member), e.status, e.durationMs, e.upstreamMs ?? -1, e.attempts);
  return { names, rows };
}

export function unpackFinished(p: PackedFinished, each: (e: FinishedExchange) => void): void {
  const r = p.rows;
  for (let i = 0; i + 5 < r.length; i += 6) {
    each({
      balancer: p.names[r[i]!] ?? '',
      member: r[i + 1]! < 0 ? undefined : p.names[r[i + 1]!],
      status: r[i + 2]!,
      durationMs: r[i + 3]!,
      upstreamMs: r[i + 4]! < 0 ? undefined : r[i + 4]!,
      attempts: r[i + 5]!,
    });
  }
}

/** The worker's share of a balancer-wide bound (maxqueue): the shares of all workers sum to `total`. */
export function shareOf(total: number, index: number, count: number): number {
  return Math.floor(total / count) + (index < total % count ? 1 : 0);
}
