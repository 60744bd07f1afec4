/**
 * Route take-over (JvmRouteBinderValve): whom to ask for the newest copy of
 * a session before claiming it, and the fetch itself. The claim (route
 * rewrite, version bump at the next commit) is the manager's.
 */
import type { ClusterChannel, MemberView } from '../../cluster/types.js';
import { getReplyCodec, getRequestCodec, type SessionSnapshot, type VersionPair } from './wire.js';

export interface SourcesInput {
  readonly mode: 'all-to-all' | 'backup';
  /** The live member named by the id's route, if any. */
  readonly owner: MemberView | undefined;
  /** Whether this node holds a copy. */
  readonly heldLocally: boolean;
  /** Backup mode: the members the placement names for this session (excluding self). */
  readonly placement: readonly MemberView[];
  readonly members: readonly MemberView[];
}

/**
 * Who to ask after the live owner (asked first when there is one) had nothing:
 *  - backup: the placement (backups of a live owner, orphan holders of a dead one);
 *  - all-to-all, owner gone: everyone holds everything, so an id not held here does
 *    not exist (a bogus cookie must not fan out into N requests); a held copy is
 *    compared with the others' versions, so a copy that missed an async delta is not
 *    taken over (its next delta would be rejected as stale elsewhere).
 */
export function fallbackSources(i: SourcesInput): readonly MemberView[] {
  if (i.mode === 'backup') return i.placement.filter((m) => m !== i.owner);
  if (!i.owner && i.heldLocally) return i.members;
  return [];
}

export interface Fetched {
  readonly snapshots: SessionSnapshot[];
  readonly tombstones: VersionPair[];
  readonly errors: Array<[MemberView, unknown]>;
}

/** Asks `peers` (in parallel) for their copy of `base`. */
export async function fetchCopies(channel: ClusterChannel, peers: readonly MemberView[], base: string, timeoutMs: number): Promise<Fetched> {
  const out: Fetched = { snapshots: [], tombstones: [], errors: [] };
  const replies = await Promise.allSettled(peers.map((m) => channel.request(m.id, getRequestCodec.topic, getRequestCodec.encode([base]), { timeoutMs })));
  replies.forEach((r, i) => {
    if (r.status === 'rejected') {
      out.errors.push([peers[i]!, r.reason]);
      return;
    }
    const reply = getReplyCodec.decode(r.value);
    for (const t of reply.t) if (t[0] === base) out.tombstones.push(t);
    for (const snap of reply.s) out.snapshots.push(snap);
  });
  return out;
}
