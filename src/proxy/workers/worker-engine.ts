/**
 * One worker engine of `cohort balancer --workers N`: a BalancerServer whose
 * listeners are shared through node:cluster (the primary accepts and hands
 * connections round-robin), without health checks, manager or cluster join
 * (those run once, in the state owner). Its members run on leases of their
 * `max` (lease-holder.ts); their settings, flags and health come from the
 * owner (shared-state.ts); health changes it sees on requests go to the owner.
 */
import type { Logger } from 'pino';
import type { BalancerConfig } from '../../config/balancer-schema.js';
import type { Balancer, SlotWatcher } from '../../balancer/balancer.js';
import { MemberHealth, type Member, type MemberCounters } from '../../balancer/member.js';
import { LeaseHolder, type HolderMessage } from '../../balancer/workers/lease-holder.js';
import { blockSize } from '../../balancer/workers/lease-ledger.js';
import { applyBalancer, exportMember, type SharedBalancer } from '../../balancer/workers/shared-state.js';
import { BalancerServer, type BalancerServerOptions } from '../balancer-server.js';
import type { FinishedExchange } from '../forward.js';
import { leaseKey, packFinished, shareOf, LEASE_WAIT_MS, MAX_FINISHED_PER_FLUSH, STATS_INTERVAL_MS, type MemberStats, type ToOwner, type ToWorker } from './messages.js';
import { systemClock } from '../../util/clock.js';

/** What a worker engine needs from its process: how to talk to the owner and how to read the config again. */
export interface WorkerPort {
  send(m: ToOwner): void;
  /** The configuration as the owner reads it (the file again on reload). */
  loadConfig(): BalancerConfig;
  /** The engine could not start (e.g. a listen error): the process exits. */
  fatal(err: Error): void;
}

/** The config a worker engine runs: no manager, no cluster join (the owner's). */
function engineConfig(cfg: BalancerConfig): BalancerConfig {
  const { cluster: _cluster, manager: _manager, ...rest } = cfg;
  return rest as BalancerConfig;
}

export class WorkerEngine {
  readonly server: BalancerServer;
  private readonly holders = new Map<string, LeaseHolder>();
  private readonly watched = new WeakSet<Balancer>();
  private state: readonly SharedBalancer[] = [];
  private index = 0;
  private count = 1;
  private started: Promise<void> | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private readonly sent = new Map<Member, MemberCounters>();
  private readonly sentBalancer = new Map<Balancer, [number, number]>();
  private finished: FinishedExchange[] = [];
  private draining: Promise<void> | undefined;
  /** The retry deadline (outUntil) last shared for each member out of service: a failed trial extends it without a transition. */
  private readonly sharedOut = new WeakMap<Member, number>();

  constructor(
    cfg: BalancerConfig,
    private readonly port: WorkerPort,
    private readonly log: Logger,
    options: BalancerServerOptions,
  ) {
    const wantsFinished = cfg.manager !== undefined && cfg.manager !== false;
    this.server = new BalancerServer(engineConfig(cfg), {
      ...options,
      log,
      healthChecks: false,
      ...(wantsFinished ? { onFinish: (e: FinishedExchange) => { if (this.finished.length < MAX_FINISHED_PER_FLUSH) this.finished.push(e); } } : {}),
    });
    this.watchBalancers();
  }

  /** Says hello to the owner; listening starts once its first state arrived. */
  begin(): void {
    this.port.send({ t: 'up' });
  }

  handle(m: ToWorker): void {
    switch (m.t) {
      case 'hello':
        this.index = m.index;
        this.count = m.count;
        this.applyQueueShares();
        return;
      case 'state':
        this.state = m.balancers;
        this.applyState();
        if (this.started === undefined) this.started = this.start().catch((err: Error) => this.port.fatal(err));
        return;
      case 'grant': {
        const h = this.holder(m.key);
        h.granted(m.n);
        this.syncMax(m.key);
        return;
      }
      case 'recall': {
        const found = this.memberOf(m.key);
        const h = this.holder(m.key);
        this.sendHolder(m.key, h.recalled(m.target, found?.member.busy ?? 0));
        this.syncMax(m.key);
        if (found) this.askAgain(found.balancer, found.member);
        return;
      }
      case 'spare': {
        const found = this.memberOf(m.key);
        this.sendHolder(m.key, this.holder(m.key).spare(found?.member.busy ?? 0));
        this.syncMax(m.key);
        if (found) this.askAgain(found.balancer, found.member);
        return;
      }
      case 'reload':
        void this.reload();
        return;
      case 'drain':
        void this.drain();
        return;
    }
  }

  private async start(): Promise<void> {
    const addrs = await this.server.start();
    this.statsTimer = setInterval(() => {
      this.tickLeases();
      this.sendStats();
    }, STATS_INTERVAL_MS);
    this.statsTimer.unref();
    this.port.send({ t: 'ready', urls: addrs.map((a) => a.url) });
  }

  private async reload(): Promise<void> {
    try {
      await this.server.reload(engineConfig(this.port.loadConfig()));
    } catch (err) {
      this.log.error({ err }, 'worker reload failed; keeping the previous configuration');
      return;
    }
    this.watchBalancers();
    this.applyQueueShares();
    // A reload resets each member's max to the config's: the engine runs on its lease.
    this.applyState();
  }

  /** Graceful stop: the server drains, then the last counters go to the owner. */
  drain(): Promise<void> {
    this.draining ??= (async () => {
      await this.server.close();
      clearInterval(this.statsTimer);
      this.sendStats();
    })();
    return this.draining;
  }

  private watchBalancers(): void {
    for (const b of this.server.balancers.values()) {
      if (this.watched.has(b)) continue;
      this.watched.add(b);
      b.slotWatcher = this.watcher(b);
      // A reload (or a member added) sets members' max from the config, synchronously: back to the leases
      // before any request is picked.
      b.on('change', () => this.fit(b));
      // A health change seen on a request (error, trial success, ejection) is shared through the owner.
      // The event fires inside the move, before e.g. markError sets outUntil: export once the move is complete.
      b.on('transition', (t) => {
        queueMicrotask(() => {
          const m = b.findMember(t.member);
          if (m) this.shareHealth(b, m);
        });
      });
    }
  }

  private watcher(b: Balancer): SlotWatcher {
    return {
      acquired: (m) => {
        // Requests still wait once this one took the last slot (a grant served part of a queue): the want
        // says so, and how many, or the owner would not ask other workers to spare for them.
        if (this.waitsOn(b, m)) return this.askAgain(b, m);
        const key = leaseKey(b.name, m.route);
        this.sendHolder(key, this.holder(key).acquired(m.busy));
      },
      released: (m) => {
        const key = leaseKey(b.name, m.route);
        const h = this.holder(key);
        this.sendHolder(key, h.released(m.busy));
        m.max = h.held;
        this.askAgain(b, m);
        // A failed trial keeps the member in error with a later deadline, without a transition event.
        if (m.health !== MemberHealth.Ok && m.outUntil !== this.sharedOut.get(m)) this.shareHealth(b, m);
      },
      queued: () => {
        const now = systemClock.now();
        for (const m of b.members) this.askAgain(b, m, now);
      },
    };
  }

  /**
   * After any lease event: while requests wait in this engine and the member's lease is used up, a want is
   * pending — a recall that ended, slots spared or given back, a want the owner could not take (e.g. sent
   * before it knew this worker) would otherwise leave them waiting with no message in flight until their
   * queue timeout (the model in test/balancer/leases.test.ts asks after every event, as here). The holder
   * sends nothing while a want or a recall is already pending.
   */
  private askAgain(b: Balancer, m: Member, now = systemClock.now()): void {
    if (!this.waitsOn(b, m, now)) return;
    const key = leaseKey(b.name, m.route);
    this.sendHolder(key, this.holder(key).acquired(m.busy, true, this.need(b, now)));
  }

  /** Requests wait in this engine and could go to `m`, whose lease is used up. */
  private waitsOn(b: Balancer, m: Member, now?: number): boolean {
    // The clock only when requests wait: `acquired` asks this on every request.
    return b.waiting > 0 && m.full && m.usable(now ?? systemClock.now());
  }

  /**
   * Slots to ask each full member for: the waiting requests spread over the members they could go to (an
   * over-ask is bounded by what is free, and the tick gives back what stays unused).
   */
  private need(b: Balancer, now: number): number {
    let full = 0;
    for (const x of b.members) if (x.full && x.usable(now)) full++;
    return Math.ceil(b.waiting / Math.max(1, full));
  }

  private shareHealth(b: Balancer, m: Member): void {
    this.sharedOut.set(m, m.outUntil);
    this.port.send({ t: 'health', balancer: b.name, member: exportMember(m, systemClock.now()) });
  }

  private holder(key: string): LeaseHolder {
    let h = this.holders.get(key);
    if (h === undefined) {
      h = new LeaseHolder(1);
      this.holders.set(key, h);
    }
    return h;
  }

  private sendHolder(key: string, msg: HolderMessage | undefined): void {
    if (msg === undefined) return;
    if (msg.kind === 'want') this.port.send({ t: 'want', key, n: msg.n, waiting: msg.waiting });
    else if (msg.kind === 'withdraw') this.port.send({ t: 'withdraw', key });
    else this.port.send({ t: 'return', key, n: msg.n });
  }

  private memberOf(key: string): { balancer: Balancer; member: Member } | undefined {
    const nl = key.indexOf('\n');
    const b = this.server.balancers.get(key.slice(0, nl));
    const member = b?.findMember(key.slice(nl + 1));
    return b && member ? { balancer: b, member } : undefined;
  }

  /** The member's max in this engine is its lease; a grown lease serves waiting requests. */
  private syncMax(key: string): void {
    const found = this.memberOf(key);
    if (found === undefined) return;
    found.member.max = this.holder(key).held;
    found.balancer.drainQueue();
  }

  private applyState(): void {
    const now = systemClock.now();
    const live = new Set<string>();
    for (const s of this.state) {
      // Leases of a balancer this worker has not loaded yet (a reload on its way) are kept for it.
      for (const sm of s.members) live.add(leaseKey(s.name, sm.route));
      const b = this.server.balancers.get(s.name);
      if (b === undefined) continue;
      applyBalancer(b, s, now);
      for (const m of b.members) this.sharedOut.set(m, m.outUntil);
      for (const sm of s.members) {
        const key = leaseKey(s.name, sm.route);
        const h = this.holder(key);
        h.block = blockSize(sm.max, this.count);
        b.findMember(sm.route)!.max = h.held;
      }
      b.drainQueue();
    }
    for (const key of this.holders.keys()) if (!live.has(key)) this.holders.delete(key);
  }

  private applyQueueShares(): void {
    for (const b of this.server.balancers.values()) this.fit(b);
  }

  /**
   * Fits a balancer to this worker (after construction, a reload, a member added): each member's max is its
   * lease; the queue is this worker's share of maxqueue; with `timeout: 0` (no queueing) a request whose
   * worker's lease is used up still waits up to LEASE_WAIT_MS for the owner to lease more, since other workers
   * may hold free slots (a single engine answers 503 at once, knowing every slot).
   */
  private fit(b: Balancer): void {
    for (const m of b.members) m.max = this.holders.get(leaseKey(b.name, m.route))?.held ?? 0;
    const spec = this.server.currentConfig.balancers.find((x) => x.name === b.name);
    if (spec === undefined) return;
    b.maxqueue = shareOf(spec.maxqueue, this.index, this.count);
    if (spec.timeout <= 0) b.timeoutMs = LEASE_WAIT_MS;
  }

  /** Gives back leased slots that stayed unused over the last interval. */
  private tickLeases(): void {
    for (const [key, h] of this.holders) {
      const found = this.memberOf(key);
      if (found === undefined) continue;
      if (!this.waitsOn(found.balancer, found.member)) this.sendHolder(key, h.withdraw());
      this.sendHolder(key, h.tick(found.member.busy));
      found.member.max = h.held;
      this.askAgain(found.balancer, found.member);
    }
  }

  /** Counter deltas since the last stats (the owner adds them to its members), busy counts, finished exchanges. */
  private sendStats(): void {
    const members: Record<string, Record<string, MemberStats>> = {};
    const balancers: Record<string, readonly [number, number, number]> = {};
    for (const b of this.server.balancers.values()) {
      const per: Record<string, MemberStats> = {};
      for (const m of b.members) {
        const c = m.counters;
        const last = this.sent.get(m) ?? { requests: 0, errors: 0, bytesOut: 0, bytesIn: 0, retries: 0 };
        per[m.route] = { requests: c.requests - last.requests, errors: c.errors - last.errors, bytesOut: c.bytesOut - last.bytesOut, bytesIn: c.bytesIn - last.bytesIn, retries: c.retries - last.retries, busy: m.busy };
        this.sent.set(m, { ...c });
      }
      members[b.name] = per;
      const lastB = this.sentBalancer.get(b) ?? [0, 0];
      balancers[b.name] = [b.unavailable - lastB[0], b.queueTimeouts - lastB[1], b.queued];
      this.sentBalancer.set(b, [b.unavailable, b.queueTimeouts]);
    }
    const finished = this.finished;
    this.finished = [];
    this.port.send({ t: 'stats', members, balancers, finished: packFinished(finished) });
  }
}
