/**
 * State transfer until it is done: a joining node reports ready (so the
 * balancer sends it traffic) only once it holds the sessions it needs. An
 * attempt that did not complete (a peer stalled, timed out or failed) is
 * retried after a bounded backoff — all-to-all: from every live peer again,
 * oldest first, so another peer can serve; backup mode: only from the peers
 * whose share is still missing — while the node stays not ready. It ends
 * when an attempt completes or when no peer is left to transfer from (the
 * peers it still needed left the cluster; a node alone is trivially done).
 */
import type { ClusterChannel } from '../../cluster/types.js';
import type { Clock } from '../../util/clock.js';
import { backoffDelay, type BackoffPolicy } from '../../util/backoff.js';
import type { SessionLogger } from '../contract.js';
import { transferState, type TransferPlan, type TransferProgressListener, type TransferReport } from './state-transfer.js';
import type { ReplicaStore } from './replica-store.js';

/** ms before the second attempt (`initialMs`), doubling per attempt up to `maxMs`. */
export type TransferRetryPolicy = BackoffPolicy;

export const DEFAULT_TRANSFER_RETRY: TransferRetryPolicy = { initialMs: 500, maxMs: 10_000 };

/** Wait before attempt `attempt + 1` (attempt ≥ 1). */
export const retryDelay: (policy: TransferRetryPolicy, attempt: number) => number = backoffDelay;

export interface TransferLoopOptions {
  readonly retry?: TransferRetryPolicy;
  /** The manager was closed: stop (the report says so). */
  readonly cancelled: () => boolean;
  /** Progress of the current attempt, after each page. */
  readonly onProgress?: TransferProgressListener;
}

export async function transferUntilDone(
  channel: ClusterChannel,
  plan: TransferPlan,
  clock: Clock,
  store: Pick<ReplicaStore, 'installCopy'>,
  log: SessionLogger,
  opts: TransferLoopOptions,
): Promise<TransferReport> {
  const policy = opts.retry ?? DEFAULT_TRANSFER_RETRY;
  const started = clock.now();
  let sessions = 0;
  let chunks = 0;
  const used = new Set<string>();
  /** backup mode: ids of the peers whose share is still missing (undefined: every peer). */
  let pending: Set<string> | undefined;
  for (let attempt = 1; ; attempt++) {
    const only = pending;
    const r = await transferState(channel, only ? { ...plan, only: (m) => only.has(m.id) } : plan, clock, store, log, opts.onProgress);
    sessions += r.sessions;
    chunks += r.chunks;
    for (const p of r.peers) used.add(p);
    const report = (complete: boolean, gaveUp?: string): TransferReport => ({
      sessions, chunks, ms: clock.now() - started, complete, peers: [...used], failed: r.failed ?? [], attempts: attempt, ...(gaveUp ? { gaveUp } : {}),
    });
    if (r.complete) {
      if (attempt > 1) log.info({ node: plan.node, attempts: attempt, sessions }, `state transfer complete after ${attempt} attempts (${sessions} sessions)`);
      return report(true);
    }
    if (opts.cancelled()) return report(false, 'closed');
    const failed = r.failed ?? [];
    if (plan.mode === 'backup') pending = new Set(failed.map((f) => f.id));
    const wait = retryDelay(policy, attempt);
    const from = left(channel, pending);
    if (from.length === 0) return gaveUp(report, plan, log);
    log.warn(
      { node: plan.node, attempt, retryInMs: wait, peers: from, reasons: failed.map((f) => `${f.route}: ${f.reason}`) },
      `state transfer incomplete (attempt ${attempt}): not ready yet, retrying in ${wait} ms from ${from.join(', ')}`,
    );
    await new Promise<void>((resolve) => clock.setTimeout(resolve, wait));
    if (opts.cancelled()) return report(false, 'closed');
    if (left(channel, pending).length === 0) return gaveUp(report, plan, log);
  }
}

/** Routes of the live peers a next attempt would pull from. */
function left(channel: ClusterChannel, pending: ReadonlySet<string> | undefined): string[] {
  return channel.members().filter((m) => !pending || pending.has(m.id)).map((m) => m.route);
}

function gaveUp(report: (complete: boolean, gaveUp?: string) => TransferReport, plan: TransferPlan, log: SessionLogger): TransferReport {
  const r = report(false, 'no peer left');
  log.warn(
    { node: plan.node, sessions: r.sessions, attempts: r.attempts },
    `state transfer: no peer left to transfer from (the peers it still needed left the cluster); ready with the ${r.sessions} sessions received`,
  );
  return r;
}
