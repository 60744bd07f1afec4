/**
 * Version ordering on a replica, as pure decisions. A delta turns version b
 * into b + 1. A replica at version h:
 *  - applies it when b = h;
 *  - rejects it as stale when v ≤ h (never applied over a newer copy);
 *  - buffers it when b > h (an earlier delta is still on its way), and asks
 *    the sender for a full copy if the gap is not filled within a deadline.
 * Tomcat applied out-of-order async updates blindly and left replicas 1–3
 * versions behind for good; here a replica converges to the owner's version.
 */
import type { SessionDelta } from './wire.js';

export type DeltaDecision = 'apply' | 'stale' | 'gap' | 'diverged';

/**
 * `held` is the replica's version (0 when it holds nothing), `heldTag` the
 * write tag of that version (convergence.ts). 'diverged': the delta was made
 * from another write of the same version (both sides wrote during a
 * partition) — applying it would mix two histories; the caller fetches the
 * sender's full copy instead.
 */
export function classifyDelta(held: number, d: SessionDelta, heldTag = ''): DeltaDecision {
  if (d.v <= held) return 'stale';
  if (d.b === held) return chainsOnto(heldTag, d) ? 'apply' : 'diverged';
  return 'gap';
}

/** Whether a delta continues the write held (unknown tags on either side: assumed so). */
export function chainsOnto(heldTag: string, d: SessionDelta): boolean {
  return d.b === 0 || d.h === undefined || heldTag === '' || d.h === heldTag;
}

interface Pending {
  readonly deltas: Map<number, SessionDelta>; // keyed by base version
  readonly from: string;
  readonly deadline: number;
  /** repair requests sent so far */
  readonly attempts: number;
}

/**
 * Deltas waiting for an earlier one, per session base. Bounded: at most
 * `maxPerSession` deltas per session and `maxSessions` sessions; beyond that
 * the oldest gap is reported for repair at once.
 */
export class ReorderBuffer {
  private readonly pending = new Map<string, Pending>();

  constructor(
    private readonly gapTimeoutMs: number,
    private readonly maxPerSession = 64,
    private readonly maxSessions = 10_000,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** Buffers a delta that arrived early. Returns bases that must be repaired now (overflow). */
  add(d: SessionDelta, from: string, now: number): string[] {
    let p = this.pending.get(d.i);
    if (!p) {
      p = { deltas: new Map(), from, deadline: now + this.gapTimeoutMs, attempts: 0 };
      this.pending.set(d.i, p);
    }
    p.deltas.set(d.b, d);
    const overflow: string[] = [];
    if (p.deltas.size > this.maxPerSession) overflow.push(d.i);
    if (this.pending.size > this.maxSessions) {
      const first = this.pending.keys().next().value as string;
      overflow.push(first);
    }
    return overflow;
  }

  /** The buffered deltas that now apply in order on top of `held`, removed from the buffer. */
  takeApplicable(base: string, held: number): SessionDelta[] {
    const p = this.pending.get(base);
    if (!p) return [];
    const out: SessionDelta[] = [];
    let h = held;
    for (;;) {
      const d = p.deltas.get(h);
      if (!d) break;
      p.deltas.delete(h);
      out.push(d);
      h = d.v;
    }
    for (const b of [...p.deltas.keys()]) if (b < h) p.deltas.delete(b);
    if (p.deltas.size === 0) this.pending.delete(base);
    return out;
  }

  /** Forget a session (destroyed, or repaired by a full copy that made its buffer stale). */
  drop(base: string): void {
    this.pending.delete(base);
  }

  /** Gaps past their deadline: [base, member to ask]. They stay buffered until dropped. */
  expired(now: number): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (const [base, p] of this.pending) if (p.deadline <= now) out.push([base, p.from]);
    return out;
  }

  /**
   * Pushes the deadline back after a repair request was sent. Returns the
   * number of attempts so far; the caller gives up (drops) past its limit,
   * e.g. when the sender died.
   */
  postpone(base: string, now: number): number {
    const p = this.pending.get(base);
    if (!p) return 0;
    const attempts = p.attempts + 1;
    this.pending.set(base, { ...p, deadline: now + this.gapTimeoutMs * attempts, attempts });
    return attempts;
  }
}
