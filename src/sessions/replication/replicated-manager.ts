/**
 * Replicated sessions over the cluster channel: DeltaManager (all-to-all:
 * every node holds every session) and BackupManager (owner + N backups placed
 * by rendezvous hashing, re-created in the background when a member leaves).
 *
 * The decisions are pure and live elsewhere (ordering.ts, placement.ts,
 * expiry.ts, session.ts); this class wires them to the channel and a clock.
 * Invariants:
 *  - only the owner (route = id suffix) increments a session's version;
 *  - a delta or copy older than what a node holds is never applied;
 *  - a destroyed session leaves a tombstone that wins over any copy;
 *  - timestamps never cross the wire, only durations and versions.
 */
import { EventEmitter } from 'node:events';
import type { ClusterChannel, JsonValue, MemberView, MembershipEvent } from '../../cluster/types.js';
import { systemClock, systemRandom, type Clock, type Random, type TimerHandle } from '../../util/clock.js';
import { parseConfig, replicationConfigSchema, type ReplicationConfig, type ReplicationConfigInput } from '../config.js';
import { SessionError, SessionErrorCode } from '../errors.js';
import { isExpired, shouldNotifyAccess } from '../model/expiry.js';
import {
  silentLogger,
  type CommitOptions,
  type CommitResult,
  type LoadOptions,
  type SessionLogger,
  type SessionManager,
} from '../manager.js';
import { chainsOnto, classifyDelta, ReorderBuffer } from './ordering.js';
import { Holders } from './holders.js';
import { Session, type SessionLimits } from '../model/session.js';
import { cryptoRandomBytes, newSessionBase, parseSessionId, parseSessionIdOrThrow, type RandomBytes } from '../model/session-id.js';
import { SessionTable } from '../model/session-table.js';
import { type TransferProgress, type TransferReport } from './state-transfer.js';
import { transferUntilDone, type TransferRetryPolicy } from './transfer-retry.js';
import { SessionServer } from './serving.js';
import { rereplicate } from './rereplication.js';
import { fallbackSources, fetchCopies } from './take-over.js';
import { antiEntropy, tableDigest, type AntiEntropyHost, type AntiEntropyResult } from './anti-entropy.js';
import { handOff, receiveHandoff, type HandoffHost, type HandoffReport } from './handoff.js';
import { copyVerdict, copyWins, newWriteTag } from './convergence.js';
import { PeerExchanges } from './peer-exchanges.js';
import { DeltaBatcher } from './delta-batch.js';
import { CLEAR_TOPIC, clearEverywhere } from './cluster-clear.js';
import { asDelta, asSnapshot, field, isArray, Topic, type SessionDelta, type SessionSnapshot, type VersionPair } from './wire.js';

export interface ReplicatedManagerOptions {
  readonly channel: ClusterChannel;
  readonly config?: ReplicationConfigInput;
  readonly clock?: Clock;
  /** Wall clock for the informative creation time only. */
  readonly wallNow?: () => number;
  readonly randomBytes?: RandomBytes;
  /** Picks the peer of periodic anti-entropy. */
  readonly random?: Random;
  readonly logger?: SessionLogger;
  /** Publish meta `ready=true` on the channel once state transfer is done (default true). */
  readonly publishReady?: boolean;
  /** Backoff between state-transfer attempts (default 500 ms doubling to 10 s). */
  readonly transferRetry?: TransferRetryPolicy;
  /** Send the deltas committed in one event-loop turn as one message per peer (default true; delta-batch.ts). */
  readonly batchDeltas?: boolean;
}

export interface ReplicationStats {
  readonly sessions: number;
  readonly owned: number;
  readonly tombstones: number;
  readonly deltasSent: number;
  readonly deltasApplied: number;
  readonly staleRejected: number;
  readonly gapsBuffered: number;
  readonly gapRepairs: number;
  readonly copiesSent: number;
  readonly copiesInstalled: number;
  readonly takeOvers: number;
  readonly expired: number;
  readonly sendFailures: number;
  /** Copies replaced here by another write of the same version (partition conflicts, see convergence.ts). */
  readonly conflictsResolved: number;
  /** Deltas made from another write of the version held (answered by fetching the sender's copy). */
  readonly divergedDeltas: number;
  readonly lastTransfer: TransferReport | undefined;
  /** Sessions this node became the owner of through a leaving peer's handoff. */
  readonly handoffsReceived: number;
  /** This node's own graceful handoff (set by close()). */
  readonly lastHandoff: HandoffReport | undefined;
}

/** Repair requests per gap before the buffered deltas are dropped. */
const MAX_REPAIR_ATTEMPTS = 5;

/** Lifecycle of a manager: new → starting (state transfer) → running → handing-off (graceful close) → closed. */
export enum ManagerState {
  New = 'new',
  Starting = 'starting',
  Running = 'running',
  /** close(): handing owned sessions over; loads no longer take sessions over, commits of handed sessions fail. */
  HandingOff = 'handing-off',
  Closed = 'closed',
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export class ReplicatedSessionManager extends EventEmitter implements SessionManager {
  readonly config: ReplicationConfig;
  private readonly channel: ClusterChannel;
  private readonly clock: Clock;
  private readonly wallNow: () => number;
  private readonly randomBytes: RandomBytes;
  private readonly log: SessionLogger;
  private readonly limits: SessionLimits;
  private readonly table = new SessionTable();
  private readonly reorder: ReorderBuffer;
  private readonly server: SessionServer;
  private readonly holders: Holders;
  /** base → version, accesses to announce at the next flush. */
  private readonly pendingAccess = new Map<string, number>();
  private readonly takeOvers = new Map<string, Promise<Session | undefined>>();
  private unsubscribe: (() => void) | undefined;
  private sweepTimer: TimerHandle | undefined;
  private flushTimer: TimerHandle | undefined;
  private gapTimer: TimerHandle | undefined;
  private rereplicating: Promise<void> | undefined;
  private rereplicateAgain = false;
  private state = ManagerState.New;
  private transferSeq = 0;
  private closing: Promise<void> | undefined;
  /** Bases whose ownership is being (or was) handed over during close(): commits of them fail. */
  private readonly handoffLocked = new Set<string>();
  private readonly stats: Mutable<ReplicationStats> = {
    sessions: 0, owned: 0, tombstones: 0, deltasSent: 0, deltasApplied: 0, staleRejected: 0, gapsBuffered: 0, gapRepairs: 0,
    copiesSent: 0, copiesInstalled: 0, takeOvers: 0, expired: 0, sendFailures: 0, conflictsResolved: 0, divergedDeltas: 0, lastTransfer: undefined,
    handoffsReceived: 0, lastHandoff: undefined,
  };
  /** Anti-entropy runs triggered by membership events: one at a time per peer, retried (anti-entropy.ts). */
  private readonly exchanges: PeerExchanges;
  /** Deltas of one event-loop turn, one message per peer (undefined: one message per delta). */
  private readonly deltaBatcher: DeltaBatcher | undefined;

  constructor(private readonly opts: ReplicatedManagerOptions) {
    super();
    this.channel = opts.channel;
    this.config = parseConfig(replicationConfigSchema, opts.config, 'sessions');
    this.clock = opts.clock ?? systemClock;
    this.wallNow = opts.wallNow ?? Date.now;
    this.randomBytes = opts.randomBytes ?? cryptoRandomBytes;
    this.log = opts.logger ?? silentLogger;
    this.limits = { maxAttributeBytes: this.config.maxAttributeBytes, maxSessionBytes: this.config.maxSessionBytes };
    this.reorder = new ReorderBuffer(this.config.gapTimeoutMs);
    this.holders = new Holders(() => this.channel.self.route, this.config);
    this.server = new SessionServer(this.table, this.holders, this.config.transferRequestTimeoutMs * 3);
    this.deltaBatcher = opts.batchDeltas === false ? undefined : new DeltaBatcher(this.channel, () => this.config.syncTimeoutMs);
    this.exchanges = new PeerExchanges((peer, push) => this.exchangeWith(peer, push), {
      clock: this.clock,
      isMember: (id) => this.channel.members().some((m) => m.id === id),
      cancelled: () => this.state === ManagerState.Closed,
      log: this.log,
      node: () => this.route,
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
    ch.handle(CLEAR_TOPIC, async () => ({ n: await this.clearOwned(false) }));
    this.holders.refresh(this.channel.members());
    this.unsubscribe = ch.onMembership((e) => this.onMembership(e));
    this.scheduleSweep();
    this.scheduleAntiEntropy();
    try {
      const c = this.config;
      this.stats.lastTransfer = await transferUntilDone(
        ch,
        { mode: c.mode, chunk: c.transferChunk, timeoutMs: c.transferTimeoutMs, requestTimeoutMs: c.transferRequestTimeoutMs, node: this.route, nextId: () => `st-${++this.transferSeq}` },
        this.clock,
        (list) => {
          for (const snap of list) this.installCopy(snap);
        },
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
        this.deltaBatcher?.flush();
        this.flushAccess();
        await this.rereplicating;
        if (this.state === ManagerState.Running && this.config.handoffTimeoutMs > 0) {
          this.transition([ManagerState.Running], ManagerState.HandingOff);
          this.sweep();
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
    for (const t of [this.sweepTimer, this.flushTimer, this.gapTimer, this.aeTimer]) if (t) this.clock.clearTimeout(t);
    this.sweepTimer = this.flushTimer = this.gapTimer = undefined;
  }

  /** Guarded state change with one structured log line. */
  private transition(allowedFrom: readonly ManagerState[], to: ManagerState): void {
    if (!allowedFrom.includes(this.state)) throw new Error(`session manager: illegal transition ${this.state} -> ${to}`);
    this.log.info({ node: this.route, from: this.state, to }, `session manager ${this.state} -> ${to}`);
    this.state = to;
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
    const base = id === undefined ? newSessionBase(this.randomBytes) : parseSessionIdOrThrow(id).base;
    return new Session(
      { base, route: this.route, version: 0, createdAt: this.wallNow(), maxInactiveMs: this.config.maxInactiveMs, now: this.clock.now() },
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
        this.expireOwned(local);
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
    for (const [b, v] of f.tombstones) this.buryLocal(b, v, 'invalidated', true);
    for (const snap of f.snapshots) this.installCopy(snap);
    return f.snapshots.length > 0 || f.tombstones.length > 0;
  }

  regenerateId(session: Session): void {
    session.changeBase(newSessionBase(this.randomBytes));
  }

  async invalidate(session: Session, options: CommitOptions = {}): Promise<void> {
    session.markInvalid();
    await this.commit(session, options);
  }

  async commit(session: Session, options: CommitOptions = {}): Promise<CommitResult> {
    this.assertRunning();
    if (this.state === ManagerState.HandingOff && (session.route !== this.route || this.handoffLocked.has(session.base))) {
      throw new SessionError(SessionErrorCode.HandedOff, `session ${session.base.slice(0, 6)}… is being handed over to another node: ${this.route} is leaving`);
    }
    const sync = options.sync ?? this.syncByDefault;
    const now = this.clock.now();
    if (session.invalidated) return this.commitDestroy(session, sync, now);
    const prevBase = session.previousBase;
    const wasNew = session.isNew;
    const d = session.takeDelta(newWriteTag(this.wallNow()));
    if (!d) {
      session.lastAccess = now;
      if (shouldNotifyAccess(session, now, this.config)) {
        session.accessNotifiedAt = now;
        this.pendingAccess.set(session.base, session.version);
        this.scheduleFlush();
      }
      return { version: session.version, changed: false, replicatedTo: [], failed: {} };
    }
    if (prevBase !== undefined) {
      this.table.bury(prevBase, d.v, now);
      this.holders.rename(prevBase, d.i);
    }
    session.lastAccess = now;
    session.accessNotifiedAt = now;
    this.table.set(session);
    this.pendingAccess.delete(session.base);
    if (wasNew) this.emit('created', { id: session.id, replica: false });
    this.emitChanges(session, d, false);

    const { deltaTo, copyTo, dropTo } = this.holders.targetsForCommit(session.base, session.route);
    const mode = sync ? 'applied' : 'async';
    const sends: Array<Promise<void>> = [];
    const ids: string[] = [];
    for (const m of deltaTo) {
      ids.push(m.id);
      sends.push(
        this.deltaBatcher
          ? this.deltaBatcher.send(m.id, d, sync)
          : this.channel.send(m.id, Topic.Delta, { d: [d as unknown as JsonValue] }, { mode, timeoutMs: this.config.syncTimeoutMs }),
      );
      this.stats.deltasSent++;
    }
    if (copyTo.length > 0) {
      const snap = session.snapshot() as unknown as JsonValue;
      for (const m of copyTo) {
        ids.push(m.id);
        sends.push(this.channel.send(m.id, Topic.Copy, { s: [snap] }, { mode, timeoutMs: this.config.syncTimeoutMs }));
        this.stats.copiesSent++;
      }
    }
    for (const m of dropTo) this.fireAndForget(this.channel.send(m.id, Topic.Drop, { x: [session.base] }), m.id);
    if (!sync) {
      sends.forEach((p, i) => this.fireAndForget(p, ids[i]!));
      // Async: no acknowledgement awaited, but the delta is handed to the sockets before the
      // response goes out, so a kill -9 of this process right after the response still delivers it.
      if (this.config.asyncAwaitsWrite) await Promise.allSettled(sends);
      return { version: session.version, changed: true, replicatedTo: ids, failed: {} };
    }
    const ok: string[] = [];
    const failed: Record<string, string> = {};
    await new Promise<void>((resolve) => {
      let settled = 0;
      if (sends.length === 0) return resolve();
      sends.forEach((p, i) =>
        p.then(
          () => {
            ok.push(ids[i]!);
            // syncAcks 'one': one holder applied it, enough to survive the owner's death; the rest continue.
            if (this.config.syncAcks === 'one') resolve();
          },
          (err: unknown) => {
            failed[ids[i]!] = String((err as Error)?.message ?? err);
            this.stats.sendFailures++;
            this.log.warn({ node: this.route, to: ids[i], err: String(err) }, 'sync replication failed');
          },
        ).finally(() => {
          if (++settled === sends.length) resolve();
        }),
      );
    });
    if (ids.length > 0 && ok.length === 0) {
      throw new SessionError(SessionErrorCode.ReplicationFailed, `sync commit of session ${session.base.slice(0, 6)}… v${session.version}: no peer acknowledged (${Object.values(failed).join('; ')})`);
    }
    return { version: session.version, changed: true, replicatedTo: [...ok], failed: { ...failed } };
  }

  private async commitDestroy(session: Session, sync: boolean, now: number): Promise<CommitResult> {
    const known = session.version > 0 || this.table.get(session.base) === session;
    const prev = session.previousBase;
    if (!known) return { version: session.version, changed: false, replicatedTo: [], failed: {} };
    const v = session.version + 1;
    this.buryLocal(session.base, v, 'invalidated', false);
    if (prev !== undefined) this.table.bury(prev, v, now);
    // [base, version, 1]: invalidated — replicas keep the tombstone as long as the owner does; an expiry sends 0.
    const pairs: JsonValue = prev !== undefined ? [[session.base, v, 1], [prev, v, 1]] : [[session.base, v, 1]];
    const targets = this.holders.holdersOf(session.base, session.route);
    const mode = sync ? 'applied' : 'async';
    const sends = targets.map((m) => this.channel.send(m.id, Topic.Destroy, { x: pairs }, { mode, timeoutMs: this.config.syncTimeoutMs }));
    if (!sync) {
      sends.forEach((p, i) => this.fireAndForget(p, targets[i]!.id));
      return { version: v, changed: true, replicatedTo: targets.map((m) => m.id), failed: {} };
    }
    const rs = await Promise.allSettled(sends);
    const failed: Record<string, string> = {};
    rs.forEach((r, i) => {
      if (r.status === 'rejected') failed[targets[i]!.id] = String(r.reason);
    });
    return { version: v, changed: true, replicatedTo: targets.filter((m) => !(m.id in failed)).map((m) => m.id), failed };
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

  // ---------------------------------------------------------------- incoming

  private onDelta(from: MemberView, payload: JsonValue): void {
    const list = field<JsonValue[]>(payload, 'd', Topic.Delta, isArray);
    const now = this.clock.now();
    for (const raw of list) {
      const d = asDelta(raw, Topic.Delta);
      if (this.table.tombstone(d.i)) continue;
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
        this.stats.divergedDeltas++;
        this.log.info({ node: this.route, session: d.i.slice(0, 6), version: held, from: from.route }, 'delta from another write of the version held: fetching the full copy');
        this.repair(d.i, from.id);
        continue;
      }
      if (decision === 'stale') {
        this.stats.staleRejected++;
        this.log.debug({ node: this.route, session: d.i.slice(0, 6), held, delta: d.v }, 'stale delta rejected');
        continue;
      }
      if (decision === 'gap') {
        this.stats.gapsBuffered++;
        for (const base of this.reorder.add(d, from.id, now)) this.repair(base, from.id);
        this.scheduleGapCheck();
        continue;
      }
      s = this.drainBuffered(this.applyInOrder(s, d, now), now);
      this.afterReplicaChange(s);
    }
  }

  private applyInOrder(s: Session | undefined, d: SessionDelta, now: number): Session {
    const created = !s;
    if (!s) {
      s = new Session({ base: d.i, route: d.r, version: 0, createdAt: d.c ?? 0, maxInactiveMs: d.m ?? this.config.maxInactiveMs, now }, this.limits);
    }
    const wasOwner = s.route === this.route;
    s.applyDelta(d);
    s.lastAccess = now;
    this.table.set(s);
    this.stats.deltasApplied++;
    if (wasOwner && s.route !== this.route) {
      this.log.info({ node: this.route, session: d.i.slice(0, 6), newOwner: s.route }, 'session taken over by another node');
      this.holders.forget(s.base);
    }
    if (this.config.replicaEvents) {
      if (created) this.emit('created', { id: s.id, replica: true });
      this.emitChanges(s, d, true);
    }
    return s;
  }

  /** Applies the buffered deltas that now continue `s`; one made from another write asks the owner for its copy. */
  private drainBuffered(s: Session, now: number): Session {
    for (const next of this.reorder.takeApplicable(s.base, s.version)) {
      if (!chainsOnto(s.tag, next)) {
        this.stats.divergedDeltas++;
        const owner = this.holders.member(next.r);
        if (owner) this.repair(s.base, owner.id);
        break;
      }
      s = this.applyInOrder(s, next, now);
    }
    return s;
  }

  /** Backup mode: a node that is no longer a holder drops its copy. */
  private afterReplicaChange(s: Session): void {
    if (this.config.mode === 'backup' && !this.holders.shouldHold(s.base, s.route)) {
      this.table.remove(s.base);
      this.reorder.drop(s.base);
    }
  }

  /** Installs a copy that wins over the one held (newer, or the winner of a same-version conflict: convergence.ts). */
  private installCopy(snap: SessionSnapshot, from?: MemberView): boolean {
    if (this.table.tombstone(snap.i)) return false;
    const now = this.clock.now();
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
      s = Session.fromSnapshot(snap, this.limits, now);
      this.table.set(s);
    }
    s.lastAccess = now;
    this.stats.copiesInstalled++;
    if (created && this.config.replicaEvents) this.emit('created', { id: s.id, replica: true });
    this.drainBuffered(s, now);
    return true;
  }

  /** A held copy is about to be replaced: count and log a lost same-version write, and a lost ownership. */
  private noteReplaced(s: Session, snap: SessionSnapshot, verdict: ReturnType<typeof copyVerdict>, from: MemberView | undefined): void {
    if (verdict === 'conflict-won') {
      this.stats.conflictsResolved++;
      this.log.warn(
        { node: this.route, session: s.base.slice(0, 6), version: s.version, kept: snap.r, discarded: s.route, from: from?.route },
        `session ${s.base.slice(0, 6)}… was written on both sides of a partition at version ${s.version}: the write owned by ${snap.r} wins, the one owned by ${s.route} is discarded`,
      );
    }
    if (s.route === this.route && snap.r !== this.route) {
      this.log.info({ node: this.route, session: s.base.slice(0, 6), newOwner: snap.r, version: snap.v }, 'session owned by another node now (a winning copy arrived)');
      this.holders.forget(s.base);
    }
  }

  private onCopy(_from: MemberView, payload: JsonValue): void {
    for (const raw of field<JsonValue[]>(payload, 's', Topic.Copy, isArray)) {
      const snap = asSnapshot(raw, Topic.Copy);
      this.installCopy(snap, _from);
    }
  }

  private onAccess(payload: JsonValue): void {
    const now = this.clock.now();
    for (const [base] of field<JsonValue[]>(payload, 'a', Topic.Access, isArray) as unknown as VersionPair[]) {
      const s = this.table.get(base);
      if (s && s.route !== this.route) s.lastAccess = now;
    }
  }

  private onDestroy(payload: JsonValue): void {
    for (const [base, v, invalidated] of field<JsonValue[]>(payload, 'x', Topic.Destroy, isArray) as unknown as Array<[string, number, number?]>) {
      this.buryLocal(base, v, invalidated === 0 ? 'expired' : 'invalidated', true);
    }
  }

  private onDrop(payload: JsonValue): void {
    for (const base of field<JsonValue[]>(payload, 'x', Topic.Drop, isArray) as unknown as string[]) {
      const s = this.table.get(base);
      if (s && s.route !== this.route) {
        this.table.remove(base);
        this.reorder.drop(base);
      }
    }
  }

  // ---------------------------------------------------------------- handoff (handoff.ts)

  /** A peer is leaving gracefully: place no more copies on it; in backup mode re-create the backups it held now, while it still answers. */
  private onLeaving(from: MemberView): void {
    this.holders.markDeparting(from.id);
    this.log.info({ node: this.route, member: from.route }, `${from.route} is leaving: handing its sessions over`);
    if (this.config.mode === 'backup' && this.state !== ManagerState.Closed) this.scheduleRereplication();
  }

  /** What handoff.ts works on: this node's table and placement, and the few steps that stay the manager's. */
  private handoffHost(): HandoffHost {
    return {
      route: this.route,
      channel: this.channel,
      clock: this.clock,
      table: this.table,
      holders: this.holders,
      locked: this.handoffLocked,
      accepting: () => this.state === ManagerState.Running || this.state === ManagerState.Starting,
      applyDelta: (d) => {
        const now = this.clock.now();
        return this.drainBuffered(this.applyInOrder(this.table.get(d.i), d, now), now);
      },
      install: (snap) => this.installCopy(snap),
      adopted: (s, previousId) => {
        this.stats.handoffsReceived++;
        this.emit('takenOver', { id: s.id, previousId, replica: false });
      },
      handed: (base) => void this.pendingAccess.delete(base),
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
      digest: () => tableDigest(this.table),
      bury: (b, v) => {
        if (!this.table.tombstone(b)) this.buryLocal(b, v, 'invalidated', true);
      },
      shouldHold: (b, r) => this.holders.shouldHold(b, r),
      placesOn: (b, r, p) => this.config.mode === 'all-to-all' || this.holders.placesOn(b, r, p),
      confirm: (b) => {
        const s = this.table.get(b);
        // An extra copy (backup mode: placed elsewhere now) is not kept alive: it expires by the replica rule.
        if (s && s.route !== this.route && this.holders.shouldHold(b, s.route)) s.lastAccess = this.clock.now();
      },
      install: (snap, from) => {
        if (!this.installCopy(snap, from)) return false;
        const s = this.table.get(snap.i);
        if (s) this.afterReplicaChange(s);
        return true;
      },
      get: (b) => this.table.get(b),
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

  // ---------------------------------------------------------------- timers

  private aeTimer: TimerHandle | undefined;
  private aeRunning = false;

  /**
   * Safety net besides the `back` event: every antiEntropyIntervalMs, one
   * random peer's digest is compared (what a lost message or a missed
   * membership event left behind converges).
   */
  private scheduleAntiEntropy(): void {
    const every = this.config.antiEntropyIntervalMs;
    if (every <= 0 || this.state === ManagerState.Closed) return;
    this.aeTimer = this.clock.setTimeout(() => {
      const peers = this.channel.members();
      if (!this.aeRunning && peers.length > 0 && this.state === ManagerState.Running) {
        const peer = peers[Math.floor((this.opts.random ?? systemRandom)() * peers.length)]!;
        this.aeRunning = true;
        this.antiEntropy(peer)
          .catch((err: unknown) => this.log.warn({ node: this.route, member: peer.route, err: String(err) }, 'periodic anti-entropy failed'))
          .finally(() => {
            this.aeRunning = false;
          });
      }
      this.scheduleAntiEntropy();
    }, every);
    this.aeTimer.unref?.();
  }

  private scheduleSweep(): void {
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweep();
      if (this.state !== ManagerState.Closed) this.scheduleSweep();
    }, this.config.sweepIntervalMs);
    this.sweepTimer.unref?.();
  }

  /** Expires idle sessions (owner rule or replica rule), purges tombstones and idle cursors. */
  sweep(): void {
    const now = this.clock.now();
    for (const s of [...this.table.values()]) {
      if (s.route === this.route) {
        if (isExpired(s, 'owner', now, this.config)) this.expireOwned(s);
      } else if (isExpired(s, 'replica', now, this.config)) {
        this.table.remove(s.base);
        this.reorder.drop(s.base);
        this.holders.forget(s.base);
        this.stats.expired++;
        if (this.config.replicaEvents) this.emit('destroyed', { id: s.id, replica: true, reason: 'expired' });
      }
    }
    this.table.purgeTombstones(now - this.config.tombstoneTtlMs, now);
    this.server.purge(now);
  }

  private expireOwned(s: Session): void {
    const v = s.version + 1;
    const holders = this.holders.holdersOf(s.base, s.route);
    this.buryLocal(s.base, v, 'expired', false);
    this.stats.expired++;
    for (const m of holders) this.fireAndForget(this.channel.send(m.id, Topic.Destroy, { x: [[s.base, v, 0]] }), m.id);
  }

  private buryLocal(base: string, v: number, reason: 'invalidated' | 'expired', replica: boolean): void {
    // An invalidation must outlive the copies a partition may have kept elsewhere (replica rule: maxInactive + grace).
    const keep = reason === 'invalidated' ? (this.table.get(base)?.maxInactiveMs ?? this.config.maxInactiveMs) + this.config.graceMs : 0;
    const s = this.table.bury(base, v, this.clock.now(), keep);
    this.reorder.drop(base);
    this.holders.forget(base);
    this.pendingAccess.delete(base);
    if (s) {
      s.markInvalid();
      if (!replica || this.config.replicaEvents) this.emit('destroyed', { id: s.id, replica, reason });
    }
  }

  private scheduleFlush(): void {
    if (this.flushTimer) return;
    this.flushTimer = this.clock.setTimeout(() => {
      this.flushTimer = undefined;
      this.flushAccess();
    }, this.config.flushIntervalMs);
    this.flushTimer.unref?.();
  }

  /** Sends the batched access notifications to the holders. */
  flushAccess(): void {
    if (this.pendingAccess.size === 0) return;
    const byMember = new Map<string, JsonValue[]>();
    for (const [base, v] of this.pendingAccess) {
      const s = this.table.get(base);
      if (!s) continue;
      for (const m of this.holders.holdersOf(s.base, s.route)) {
        let l = byMember.get(m.id);
        if (!l) byMember.set(m.id, (l = []));
        l.push([base, v]);
      }
    }
    this.pendingAccess.clear();
    for (const [id, a] of byMember) this.fireAndForget(this.channel.send(id, Topic.Access, { a }), id);
  }

  private scheduleGapCheck(): void {
    if (this.gapTimer) return;
    this.gapTimer = this.clock.setTimeout(() => {
      this.gapTimer = undefined;
      const now = this.clock.now();
      for (const [base, from] of this.reorder.expired(now)) {
        if (this.reorder.postpone(base, now) > MAX_REPAIR_ATTEMPTS) {
          // The sender is gone or keeps failing: forget the buffered deltas; anti-entropy or a take-over will fetch a copy.
          this.reorder.drop(base);
          this.log.warn({ node: this.route, session: base.slice(0, 6) }, 'gap repair abandoned');
          continue;
        }
        this.repair(base, from);
      }
      if (this.reorder.size > 0) this.scheduleGapCheck();
    }, this.config.gapTimeoutMs);
    this.gapTimer.unref?.();
  }

  /** Gap not filled in time: ask the sender for a full copy. */
  private repair(base: string, fromId: string): void {
    this.stats.gapRepairs++;
    this.channel
      .request(fromId, Topic.Get, { i: [base] }, { timeoutMs: this.config.syncTimeoutMs })
      .then((reply) => {
        const tombs = field<JsonValue[]>(reply, 't', Topic.Get, isArray) as unknown as VersionPair[];
        for (const [b, v] of tombs) this.buryLocal(b, v, 'invalidated', true);
        for (const raw of field<JsonValue[]>(reply, 's', Topic.Get, isArray)) this.installCopy(asSnapshot(raw, Topic.Get));
        const s = this.table.get(base);
        if (s) this.drainBuffered(s, this.clock.now());
      })
      .catch((err: unknown) => this.log.warn({ node: this.route, session: base.slice(0, 6), err: String(err) }, 'gap repair failed'));
  }

  private fireAndForget(p: Promise<unknown>, to: string): void {
    p.catch((err: unknown) => {
      this.stats.sendFailures++;
      this.log.warn({ node: this.route, to, err: String(err) }, 'replication send failed');
    });
  }

  private emitChanges(s: Session, d: SessionDelta, replica: boolean): void {
    if (this.listenerCount('attributeChanged') === 0) return;
    for (const name of Object.keys(d.s ?? {})) this.emit('attributeChanged', { id: s.id, name, replica });
    for (const name of d.d ?? []) this.emit('attributeChanged', { id: s.id, name, replica });
  }
}
