/**
 * Cluster-wide clear (express-session `Store.clear()`): every node destroys
 * the sessions it owns — only an owner advances a version, so only owners
 * destroy — and the node that was asked also destroys the orphans it holds
 * (copies whose owner is no longer a member), which nobody else would.
 * Each destroy travels as the usual authoritative destroy (tombstones), so a
 * late delta cannot bring a cleared session back.
 */
import type { ClusterChannel, JsonValue, MemberView } from '../../cluster/types.js';

/** request {} → {n: sessions destroyed by the receiver} */
export const CLEAR_TOPIC = 'sessions.clear';

export interface ClearResult {
  /** Sessions destroyed, all nodes together (as they answered). */
  readonly destroyed: number;
  /** Member id → error, for members that did not answer. */
  readonly failed: Readonly<Record<string, string>>;
}

/**
 * Asks every member to clear what it owns, in parallel with the local clear.
 * `clearOwned` destroys this node's own sessions and returns how many.
 */
export async function clearEverywhere(
  channel: ClusterChannel,
  members: readonly MemberView[],
  clearLocal: () => Promise<number>,
  timeoutMs: number,
): Promise<ClearResult> {
  const failed: Record<string, string> = {};
  const [local, ...remote] = await Promise.allSettled([
    clearLocal(),
    ...members.map((m) => channel.request(m.id, CLEAR_TOPIC, {}, { timeoutMs })),
  ]);
  if (local!.status === 'rejected') throw local!.reason;
  let destroyed = local!.value as number;
  remote.forEach((r, i) => {
    if (r.status === 'rejected') failed[members[i]!.id] = String((r.reason as Error)?.message ?? r.reason);
    else destroyed += countOf(r.value);
  });
  return { destroyed, failed };
}

function countOf(v: JsonValue): number {
  const n = typeof v === 'object' && v !== null && !Array.isArray(v) ? v.n : undefined;
  return typeof n === 'number' && Number.isFinite(n) ? n : 0;
}
