/**
 * Backup mode, after a membership change: every copy a departed member held
 * is re-created on the member that now ranks in its place, in batches, in
 * the background, so that a second failure does not log users out. Owned
 * sessions go to their new backups; orphaned ones (owner gone) to the
 * top-ranked live members, which keep them until someone takes them over.
 */
import type { ClusterChannel, JsonValue } from '../../cluster/types.js';
import type { Holders } from './holders.js';
import type { SessionLogger } from '../contract.js';
import type { Session } from '../model/session.js';
import { Topic } from './wire.js';

export interface RereplicationOptions {
  readonly batch: number;
  readonly timeoutMs: number;
  readonly node: string;
  /** Stop early (manager closed). */
  readonly cancelled: () => boolean;
}

export interface RereplicationResult {
  readonly sent: number;
  readonly failedBatches: number;
}

/** One pass over `sessions`; resolves when every batch was applied by its target (or failed). */
export async function rereplicate(
  channel: ClusterChannel,
  holders: Holders,
  sessions: Iterable<Session>,
  opts: RereplicationOptions,
  log: SessionLogger,
): Promise<RereplicationResult> {
  const perTarget = new Map<string, JsonValue[]>();
  let sent = 0;
  let failedBatches = 0;
  const flush = async (route: string): Promise<void> => {
    const batch = perTarget.get(route);
    const m = holders.member(route);
    perTarget.delete(route);
    if (!batch || !m) return;
    try {
      await channel.send(m.id, Topic.Copy, { s: batch }, { mode: 'applied', timeoutMs: opts.timeoutMs });
      sent += batch.length;
    } catch (err) {
      failedBatches++;
      log.warn({ node: opts.node, to: route, err: String(err) }, 're-replication batch failed');
    }
  };
  for (const s of [...sessions]) {
    if (opts.cancelled()) break;
    for (const r of holders.missingHolders(s.base, s.route)) {
      if (!holders.member(r)) continue;
      let b = perTarget.get(r);
      if (!b) perTarget.set(r, (b = []));
      b.push(s.snapshot() as unknown as JsonValue);
      if (b.length >= opts.batch) await flush(r);
    }
  }
  for (const r of [...perTarget.keys()]) await flush(r);
  if (sent > 0) log.info({ node: opts.node, copies: sent }, 're-replication done');
  return { sent, failedBatches };
}
