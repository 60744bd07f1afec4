/**
 * Convergence after divergent histories (a partition, or a delta that never
 * arrived), as pure decisions:
 *
 *  - Every committed version of a session carries a **write tag**, made by
 *    the node that wrote it: `<wall ms><writer counter><writer nonce>`
 *    ({@link WriteTagger}: one per manager, no module state).
 *    A tag names one history: two copies with the same version and the same
 *    tag have the same content (a replica applies a delta only onto the
 *    version *and tag* it was made from, see {@link classifyDelta} in
 *    ordering.ts), so digests compare tags instead of hashing contents.
 *  - **Conflict rule** (a total order on copies, so every member picks the
 *    same winner without talking to the others): a tombstone beats any copy;
 *    otherwise the higher version wins; on equal versions with different
 *    tags (two nodes wrote the same session during a partition), the greater
 *    tag wins — i.e. the later write by its writer's wall clock (then counter,
 *    then nonce). Clock skew only changes *which* write wins, never whether
 *    the members agree. The losing write is discarded (and logged).
 *  - **Digest diff**: given this node's digest and a peer's, what to pull,
 *    what to push, which tombstones to apply or send.
 */
import type { Random } from '../../util/clock.js';

/** One digest entry: [base, version, tombstone (0|1), owner route, write tag]. Older peers send 4 elements (no tag). */
export type DigestEntry = [string, number, number, string, string?];

/** What the conflict rule looks at. `t` is '' when unknown (a copy from a peer that does not tag). */
export interface CopyMark {
  readonly v: number;
  readonly t: string;
}

const COUNTER_MAX = 36 ** 6;
/** Random bytes in a writer's nonce: 4 bytes = 6 base64url characters. */
const NONCE_BYTES = 4;

/**
 * Makes the write tags of one writer (a session manager): the writer's wall
 * ms (9 base36 chars), a per-writer counter (6 chars) and a per-writer random
 * nonce (6 chars), all fixed width, so tags order by wall clock, then by
 * write order within a writer; the nonce keeps them unique across writers (a
 * restarted process has new ones).
 */
export class WriteTagger {
  private readonly nonce: string;
  private counter = 0;
  private lastMs = -1;
  private lastPrefix = '';

  constructor(random: Pick<Random, 'bytes'>) {
    this.nonce = random.bytes(NONCE_BYTES).toString('base64url');
  }

  /** A fresh write tag for a write at wall time `wallMs`. */
  next(wallMs: number): string {
    this.counter = (this.counter + 1) % COUNTER_MAX;
    const ms = Math.max(0, Math.floor(wallMs));
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.lastPrefix = ms.toString(36).padStart(9, '0');
    }
    return this.lastPrefix + this.counter.toString(36).padStart(6, '0') + this.nonce;
  }
}

/** > 0 when `a` beats `b`, < 0 when `b` beats `a`, 0 when they are the same write (or undecidable: a tag is unknown). */
export function compareCopies(a: CopyMark, b: CopyMark): number {
  if (a.v !== b.v) return a.v > b.v ? 1 : -1;
  if (a.t === b.t || a.t === '' || b.t === '') return 0;
  return a.t > b.t ? 1 : -1;
}

/** Whether an incoming copy should replace the one held (nothing held: yes). */
export function copyWins(held: CopyMark | undefined, incoming: CopyMark): boolean {
  return held === undefined || compareCopies(incoming, held) > 0;
}

/** How an incoming copy relates to the held one, for logs and counters. */
export function copyVerdict(held: CopyMark | undefined, incoming: CopyMark): 'new' | 'newer' | 'conflict-won' | 'same' | 'older' | 'conflict-lost' {
  if (held === undefined) return 'new';
  const c = compareCopies(incoming, held);
  if (incoming.v !== held.v) return c > 0 ? 'newer' : 'older';
  if (c === 0) return 'same';
  return c > 0 ? 'conflict-won' : 'conflict-lost';
}

/** Topology questions the diff needs answered (backup mode places copies; all-to-all: always true). */
export interface DiffContext {
  readonly selfRoute: string;
  readonly peerRoute: string;
  /** Should this node hold a copy of `base` owned by `owner`? */
  shouldHoldHere(base: string, owner: string): boolean;
  /** Should the peer hold a copy of `base` owned by `owner`? */
  shouldHoldThere(base: string, owner: string): boolean;
  /** Push copies to the peer (only of sessions this node owns) and tombstones it lacks. */
  readonly push: boolean;
}

export interface ExchangePlan {
  /** Peer tombstones to apply here: [base, version]. */
  readonly bury: Array<[string, number]>;
  /** Bases to fetch from the peer (its copy wins, or we lack one we should hold). */
  readonly pull: string[];
  /** Same write on both sides and the peer owns it: news of life for our replica. */
  readonly confirm: string[];
  /** Bases of sessions we own to send to the peer (ours wins, or it lacks one it should hold). */
  readonly push: string[];
  /** Our tombstones the peer holds a copy of: [base, version]. */
  readonly pushTombstones: Array<[string, number]>;
  /** Same version, different writes: [base, version, winner 'here' | 'there']. */
  readonly conflicts: Array<[string, number, 'here' | 'there']>;
}

const mark = (e: DigestEntry): CopyMark => ({ v: e[1], t: e[4] ?? '' });

/**
 * Compares this node's digest with a peer's. Each entry is judged alone by
 * the conflict rule, so running the diff on both sides (or on one side with
 * `push`) brings both to the same winner for every session.
 */
export function diffDigests(local: Iterable<DigestEntry>, peer: Iterable<DigestEntry>, ctx: DiffContext): ExchangePlan {
  const plan: ExchangePlan = { bury: [], pull: [], confirm: [], push: [], pushTombstones: [], conflicts: [] };
  const mine = new Map<string, DigestEntry>();
  for (const e of local) mine.set(e[0], e);
  const seen = new Set<string>();
  for (const e of peer) {
    const [base, v, tomb, route] = e;
    seen.add(base);
    const l = mine.get(base);
    if (tomb) {
      if (!l || !l[2]) plan.bury.push([base, v]);
      continue;
    }
    if (l?.[2]) {
      if (ctx.push) plan.pushTombstones.push([base, l[1]]);
      continue;
    }
    if (!l) {
      if (ctx.shouldHoldHere(base, route)) plan.pull.push(base);
      continue;
    }
    const c = compareCopies(mark(e), mark(l));
    if (c > 0) {
      // Held here but beaten: fetch the winner even if this node will not keep it (it then drops its loser).
      plan.pull.push(base);
      if (v === l[1]) plan.conflicts.push([base, v, 'there']);
    } else if (c < 0) {
      if (v === l[1]) plan.conflicts.push([base, v, 'here']);
      if (ctx.push && l[3] === ctx.selfRoute && ctx.shouldHoldThere(base, l[3])) plan.push.push(base);
    } else if (route === ctx.peerRoute && l[3] !== ctx.selfRoute) {
      // Only the owner's digest is news of life: two replicas confirming each other would never expire.
      plan.confirm.push(base);
    }
  }
  if (ctx.push) {
    for (const [base, e] of mine) {
      if (seen.has(base) || e[2] || e[3] !== ctx.selfRoute) continue;
      if (ctx.shouldHoldThere(base, e[3])) plan.push.push(base);
    }
  }
  return plan;
}
