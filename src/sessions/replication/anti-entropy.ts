/**
 * Anti-entropy: a member that comes back after a partition (membership
 * `back`, or `added` when the membership service had dropped it), and every
 * `antiEntropyIntervalMs` one random peer, exchange compact digests —
 * (base, version, tombstone, owner route, write tag) per session — and each
 * side pulls what the peer holds that wins under the conflict rule
 * (convergence.ts), applies the peer's tombstones, and pushes the sessions it
 * owns that the peer lacks or holds a losing copy of, plus its tombstones of
 * sessions the peer still holds. Since the rule is a total order judged per
 * session, every member ends with the same copy of every session, even when
 * both sides wrote it at the same version. Tomcat's DeltaManager only
 * transfers state at start-up, so a healed member there keeps missing what
 * changed meanwhile.
 */
import type { ClusterChannel, JsonValue, MemberView } from '../../cluster/types.js';
import { diffDigests, type DigestEntry, type ExchangePlan } from './convergence.js';
import type { SessionTable } from '../model/session-table.js';
import type { ReplicaStore } from './replica-store.js';
import { digestReplyCodec, getReplyCodec, getRequestCodec, Topic, type SessionSnapshot } from './wire.js';

export type { DigestEntry } from './convergence.js';

/** This node's digest: every held session and every tombstone. */
export function tableDigest(table: SessionTable): DigestEntry[] {
  const out: DigestEntry[] = [];
  for (const s of table.values()) out.push([s.base, s.version, 0, s.route, s.tag]);
  for (const [b, tomb] of table.tombstoneEntries()) out.push([b, tomb.version, 1, '', '']);
  return out;
}

/** What anti-entropy needs from the manager: the replica store and placement. */
export interface AntiEntropyHost {
  readonly selfRoute: string;
  readonly store: ReplicaStore;
  /** Whether this node should keep a copy of a session owned by `route`. */
  shouldHold(base: string, route: string): boolean;
  /** Whether `peerRoute` should keep a copy of a session owned by `route`. */
  placesOn(base: string, route: string, peerRoute: string): boolean;
  /** Same write on both sides and the peer is the owner: news that the session lives there. */
  confirm(base: string): void;
}

/** Applies a peer's tombstone (unless one is held already). */
function buryFromPeer(store: ReplicaStore, base: string, version: number): void {
  if (!store.table.tombstone(base)) store.bury(base, version, 'invalidated', true);
}

/** Installs a pulled copy if it wins over the one held (and keeps it only if this node is a holder); true if installed. */
function installPulled(store: ReplicaStore, snap: SessionSnapshot, from: MemberView): boolean {
  if (!store.installCopy(snap, from)) return false;
  const s = store.table.get(snap.i);
  if (s) store.keepIfHolder(s);
  return true;
}

export interface AntiEntropyOptions {
  readonly transferId: string;
  readonly digestPage: number;
  readonly pullChunk: number;
  readonly requestTimeoutMs: number;
  /** Push owned sessions and tombstones the peer lacks (default true). */
  readonly push?: boolean;
}

export interface AntiEntropyResult {
  readonly pulled: number;
  readonly pushed: number;
  readonly buried: number;
  readonly tombstonesPushed: number;
  /** Same version written on both sides: how many, and how many the peer's copy won. */
  readonly conflicts: number;
  readonly conflictsLostHere: number;
  /** Entries in the peer's digest. */
  readonly peerEntries: number;
}

/** One exchange with `peer`. Throws if the peer does not answer (the caller retries or logs). */
export async function antiEntropy(channel: ClusterChannel, peer: MemberView, host: AntiEntropyHost, opts: AntiEntropyOptions): Promise<AntiEntropyResult> {
  const theirs: DigestEntry[] = [];
  let k: number | null = 0;
  while (k !== null) {
    const page = digestReplyCodec.decode(await channel.request(peer.id, Topic.Digest, { t: opts.transferId, k, n: opts.digestPage }, { timeoutMs: opts.requestTimeoutMs }));
    for (const e of page.e) theirs.push(e);
    k = page.k;
  }
  const store = host.store;
  const plan: ExchangePlan = diffDigests(tableDigest(store.table), theirs, {
    selfRoute: host.selfRoute,
    peerRoute: peer.route,
    shouldHoldHere: (b, r) => host.shouldHold(b, r),
    shouldHoldThere: (b, r) => host.placesOn(b, r, peer.route),
    push: opts.push !== false,
  });
  for (const [b, v] of plan.bury) buryFromPeer(store, b, v);
  for (const b of plan.confirm) host.confirm(b);
  let pulled = 0;
  for (let i = 0; i < plan.pull.length; i += opts.pullChunk) {
    const reply = getReplyCodec.decode(await channel.request(peer.id, getRequestCodec.topic, getRequestCodec.encode(plan.pull.slice(i, i + opts.pullChunk)), { timeoutMs: opts.requestTimeoutMs }));
    for (const [b, v] of reply.t) buryFromPeer(store, b, v);
    for (const snap of reply.s) if (installPulled(store, snap, peer)) pulled++;
  }
  let pushed = 0;
  for (let i = 0; i < plan.push.length; i += opts.pullChunk) {
    const batch: JsonValue[] = [];
    for (const b of plan.push.slice(i, i + opts.pullChunk)) {
      const s = store.table.get(b);
      if (s) batch.push(s.snapshot() as unknown as JsonValue);
    }
    if (batch.length === 0) continue;
    // 'applied': one batch at a time, so a large push keeps memory bounded.
    await channel.send(peer.id, Topic.Copy, { s: batch }, { mode: 'applied', timeoutMs: opts.requestTimeoutMs });
    pushed += batch.length;
  }
  for (let i = 0; i < plan.pushTombstones.length; i += opts.pullChunk) {
    await channel.send(peer.id, Topic.Destroy, { x: plan.pushTombstones.slice(i, i + opts.pullChunk) }, { mode: 'applied', timeoutMs: opts.requestTimeoutMs });
  }
  return {
    pulled,
    pushed,
    buried: plan.bury.length,
    tombstonesPushed: plan.pushTombstones.length,
    conflicts: plan.conflicts.length,
    conflictsLostHere: plan.conflicts.filter((c) => c[2] === 'there').length,
    peerEntries: theirs.length,
  };
}
