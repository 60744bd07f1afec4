/**
 * Cluster-wide clear (express-session `Store.clear()`): every node destroys
 * the sessions it owns — only an owner advances a version, so only owners
 * destroy — and the node that was asked also destroys the orphans it holds
 * (copies whose owner is no longer a member), which nobody else would.
 * Each destroy travels as the usual authoritative destroy (tombstones), so a
 * late delta cannot bring a cleared session back.
 */
import type { ClusterChannel, MemberView } from '../../cluster/types.js';
import { clearReplyCodec, clearRequestCodec, Topic } from './wire.js';

/** request {} → {n: sessions destroyed by the receiver} (codecs: wire.ts `clearRequestCodec`, `clearReplyCodec`) */
export const CLEAR_TOPIC = Topic.Clear;

export interface ClearResult {
  /** Sessions destroyed, all nodes together (as they answered). */
  readonly destroyed: number;
  /** Member id → error, for members that did not answer. */
  readonly failed: Readonly<Record<string, string>>;
}

/**
 * Asks every member to clear what it owns, in parallel with the local clear.
 * `clearLocal` destroys this node's own sessions and returns how many. A member
 * that does not answer, or answers with a malformed reply, is listed in `failed`.
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
    ...members.map(async (m) => clearReplyCodec.decode(await channel.request(m.id, CLEAR_TOPIC, clearRequestCodec.encode({}), { timeoutMs })).n),
  ]);
  if (local!.status === 'rejected') throw local!.reason;
  let destroyed = local!.value;
  remote.forEach((r, i) => {
    if (r.status === 'rejected') failed[members[i]!.id] = String((r.reason as Error)?.message ?? r.reason);
    else destroyed += r.value;
  });
  return { destroyed, failed };
}
