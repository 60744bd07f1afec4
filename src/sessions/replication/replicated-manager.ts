/**
 * Replicated sessions over the cluster channel: DeltaManager (all-to-all:
 * every node holds every session) and BackupManager (owner + N backups placed
 * by rendezvous hashing, re-created in the background when a member leaves).
 *
 * This facade holds the lifecycle, the request path (create, load, take-over)
 * and the wiring of its parts, each in its own file:
 *  - replica-store.ts: the copies held here — apply a delta, install a copy,
 *    bury, drop — received by handoff, anti-entropy, gap repair and state transfer;
 *  - commit.ts (with ack-quorum.ts): the owner side of a unit of work;
 *  - maintenance.ts: sweep, access flush, gap repair, periodic anti-entropy;
 *  - handoff.ts, anti-entropy.ts, state-transfer.ts, rereplication.ts: the protocols.
 * The decisions are pure and live elsewhere (ordering.ts, placement.ts,
 * convergence.ts, expiry.ts, session.ts).
 * Invariants:
 *  - only the owner (route = id suffix) increments a session's version;
 *  - a delta or copy older than what a node holds is never applied;
 *  - a destroyed session leaves a tombstone that wins over any copy;
 *  - timestamps never cross the wire, only durations and versions.
 */
import { EventEmitter } from 'node:events';
import type { ClusterChannel, JsonValue, MemberView, MembershipEvent } from '../../cluster/types.js';
import { systemClock, systemRandom, type Clock, type Random } from '../../util/clock.js';
import { StateMachine } from '../../util/transitions.js';
import { parseConfig, replicationConfigSchema, type ReplicationConfig, type ReplicationConfigInput } from '../config.js';
import { SessionError, SessionErrorCode } from '../errors.js';
import { isExpired } from '../model/expiry.js';
import {
  silentLogger,
  type CommitOptions,
  type CommitResult,
  type LoadOptions,
  type SessionLogger,
  type SessionManager,
} from '../contract.js';
import { Holders } from './holders.js';
import { Session, type SessionLimits } from '../model/session.js';
import { newSessionBase, parseSessionId, parseSessionIdOrThrow } from '../model/session-id.js';
import { type TransferProgress } from './state-transfer.js';
import { transferUntilDone, type TransferRetryPolicy } from './transfer-retry.js';
import { PullServer } from './pull-server.js';
import { rereplicate } from './rereplication.js';
import { fallbackSources, fetchCopies } from './take-over.js';
import { antiEntropy, type AntiEntropyHost, type AntiEntropyResult } from './anti-entropy.js';
import { handOff, receiveHandoff, type HandoffHost } from './handoff.js';
import { WriteTagger } from './convergence.js';
import { PeerExchanges } from './peer-exchanges.js';
import { DeltaBatcher } from './delta-batch.js';
import { CLEAR_TOPIC, clearEverywhere } from './cluster-clear.js';
import { SessionReplicaStore } from './replica-store.js';
import { OwnerCommit } from './commit.js';
import { Maintenance } from './maintenance.js';
import { newCounters, type ReplicationCounters, type ReplicationStats } from './stats.js';
import { accessCodec, clearReplyCodec, clearRequestCodec, copyCodec, deltaCodec, destroyCodec, dropCodec, Topic } from './wire.js';

export type { ReplicationStats } from './stats.js';

export interface ReplicatedManagerOptions {
  readonly channel: ClusterChannel;
  readonly config?: ReplicationConfigInput;
  /** Timers and monotonic time; wall time for the informative creation time and the write tags. */
  readonly clock?: Clock;
  /** Session ids, write-tag nonces, the peer of periodic anti-entropy. */
  readonly random?: Random;
  readonly logger?: SessionLogger;
  /** Publish meta `ready=true` on the channel once state transfer is done (default true). */
  readonly publishReady?: boolean;
  /** Backoff between state-transfer attempts (default 500 ms doubling to 10 s). */
  readonly transferRetry?: TransferRetryPolicy;
  /** Send the deltas committed in one event-loop turn as one message per peer (default true; delta-batch.ts). */
  readonly batchDeltas?: boolean;
}

/** Lifecycle of a manager: new → starting (state transfer) → running → handing-off (graceful close) → closed. */
export enum ManagerState {
  New = 'new',
  Starting = 'starting',
  Running = 'running',
  /** close(): handing owned sessions over; loads no longer take sessions over, commits of handed sessions fail. */
  HandingOff = 'handing-off',
  Closed = 'closed',
}


export class ReplicatedSessionManager extends EventEmitter implements SessionManager {
  readonly config: ReplicationConfig;
  private readonly channel: ClusterChannel;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly tags: WriteTagger;
  private readonly log: SessionLogger;
  private readonly limits: SessionLimits;
  private readonly holders: Holders;
  private readonly store: SessionReplicaStore;
  private readonly server: PullServer;
  private readonly maintenance: Maintenance;
  private readonly owner: OwnerCommit;
  private readonly takeOvers = new Map<string, Promise<Session | undefined>>();
  private unsubscribe: (() => void) | undefined;
  private rereplicating: Promise<void> | undefined;
  private rereplicateAgain = false;
  /** Lifecycle (guarded: util/transitions.ts; one log line per change). */
  private readonly life: StateMachine<ManagerState>;
  private get state(): ManagerState {
    return this.life.state;
  }
  private transferSeq = 0;
  private closing: Promise<void> | undefined;
  /** Bases whose ownership is being (or was) handed over during close(): commits of them fail. */
  private readonly handoffLocked = new Set<string>();
  private readonly stats: ReplicationCounters = newCounters();
  /** Anti-entropy runs triggered by membership events: one at a time per peer, retried (anti-entropy.ts). */
  private readonly exchanges: PeerExchanges;

  constructor(private readonly opts: ReplicatedManagerOptions) {
    super();
    this.channel = opts.channel;
    this.config = parseConfig(replicationConfigSchema, opts.config, 'sessions');
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? systemRandom;
    this.tags = new WriteTagger(this.random);
    this.log = opts.logger ?? silentLogger;
    this.life = new StateMachine<ManagerState>('session-manager', ManagerState.New, (c) => this.log.info({ node: this.route, from: c.from, to: c.to }, `session manager ${c.from} -> ${c.to}`), () => this.route);
    this.limits = { maxAttributeBytes: this.config.maxAttributeBytes, maxSessionBytes: this.config.maxSessionBytes };
    const route = (): string => this.channel.self.route;
    const fireAndForget = (p: Promise<unknown>, to: string): void => this.fireAndForget(p, to);
    this.holders = new Holders(route, this.config);
    this.store = new SessionReplicaStore({
      route, config: this.config, limits: this.limits, clock: this.clock, holders: this.holders, stats: this.stats, events: this, log: this.log,
      ports: {
        repair: (base, fromId) => this.maintenance.repair(base, fromId),
        gapBuffered: () => this.maintenance.scheduleGapCheck(),
        buried: (base) => this.maintenance.forgetAccess(base),
      },
    });
    this.server = new PullServer(this.store.table, this.holders, this.config.transferRequestTimeoutMs * 3);
    this.maintenance = new Maintenance({
      route, config: this.config, clock: this.clock, random: this.random, channel: this.channel, store: this.store, holders: this.holders,
      server: this.server, stats: this.stats, log: this.log, fireAndForget,
      running: () => this.state === ManagerState.Running,
      closed: () => this.state === ManagerState.Closed,
      antiEntropy: (peer) => this.antiEntropy(peer),
    });
    this.owner = new OwnerCommit({
      route, config: this.config, clock: this.clock, channel: this.channel, store: this.store, holders: this.holders, tags: this.tags,
      maintenance: this.maintenance, stats: this.stats, events: this, log: this.log, fireAndForget,
      deltaBatcher: opts.batchDeltas === false ? undefined : new DeltaBatcher(this.channel, () => this.config.syncTimeoutMs),
    });
    this.exchanges = new PeerExchanges((peer, push) => this.exchangeWith(peer, push), {
      clock: this.clock,
      isMember: (id) => this.channel.members().some((m) => m.id === id),
      cancelled: () => this.state === ManagerState.Closed,
      log: this.log,
      node: route,
    });
  }

  get route(): string {
    return this.channel.self.route;
  }
  get ready(): boolean {
    return this.state === ManagerState.Running;
  }
  get defaultMaxInactiveMs(): number {
    return this.config.maxInactiveMs;
  }
  get syncByDefault(): boolean {
    return this.config.consistency === 'sync';
  }

  private get table() {
    return this.store.table;
  }

  /** Counters and sizes, for metrics and tests. */
  getStats(): ReplicationStats {
    let owned = 0;
    for (const s of this.table.values()) if (s.route === this.route) owned++;
    return { ...this.stats, sessions: this.table.size, owned, tombstones: this.table.tombstoneCount };
  }

  /** The copy held here (owner or replica), without touching it. For tests and the dashboard. */
  peek(idOrBase: string): Session | undefined {
    const p = parseSessionId(idOrBase);
    return p ? this.table.get(p.base) : undefined;
  }

  /** Versions of all sessions held here: base → version. */
  versions(): Map<string, number> {
    const m = new Map<string, number>();
    for (const s of this.table.values()) m.set(s.base, s.version);
    return m;
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Registers handlers, then pulls the sessions this node needs from its
   * peers, emitting `transferProgress` ({@link TransferProgress}) after each
   * page. Resolves (and publishes ready=true) when the transfer is done; an
   * incomplete attempt (logged with COHORT_SESSION_TRANSFER_TIMEOUT) is
   * retried with backoff while the node stays not ready, until one completes
   * or no peer is left to transfer from (transfer-retry.ts).
   */
  async start(): Promise<void> {
    if (this.state !== ManagerState.New) return;
    this.transition([ManagerState.New], ManagerState.Starting);
    const ch = this.channel;
    ch.handle(Topic.Delta, (from, p) => this.onDelta(from, p));
    ch.handle(Topic.Copy, (from, p) => this.onCopy(from, p));
    ch.handle(Topic.Access, (_from, p) => this.onAccess(p));
    ch.handle(Topic.Destroy, (_from, p) => this.onDestroy(p));
    ch.handle(Topic.Drop, (_from, p) => this.onDrop(p));
    ch.handle(Topic.Get, (_from, p) => this.server.get(p));
    ch.handle(Topic.Transfer, (from, p) => this.server.transfer(from, p, this.clock.now()));
    ch.handle(Topic.Digest, (from, p) => this.server.digest(from, p, this.clock.now()));
    ch.handle(Topic.Leaving, (from) => this.onLeaving(from));
    ch.handle(Topic.Handoff, (from, p) => receiveHandoff(this.handoffHost(), from, p));
    ch.handle(CLEAR_TOPIC, async (_from, p) => {
      clearRequestCodec.decode(p);
      return clearReplyCodec.encode({ n: await this.clearOwned(false) });
    });
    this.holders.refresh(this.channel.members());
    this.unsubscribe = ch.onMembership((e) => this.onMembership(e));
    this.maintenance.start();
    try {
      const c = this.config;
      this.stats.lastTransfer = await transferUntilDone(
        ch,
        { mode: c.mode, chunk: c.transferChunk, timeoutMs: c.transferTimeoutMs, requestTimeoutMs: c.transferRequestTimeoutMs, node: this.route, nextId: () => `st-${++this.transferSeq}` },
        this.clock,
        this.store,
        this.log,
        {
          cancelled: () => this.state === ManagerState.Closed,
          onProgress: (p: TransferProgress) => this.emit('transferProgress', p),
          ...(this.opts.transferRetry ? { retry: this.opts.transferRetry } : {}),
        },
      );
    } finally {
      if (this.lifecycle === ManagerState.Starting) this.transition([ManagerState.Starting], ManagerState.Running);
    }
    if (this.opts.publishReady !== false && this.lifecycle === ManagerState.Running) ch.setMeta({ ...ch.self.meta, ready: 'true' });
  }

  /**
   * Graceful: flushes pending replication, waits for re-replication, hands
   * the sessions owned here over to surviving members (at most
   * `handoffTimeoutMs`; the summary is in getStats().lastHandoff), then stops.
   */
  close(): Promise<void> {
    if (this.state === ManagerState.Closed) return Promise.resolve();
    this.closing ??= (async () => {
      try {
        this.owner.flush();
        this.maintenance.flushAccess();
        await this.rereplicating;
        if (this.state === ManagerState.Running && this.config.handoffTimeoutMs > 0) {
          this.transition([ManagerState.Running], ManagerState.HandingOff);
          this.maintenance.sweep();
          this.stats.lastHandoff = await handOff(this.handoffHost(), {
            timeoutMs: this.config.handoffTimeoutMs,
            requestTimeoutMs: this.config.syncTimeoutMs,
            batch: this.config.replicationBatch,
          }, this.log);
        }
      } finally {
        this.destroy();
      }
    })();
    return this.closing;
  }

  destroy(): void {
    if (this.state === ManagerState.Closed) return;
    this.transition([ManagerState.New, ManagerState.Starting, ManagerState.Running, ManagerState.HandingOff], ManagerState.Closed);
    this.unsubscribe?.();
    this.maintenance.stop();
  }

  /** Guarded state change with one structured log line. */
  private transition(allowedFrom: readonly ManagerState[], to: ManagerState): void {
    this.life.transition(allowedFrom, to);
  }

  /** Current lifecycle state. */
  get lifecycle(): ManagerState {
    return this.state;
  }

  private assertRunning(): void {
    if (this.state === ManagerState.New || this.state === ManagerState.Closed) {
      throw new SessionError(SessionErrorCode.NotRunning, `session manager on ${this.route} is ${this.state === ManagerState.New ? 'not started' : 'closed'}`);
    }
  }

  // ---------------------------------------------------------------- request path

  create(id?: string): Session {
    const base = id === undefined ? newSessionBase(this.random) : parseSessionIdOrThrow(id).base;
    return new Session(
      { base, route: this.route, version: 0, createdAt: this.clock.wallNow(), maxInactiveMs: this.config.maxInactiveMs, now: this.clock.now() },
      this.limits,
    );
  }

  async load(id: string, options: LoadOptions = {}): Promise<Session | undefined> {
    this.assertRunning();
    const p = parseSessionId(id);
    if (!p || this.table.tombstone(p.base)) return undefined;
    const local = this.table.get(p.base);
    const now = this.clock.now();
    if (local && local.route === this.route) {
      if (isExpired(local, 'owner', now, this.config)) {
        this.maintenance.expireOwned(local);
        return undefined;
      }
      local.lastAccess = now;
      return local;
    }
    // A read without take-over still applies the replica rule: a copy its owner expired is gone on every node.
    if (options.takeOver === false && local) return this.unlessExpiredCopy(local, now);
    // Concurrent requests for the same session share one fetch (and one take-over).
    // A node handing its sessions over takes nothing over (it would steal back what it handed).
    const claim = options.takeOver !== false && this.state !== ManagerState.HandingOff;
    const key = `${p.base}|${claim}`;
    let inflight = this.takeOvers.get(key);
    if (!inflight) {
      inflight = this.takeOver(p.base, local?.route ?? p.route, claim).finally(() => this.takeOvers.delete(key));
      this.takeOvers.set(key, inflight);
    }
    return inflight;
  }
  /** The stored copy: the owner's session object is the stored one, so its uncommitted changes are undone in place, then it is loaded again (a take-over if it moved). */
  async reload(session: Session): Promise<Session | undefined> {
    this.assertRunning();
    if (session.isNew || session.invalidated) return undefined;
    session.revert();
    return this.load(session.id);
  }

  /**
   * JvmRouteBinderValve: fetch the newest copy (from the owner if alive,
   * else from every live member), then become the owner. The route change is
   * replicated by the next commit, which also tells the old owner.
   */
  private async takeOver(base: string, ownerRoute: string, claim: boolean): Promise<Session | undefined> {
    const owner = this.holders.member(ownerRoute);
    let found = owner ? await this.fetchFrom([owner], base) : false;
    if (!found) {
      const sources = fallbackSources({
        mode: this.config.mode,
        owner,
        heldLocally: this.table.has(base),
        placement: this.holders.members(this.holders.placementOf(base, ownerRoute)),
        members: this.channel.members(),
      });
      if (sources.length > 0) found = await this.fetchFrom(sources, base);
    }
    const s = this.table.get(base);
    if (!s) return undefined;
    const now = this.clock.now();
    if (!claim) return this.unlessExpiredCopy(s, now);
    if (isExpired(s, 'replica', now, this.config)) {
      this.table.remove(base);
      return undefined;
    }
    if (s.route !== this.route) {
      const previousId = s.id;
      const prevOwner = this.holders.member(s.route);
      s.setRoute(this.route);
      this.stats.takeOvers++;
      if (prevOwner) this.holders.notePreviousOwner(base, prevOwner.route);
      this.log.info({ node: this.route, session: base.slice(0, 6), from: previousId.slice(previousId.indexOf('.') + 1), ownerAlive: !!prevOwner }, 'session taken over');
      this.emit('takenOver', { id: s.id, previousId, replica: false });
    }
    s.lastAccess = now;
    return s;
  }

  /** Asks `peers` for their copy of `base`; installs the newest. True if any had a copy or a tombstone. */
  private async fetchFrom(peers: readonly MemberView[], base: string): Promise<boolean> {
    const f = await fetchCopies(this.channel, peers, base, this.config.syncTimeoutMs);
    for (const [m, err] of f.errors) this.log.warn({ node: this.route, peer: m.route, session: base.slice(0, 6), err: String(err) }, 'take-over: a peer did not answer');
    for (const [b, v] of f.tombstones) this.store.bury(b, v, 'invalidated', true);
    for (const snap of f.snapshots) this.store.installCopy(snap);
    return f.snapshots.length > 0 || f.tombstones.length > 0;
  }


  regenerateId(session: Session): void {
    session.changeBase(newSessionBase(this.random));
  }

  async invalidate(session: Session, options: CommitOptions = {}): Promise<void> {
    session.markInvalid();
    await this.commit(session, options);
  }

  /** End of a unit of work (commit.ts). */
  async commit(session: Session, options: CommitOptions = {}): Promise<CommitResult> {
    this.assertRunning();
    if (this.state === ManagerState.HandingOff && (session.route !== this.route || this.handoffLocked.has(session.base))) {
      throw new SessionError(SessionErrorCode.HandedOff, `session ${session.base.slice(0, 6)}… is being handed over to another node: ${this.route} is leaving`);
    }
    return this.owner.commit(session, options.sync ?? this.syncByDefault);
  }

  async ids(): Promise<string[]> {
    const out: string[] = [];
    for (const s of this.table.values()) out.push(s.id);
    return out;
  }

  /** Destroys every session of the cluster: each member its own, this node also the orphans it holds (cluster-clear.ts). */
  async clear(): Promise<void> {
    this.assertRunning();
    const r = await clearEverywhere(this.channel, this.channel.members(), () => this.clearOwned(true), this.config.syncTimeoutMs);
    for (const [member, err] of Object.entries(r.failed)) this.log.warn({ node: this.route, member, err }, 'clear: a member did not answer');
  }

  /** Destroys the sessions owned here (and, with `orphans`, copies whose owner is not a member). Returns how many. */
  private async clearOwned(orphans: boolean): Promise<number> {
    const live = new Set(this.channel.members().map((m) => m.route));
    let n = 0;
    for (const s of [...this.table.values()]) {
      if (s.route === this.route || (orphans && !live.has(s.route))) {
        await this.invalidate(s);
        n++;
      }
    }
    return n;
  }

  /** The copy, unless the replica rule expired it (then it is dropped here; its owner sends the destroy). */
  private unlessExpiredCopy(s: Session, now: number): Session | undefined {
    if (s.route === this.route || !isExpired(s, 'replica', now, this.config)) return s;
    this.table.remove(s.base);
    return undefined;
  }

  /** Expires idle sessions (owner rule or replica rule), purges tombstones and idle cursors (maintenance.ts). */
  sweep(): void {
    this.maintenance.sweep();
  }

  /** Sends the batched access notifications to the holders now (maintenance.ts). */
  flushAccess(): void {
    this.maintenance.flushAccess();
  }

  // ---------------------------------------------------------------- incoming (replica-store.ts)

  private onDelta(from: MemberView, payload: JsonValue): void {
    for (const d of deltaCodec.decode(payload)) this.store.receiveDelta(d, from);
  }

  private onCopy(from: MemberView, payload: JsonValue): void {
    for (const snap of copyCodec.decode(payload)) this.store.installCopy(snap, from);
  }

  private onAccess(payload: JsonValue): void {
    for (const [base] of accessCodec.decode(payload)) this.store.touch(base);
  }

  private onDestroy(payload: JsonValue): void {
    for (const [base, v, invalidated] of destroyCodec.decode(payload)) this.store.bury(base, v, invalidated === 0 ? 'expired' : 'invalidated', true);
  }

  private onDrop(payload: JsonValue): void {
    for (const base of dropCodec.decode(payload)) this.store.drop(base);
  }

  // ---------------------------------------------------------------- handoff (handoff.ts)

  /** A peer is leaving gracefully: place no more copies on it; in backup mode re-create the backups it held now, while it still answers. */
  private onLeaving(from: MemberView): void {
    this.holders.markDeparting(from.id);
    this.log.info({ node: this.route, member: from.route }, `${from.route} is leaving: handing its sessions over`);
    if (this.config.mode === 'backup' && this.state !== ManagerState.Closed) this.scheduleRereplication();
  }

  /** What handoff.ts works on: the replica store and placement, and the few steps that stay the manager's. */
  private handoffHost(): HandoffHost {
    return {
      route: this.route,
      channel: this.channel,
      clock: this.clock,
      tags: this.tags,
      store: this.store,
      holders: this.holders,
      locked: this.handoffLocked,
      accepting: () => this.state === ManagerState.Running || this.state === ManagerState.Starting,
      adopted: (s, previousId) => {
        this.stats.handoffsReceived++;
        this.emit('takenOver', { id: s.id, previousId, replica: false });
      },
      handed: (base) => this.maintenance.forgetAccess(base),
      sendFailed: (err, to) => this.fireAndForget(Promise.reject(err), to),
    };
  }

  // ---------------------------------------------------------------- membership

  private onMembership(e: MembershipEvent): void {
    this.holders.refresh(this.channel.members());
    if (this.state === ManagerState.Closed) return;
    this.log.info({ node: this.route, event: e.type, member: e.member.route }, `membership: ${e.member.route} ${e.type}`);
    if (e.type === 'gone' && this.config.mode === 'backup') this.scheduleRereplication();
    // 'back': a healed partition — exchange (pull, and push what this node owns: the peer may not have seen us gone).
    // 'added' too when the member is already ready: a membership service may report a healed member as new (it was
    // dropped meanwhile); it does the same towards us, so pulling is enough. A fresh node pulls by state transfer.
    if (e.type === 'back') {
      this.exchanges.request(e.member, e.type, true);
      if (this.config.mode === 'backup') this.scheduleRereplication();
    } else if (e.type === 'added' && this.state === ManagerState.Running && e.member.meta.ready === 'true') {
      this.exchanges.request(e.member, e.type, false);
    }
  }

  /**
   * Backup mode, after a member left: every copy it held is re-created on
   * the member that now ranks in its place, in batches in the background.
   * Owned sessions go to their new backups; orphaned ones (owner gone) to the
   * top-ranked live members, which keep them until someone takes them over.
   */
  private scheduleRereplication(): void {
    if (this.rereplicating) {
      this.rereplicateAgain = true;
      return;
    }
    this.rereplicating = (async () => {
      do {
        this.rereplicateAgain = false;
        await this.rereplicate();
      } while (this.rereplicateAgain && this.state !== ManagerState.Closed);
    })()
      .catch((err: unknown) => this.log.error({ node: this.route, err: String(err) }, 're-replication failed'))
      .finally(() => {
        this.rereplicating = undefined;
      });
  }

  /** Runs one re-replication pass; resolves when every batch was acknowledged (or failed). */
  async rereplicate(): Promise<number> {
    const r = await rereplicate(this.channel, this.holders, this.table.values(), {
      batch: this.config.replicationBatch,
      timeoutMs: this.config.syncTimeoutMs,
      node: this.route,
      cancelled: () => this.state === ManagerState.Closed,
    }, this.log);
    this.stats.copiesSent += r.sent;
    this.stats.sendFailures += r.failedBatches;
    return r.sent;
  }

  /**
   * After a partition heals (and periodically): exchange digests with `peer`
   * — (base, version, tombstone, owner, write tag) — apply its tombstones,
   * pull the copies that win under the conflict rule, push the sessions this
   * node owns that the peer lacks or holds a losing copy of (anti-entropy.ts,
   * convergence.ts). Resolves to the number of sessions pulled.
   */
  async antiEntropy(peer: MemberView): Promise<number> {
    return (await this.exchangeWith(peer)).pulled;
  }

  /** {@link antiEntropy} with the whole result; `push` false: only pull. */
  async exchangeWith(peer: MemberView, push = true): Promise<AntiEntropyResult> {
    const host: AntiEntropyHost = {
      selfRoute: this.route,
      store: this.store,
      shouldHold: (b, r) => this.holders.shouldHold(b, r),
      placesOn: (b, r, p) => this.config.mode === 'all-to-all' || this.holders.placesOn(b, r, p),
      confirm: (b) => {
        const s = this.table.get(b);
        // An extra copy (backup mode: placed elsewhere now) is not kept alive: it expires by the replica rule.
        if (s && s.route !== this.route && this.holders.shouldHold(b, s.route)) s.lastAccess = this.clock.now();
      },
    };
    const r = await antiEntropy(this.channel, peer, host, {
      transferId: `ae-${this.route}-${++this.transferSeq}`,
      digestPage: 20_000,
      pullChunk: this.config.transferChunk,
      requestTimeoutMs: this.config.transferRequestTimeoutMs,
      push,
    });
    this.log.info(
      { node: this.route, peer: peer.route, ...r },
      `anti-entropy with ${peer.route}: pulled ${r.pulled}, pushed ${r.pushed}, tombstones applied ${r.buried} / sent ${r.tombstonesPushed}, same-version conflicts ${r.conflicts}`,
    );
    return r;
  }

  private fireAndForget(p: Promise<unknown>, to: string): void {
    p.catch((err: unknown) => {
      this.stats.sendFailures++;
      this.log.warn({ node: this.route, to, err: String(err) }, 'replication send failed');
    });
  }
}
