/**
 * The replica side of a node's sessions: the table of held copies and
 * tombstones, and the four ways a copy changes — apply a delta, install a
 * full copy, bury (tombstone), drop (forget a copy without tombstone). Every
 * path that brings copies in (deltas and copies from owners, handoff,
 * anti-entropy, gap repair, state transfer, take-over fetches) goes through
 * one {@link ReplicaStore}.
 *
 * Invariants:
 *  - a delta or copy older than what is held is never applied (ordering.ts);
 *  - a delta applies only onto the version *and write* it was made from; one
 *    made from another write is answered by fetching the sender's copy;
 *  - a copy replaces the held one only when it wins the conflict rule
 *    (convergence.ts); a tombstone wins over any copy.
 */
import type { MemberView } from '../../cluster/types.js';
import type { Clock } from '../../util/clock.js';
import type { ReplicationConfig } from '../config.js';
import type { SessionLogger } from '../contract.js';
import { Session, type SessionLimits } from '../model/session.js';
import { SessionTable } from '../model/session-table.js';
import { copyVerdict, copyWins } from './convergence.js';
import type { Holders } from './holders.js';
import { chainsOnto, classifyDelta, ReorderBuffer } from './ordering.js';
import type { SessionDelta, SessionSnapshot } from './wire.js';

export type BuryReason = 'invalidated' | 'expired';

/** The manager's session events, as its parts fire them (the manager is the emitter). */
export interface SessionEvents {
  emit(event: string, payload: object): boolean;
  listenerCount(event: string): number;
}

/** The counters the store increments (a part of the manager's, stats.ts). */
export interface ReplicaCounters {
  deltasApplied: number;
  staleRejected: number;
  gapsBuffered: number;
  divergedDeltas: number;
  copiesInstalled: number;
  conflictsResolved: number;
  expired: number;
}

/** What handoff, anti-entropy, gap repair, state transfer and take-over work on. */
export interface ReplicaStore {
  /** Held copies and tombstones (read them here; change them through the methods below). */
  readonly table: SessionTable;
  /**
   * An incoming delta from `from`: applied when it continues the held
   * version (then whatever it unblocks), buffered on a gap, rejected when
   * stale, answered with a repair when made from another write.
   */
  receiveDelta(d: SessionDelta, from: MemberView): void;
  /** Applies a delta whose base version and write are held (the caller checked), then what it unblocks. */
  applyDelta(d: SessionDelta): Session;
  /** Installs a copy that wins over the one held; true if installed. */
  installCopy(snapshot: SessionSnapshot, from?: MemberView): boolean;
  /** Destroys the copy (if any) and keeps a tombstone at `version`. `replica`: destroyed by another node. */
  bury(base: string, version: number, reason: BuryReason, replica: boolean): void;
  /** Forgets a copy held for another owner, without tombstone (the owner placed it elsewhere). */
  drop(base: string): void;
  /** Backup mode: drops `s` if this node is no longer one of its holders. */
  keepIfHolder(s: Session): void;
}

/** What the store asks of the manager. */
export interface ReplicaStorePorts {
  /** Fetch the full copy of `base` from member `fromId` (gap repair, gap-repair.ts). */
  repair(base: string, fromId: string): void;
  /** Deltas were buffered behind a gap: check it in gapTimeoutMs. */
  gapBuffered(): void;
  /** `base` was destroyed: forget its pending access announcement. */
  buried(base: string): void;
}

export interface ReplicaStoreOptions {
  readonly route: () => string;
  readonly config: ReplicationConfig;
  readonly limits: SessionLimits;
  readonly clock: Clock;
  readonly holders: Holders;
  readonly stats: ReplicaCounters;
  readonly events: SessionEvents;
  readonly log: SessionLogger;
  readonly ports: ReplicaStorePorts;
}

/** Fires `attributeChanged` for every attribute a delta sets or deletes. */
export function emitAttributeChanges(events: SessionEvents, s: Session, d: SessionDelta, replica: boolean): void {
  if (events.listenerCount('attributeChanged') === 0) return;
  for (const name of Object.keys(d.s ?? {})) events.emit('attributeChanged', { id: s.id, name, replica });
  for (const name of d.d ?? []) events.emit('attributeChanged', { id: s.id, name, replica });
}

export class SessionReplicaStore implements ReplicaStore {
  readonly table = new SessionTable();
  /** Deltas received ahead of a gap, per base. */
  readonly reorder: ReorderBuffer;
  private readonly o: ReplicaStoreOptions;

  constructor(opts: ReplicaStoreOptions) {
    this.o = opts;
    this.reorder = new ReorderBuffer(opts.config.gapTimeoutMs);
  }

  private get route(): string {
    return this.o.route();
  }

  receiveDelta(d: SessionDelta, from: MemberView): void {
    const { stats, log } = this.o;
    const now = this.o.clock.now();
    if (this.table.tombstone(d.i)) return;
    let s = this.table.get(d.i);
    if (!s && d.p !== undefined) {
      const old = this.table.get(d.p);
      if (old && !this.table.tombstone(d.p)) {
        this.table.bury(d.p, d.v, now);
        old.base = d.i;
        this.table.set(old);
        s = old;
      }
    }
    const held = s?.version ?? 0;
    const decision = classifyDelta(held, d, s?.tag);
    if (decision === 'diverged') {
      // Another write of the version held (both sides wrote during a partition): fetch the sender's copy, do not mix.
      stats.divergedDeltas++;
      log.info({ node: this.route, session: d.i.slice(0, 6), version: held, from: from.route }, 'delta from another write of the version held: fetching the full copy');
      this.o.ports.repair(d.i, from.id);
      return;
    }
    if (decision === 'stale') {
      stats.staleRejected++;
      log.debug({ node: this.route, session: d.i.slice(0, 6), held, delta: d.v }, 'stale delta rejected');
      return;
    }
    if (decision === 'gap') {
      stats.gapsBuffered++;
      for (const base of this.reorder.add(d, from.id, now)) this.o.ports.repair(base, from.id);
      this.o.ports.gapBuffered();
      return;
    }
    this.keepIfHolder(this.drainBuffered(this.applyInOrder(s, d, now), now));
  }

  applyDelta(d: SessionDelta): Session {
    const now = this.o.clock.now();
    return this.drainBuffered(this.applyInOrder(this.table.get(d.i), d, now), now);
  }

  /** Applies the buffered deltas that now continue the held copy of `base`. */
  drain(base: string): void {
    const s = this.table.get(base);
    if (s) this.drainBuffered(s, this.o.clock.now());
  }

  private applyInOrder(s: Session | undefined, d: SessionDelta, now: number): Session {
    const { config, stats } = this.o;
    const created = !s;
    if (!s) {
      s = new Session({ base: d.i, route: d.r, version: 0, createdAt: d.c ?? 0, maxInactiveMs: d.m ?? config.maxInactiveMs, now }, this.o.limits);
    }
    const wasOwner = s.route === this.route;
    s.applyDelta(d);
    s.lastAccess = now;
    this.table.set(s);
    stats.deltasApplied++;
    if (wasOwner && s.route !== this.route) {
      this.o.log.info({ node: this.route, session: d.i.slice(0, 6), newOwner: s.route }, 'session taken over by another node');
      this.o.holders.forget(s.base);
    }
    if (config.replicaEvents) {
      if (created) this.o.events.emit('created', { id: s.id, replica: true });
      emitAttributeChanges(this.o.events, s, d, true);
    }
    return s;
  }

  /** Applies the buffered deltas that now continue `s`; one made from another write asks the owner for its copy. */
  private drainBuffered(s: Session, now: number): Session {
    for (const next of this.reorder.takeApplicable(s.base, s.version)) {
      if (!chainsOnto(s.tag, next)) {
        this.o.stats.divergedDeltas++;
        const owner = this.o.holders.member(next.r);
        if (owner) this.o.ports.repair(s.base, owner.id);
        break;
      }
      s = this.applyInOrder(s, next, now);
    }
    return s;
  }

  keepIfHolder(s: Session): void {
    if (this.o.config.mode === 'backup' && !this.o.holders.shouldHold(s.base, s.route)) {
      this.table.remove(s.base);
      this.reorder.drop(s.base);
    }
  }

  installCopy(snap: SessionSnapshot, from?: MemberView): boolean {
    if (this.table.tombstone(snap.i)) return false;
    const now = this.o.clock.now();
    let s = this.table.get(snap.i);
    const incoming = { v: snap.v, t: snap.t ?? '' };
    if (!copyWins(s && { v: s.version, t: s.tag }, incoming)) {
      if (s && s.route !== this.route) s.lastAccess = now;
      return false;
    }
    if (s) this.noteReplaced(s, snap, copyVerdict({ v: s.version, t: s.tag }, incoming), from);
    const created = !s;
    if (s) s.applySnapshot(snap);
    else {
      s = Session.fromSnapshot(snap, this.o.limits, now);
      this.table.set(s);
    }
    s.lastAccess = now;
    this.o.stats.copiesInstalled++;
    if (created && this.o.config.replicaEvents) this.o.events.emit('created', { id: s.id, replica: true });
    this.drainBuffered(s, now);
    return true;
  }

  /** A held copy is about to be replaced: count and log a lost same-version write, and a lost ownership. */
  private noteReplaced(s: Session, snap: SessionSnapshot, verdict: ReturnType<typeof copyVerdict>, from: MemberView | undefined): void {
    if (verdict === 'conflict-won') {
      this.o.stats.conflictsResolved++;
      this.o.log.warn(
        { node: this.route, session: s.base.slice(0, 6), version: s.version, kept: snap.r, discarded: s.route, from: from?.route },
        `session ${s.base.slice(0, 6)}… was written on both sides of a partition at version ${s.version}: the write owned by ${snap.r} wins, the one owned by ${s.route} is discarded`,
      );
    }
    if (s.route === this.route && snap.r !== this.route) {
      this.o.log.info({ node: this.route, session: s.base.slice(0, 6), newOwner: snap.r, version: snap.v }, 'session owned by another node now (a winning copy arrived)');
      this.o.holders.forget(s.base);
    }
  }

  bury(base: string, v: number, reason: BuryReason, replica: boolean): void {
    const { config } = this.o;
    // An invalidation must outlive the copies a partition may have kept elsewhere (replica rule: maxInactive + grace).
    const keep = reason === 'invalidated' ? (this.table.get(base)?.maxInactiveMs ?? config.maxInactiveMs) + config.graceMs : 0;
    const s = this.table.bury(base, v, this.o.clock.now(), keep);
    this.reorder.drop(base);
    this.o.holders.forget(base);
    this.o.ports.buried(base);
    if (s) {
      s.markInvalid();
      if (!replica || config.replicaEvents) this.o.events.emit('destroyed', { id: s.id, replica, reason });
    }
  }

  drop(base: string): void {
    const s = this.table.get(base);
    if (s && s.route !== this.route) {
      this.table.remove(base);
      this.reorder.drop(base);
    }
  }

  /** A replica idle past the replica rule: forgotten (no tombstone: the owner decides). */
  expireReplica(s: Session): void {
    this.table.remove(s.base);
    this.reorder.drop(s.base);
    this.o.holders.forget(s.base);
    this.o.stats.expired++;
    if (this.o.config.replicaEvents) this.o.events.emit('destroyed', { id: s.id, replica: true, reason: 'expired' });
  }

  /** An access announcement from the owner: the replica of `base` stays alive. */
  touch(base: string): void {
    const s = this.table.get(base);
    if (s && s.route !== this.route) s.lastAccess = this.o.clock.now();
  }
}
