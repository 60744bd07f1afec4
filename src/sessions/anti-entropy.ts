/**
 * Catching up after a partition heals (membership `back`): fetch the peer's
 * digest — (base, version, tombstone, owner route) — page by page, apply its
 * tombstones, and pull the sessions it holds newer than ours. The peer does
 * the same towards us, so both sides converge. Tomcat's DeltaManager only
 * transfers state at start-up, so a healed member there keeps missing what
 * changed meanwhile.
 */
import type { ClusterChannel, JsonValue, MemberView } from '../cluster/types.js';
import { asSnapshot, field, isArray, Topic, type SessionSnapshot } from './wire.js';

/** One digest entry: [base, version, tombstone (0|1), owner route]. */
export type DigestEntry = [string, number, number, string];

/** What anti-entropy needs from the local session table. */
export interface AntiEntropyHost {
  isTombstoned(base: string): boolean;
  heldVersion(base: string): number | undefined;
  /** Apply a peer's tombstone. */
  bury(base: string, version: number): void;
  /** Whether this node should keep a copy of a session owned by `route`. */
  shouldHold(base: string, route: string): boolean;
  /** Same version on both sides and the peer is the owner: news that the session lives there. */
  confirm(base: string): void;
  /** Installs a newer copy; true if installed. */
  install(snapshot: SessionSnapshot): boolean;
}

export interface AntiEntropyOptions {
  readonly transferId: string;
  readonly digestPage: number;
  readonly pullChunk: number;
  readonly requestTimeoutMs: number;
}

/** Returns the number of sessions pulled. */
export async function antiEntropy(channel: ClusterChannel, peer: MemberView, host: AntiEntropyHost, opts: AntiEntropyOptions): Promise<number> {
  let k: number | null = 0;
  const want: string[] = [];
  while (k !== null) {
    const reply: JsonValue = await channel.request(peer.id, Topic.Digest, { t: opts.transferId, k, n: opts.digestPage }, { timeoutMs: opts.requestTimeoutMs });
    const entries = field<JsonValue[]>(reply, 'e', Topic.Digest, isArray) as unknown as DigestEntry[];
    for (const [base, v, tomb, route] of entries) {
      if (tomb) {
        if (!host.isTombstoned(base)) host.bury(base, v);
        continue;
      }
      if (host.isTombstoned(base)) continue;
      const held = host.heldVersion(base);
      if ((held === undefined || held < v) && host.shouldHold(base, route)) want.push(base);
      // Only the owner's digest is news of life: two replicas confirming each other would never expire.
      else if (held === v && route === peer.route) host.confirm(base);
    }
    k = field<number | null>(reply, 'k', Topic.Digest, (x) => x === null || typeof x === 'number');
  }
  let pulled = 0;
  for (let i = 0; i < want.length; i += opts.pullChunk) {
    const reply = await channel.request(peer.id, Topic.Get, { i: want.slice(i, i + opts.pullChunk) }, { timeoutMs: opts.requestTimeoutMs });
    for (const raw of field<JsonValue[]>(reply, 's', Topic.Get, isArray)) if (host.install(asSnapshot(raw, Topic.Get))) pulled++;
  }
  return pulled;
}
