/**
 * The replicated manager's background work, each on the injected clock:
 *  - sweep (every sweepIntervalMs): owner and replica expiry, tombstone and
 *    cursor purge;
 *  - access flush (flushIntervalMs after the first pending one): batched
 *    access announcements to the holders, so replicas don't expire sessions
 *    that are in use but unchanged;
 *  - gap repair (gapTimeoutMs after deltas were buffered): a gap not filled
 *    in time is answered with the sender's full copy, abandoned after
 *    {@link MAX_REPAIR_ATTEMPTS};
 *  - periodic anti-entropy (every antiEntropyIntervalMs): one random peer's
 *    digest compared, a safety net besides the membership events.
 * Timers are unref'd and stop with {@link Maintenance.stop}.
 */
import type { ClusterChannel, MemberView } from '../../cluster/types.js';
import { pickOne, type Clock, type Random, type TimerHandle } from '../../util/clock.js';
import type { ReplicationConfig } from '../config.js';
import type { SessionLogger } from '../contract.js';
import { isExpired } from '../model/expiry.js';
import type { Session } from '../model/session.js';
import type { Holders } from './holders.js';
import type { SessionReplicaStore } from './replica-store.js';
import type { PullServer } from './pull-server.js';
import type { ReplicationCounters } from './stats.js';
import { accessCodec, destroyCodec, getReplyCodec, getRequestCodec, type VersionPair } from './wire.js';

/** Repair requests per gap before the buffered deltas are dropped. */
export const MAX_REPAIR_ATTEMPTS = 5;

export interface MaintenanceOptions {
  readonly route: () => string;
  readonly config: ReplicationConfig;
  readonly clock: Clock;
  readonly random: Random;
  readonly channel: ClusterChannel;
  readonly store: SessionReplicaStore;
  readonly holders: Holders;
  readonly server: PullServer;
  readonly stats: ReplicationCounters;
  readonly log: SessionLogger;
  /** Whether the manager serves (periodic anti-entropy runs only then). */
  running(): boolean;
  closed(): boolean;
  /** One anti-entropy exchange with `peer` (anti-entropy.ts through the manager). */
  antiEntropy(peer: MemberView): Promise<unknown>;
  /** Counts and logs a failed fire-and-forget send. */
  fireAndForget(p: Promise<unknown>, to: string): void;
}

export class Maintenance {
  /** base → version, accesses to announce at the next flush. */
  private readonly pendingAccess = new Map<string, number>();
  private sweepTimer: TimerHandle | undefined;
  private flushTimer: TimerHandle | undefined;
  private gapTimer: TimerHandle | undefined;
  private aeTimer: TimerHandle | undefined;
  private aeRunning = false;

  constructor(private readonly o: MaintenanceOptions) {}

  private get route(): string {
    return this.o.route();
  }

  /** Starts the sweep and the periodic anti-entropy (the others start on demand). */
  start(): void {
    this.scheduleSweep();
    this.scheduleAntiEntropy();
  }

  stop(): void {
    for (const t of [this.sweepTimer, this.flushTimer, this.gapTimer, this.aeTimer]) if (t) this.o.clock.clearTimeout(t);
    this.sweepTimer = this.flushTimer = this.gapTimer = undefined;
  }

  // ---------------------------------------------------------------- sweep

  private scheduleSweep(): void {
    this.sweepTimer = this.o.clock.setTimeout(() => {
      this.sweep();
      if (!this.o.closed()) this.scheduleSweep();
    }, this.o.config.sweepIntervalMs);
    this.sweepTimer.unref?.();
  }

  /** Expires idle sessions (owner rule or replica rule), purges tombstones and idle cursors. */
  sweep(): void {
    const { config, store } = this.o;
    const now = this.o.clock.now();
    for (const s of [...store.table.values()]) {
      if (s.route === this.route) {
        if (isExpired(s, 'owner', now, config)) this.expireOwned(s);
      } else if (isExpired(s, 'replica', now, config)) {
        store.expireReplica(s);
      }
    }
    store.table.purgeTombstones(now - config.tombstoneTtlMs, now);
    this.o.server.purge(now);
  }

  /** An owned session idle past the owner rule: destroyed here and at its holders. */
  expireOwned(s: Session): void {
    const v = s.version + 1;
    const holders = this.o.holders.holdersOf(s.base, s.route);
    this.o.store.bury(s.base, v, 'expired', false);
    this.o.stats.expired++;
    for (const m of holders) this.o.fireAndForget(this.o.channel.send(m.id, destroyCodec.topic, destroyCodec.encode([[s.base, v, 0]])), m.id);
  }

  // ---------------------------------------------------------------- access announcements

  /** The owner served `base` at `version` without a change: announce it at the next flush. */
  noteAccess(base: string, version: number): void {
    this.pendingAccess.set(base, version);
    if (this.flushTimer) return;
    this.flushTimer = this.o.clock.setTimeout(() => {
      this.flushTimer = undefined;
      this.flushAccess();
    }, this.o.config.flushIntervalMs);
    this.flushTimer.unref?.();
  }

  /** `base` changed (the delta carries the access), was destroyed or handed over: nothing to announce. */
  forgetAccess(base: string): void {
    this.pendingAccess.delete(base);
  }

  /** Sends the batched access notifications to the holders. */
  flushAccess(): void {
    if (this.pendingAccess.size === 0) return;
    const byMember = new Map<string, VersionPair[]>();
    for (const [base, v] of this.pendingAccess) {
      const s = this.o.store.table.get(base);
      if (!s) continue;
      for (const m of this.o.holders.holdersOf(s.base, s.route)) {
        let l = byMember.get(m.id);
        if (!l) byMember.set(m.id, (l = []));
        l.push([base, v]);
      }
    }
    this.pendingAccess.clear();
    for (const [id, a] of byMember) this.o.fireAndForget(this.o.channel.send(id, accessCodec.topic, accessCodec.encode(a)), id);
  }

  // ---------------------------------------------------------------- gap repair

  /** Deltas were buffered behind a gap: check in gapTimeoutMs whether it filled. */
  scheduleGapCheck(): void {
    if (this.gapTimer) return;
    const { store } = this.o;
    this.gapTimer = this.o.clock.setTimeout(() => {
      this.gapTimer = undefined;
      const now = this.o.clock.now();
      for (const [base, from] of store.reorder.expired(now)) {
        if (store.reorder.postpone(base, now) > MAX_REPAIR_ATTEMPTS) {
          // The sender is gone or keeps failing: forget the buffered deltas; anti-entropy or a take-over will fetch a copy.
          store.reorder.drop(base);
          this.o.log.warn({ node: this.route, session: base.slice(0, 6) }, 'gap repair abandoned');
          continue;
        }
        this.repair(base, from);
      }
      if (store.reorder.size > 0) this.scheduleGapCheck();
    }, this.o.config.gapTimeoutMs);
    this.gapTimer.unref?.();
  }

  /** Gap not filled in time (or a delta from another write): ask the sender for a full copy. */
  repair(base: string, fromId: string): void {
    const { store } = this.o;
    this.o.stats.gapRepairs++;
    this.o.channel
      .request(fromId, getRequestCodec.topic, getRequestCodec.encode([base]), { timeoutMs: this.o.config.syncTimeoutMs })
      .then((payload) => {
        const reply = getReplyCodec.decode(payload);
        for (const [b, v] of reply.t) store.bury(b, v, 'invalidated', true);
        for (const snap of reply.s) store.installCopy(snap);
        store.drain(base);
      })
      .catch((err: unknown) => this.o.log.warn({ node: this.route, session: base.slice(0, 6), err: String(err) }, 'gap repair failed'));
  }

  // ---------------------------------------------------------------- periodic anti-entropy

  /**
   * Safety net besides the `back` event: every antiEntropyIntervalMs, one
   * random peer's digest is compared (what a lost message or a missed
   * membership event left behind converges).
   */
  private scheduleAntiEntropy(): void {
    const every = this.o.config.antiEntropyIntervalMs;
    if (every <= 0 || this.o.closed()) return;
    this.aeTimer = this.o.clock.setTimeout(() => {
      const peers = this.o.channel.members();
      if (!this.aeRunning && peers.length > 0 && this.o.running()) {
        const peer = pickOne(this.o.random, peers)!;
        this.aeRunning = true;
        this.o.antiEntropy(peer)
          .catch((err: unknown) => this.o.log.warn({ node: this.route, member: peer.route, err: String(err) }, 'periodic anti-entropy failed'))
          .finally(() => {
            this.aeRunning = false;
          });
      }
      this.scheduleAntiEntropy();
    }, every);
    this.aeTimer.unref?.();
  }
}
