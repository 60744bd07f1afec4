/**
 * The state owner of `cohort balancer --workers N`: the node:cluster primary.
 * It accepts connections on the shared listeners and hands them to the
 * workers round-robin (node:cluster's default scheduling on Linux), owns the
 * members (a BalancerServer without listeners: health checks run here once,
 * the manager and cluster discovery act here), leases `max` slots to the
 * workers (lease-ledger.ts), broadcasts every member change, and merges the
 * workers' counters for the manager and /metrics.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { BalancerConfig } from '../../config/balancer-schema.js';
import type { Balancer } from '../../balancer/balancer.js';
import { LeaseLedger, type LeaseAction } from '../../balancer/workers/lease-ledger.js';
import { adoptHealth, exportBalancer } from '../../balancer/workers/shared-state.js';
import { BalancerServer, type BalancerServerOptions } from '../balancer-server.js';
import type { FinishedExchange } from '../forward.js';
import { leaseKey, unpackFinished, type ToOwner, type ToWorker } from './messages.js';
import { systemClock } from '../../util/clock.js';

export interface StateOwnerOptions {
  readonly workers: number;
  readonly log: Logger;
  readonly server: BalancerServerOptions;
  /** Per finished exchange a worker reported (the manager's histograms). */
  readonly onFinish?: (e: FinishedExchange) => void;
  /** Once every worker listens: their listening URLs. */
  readonly onReady?: (urls: readonly string[]) => void;
}

/** Exit code of a worker that could not start (the owner then stops instead of forking it again and again). */
const WORKER_START_FAILED = 3;

export class StateOwner {
  readonly server: BalancerServer;
  private readonly ledger: LeaseLedger;
  private readonly workers = new Map<number, Worker>();
  private readonly ready = new Set<number>();
  /** worker id → its index (0..N-1, reused by a replacement). */
  private readonly indexes = new Map<number, number>();
  /** Busy counts per worker: balancer → route → busy. */
  private readonly busy = new Map<number, Record<string, Record<string, { busy: number }>>>();
  /** Queue lengths per worker: balancer → [.., .., queued]. */
  private readonly queued = new Map<number, Record<string, readonly [number, number, number]>>();
  private readonly watched = new WeakSet<Balancer>();
  private broadcastPending = false;
  private stopping = false;
  private readyFired = false;
  private exited: (() => void) | undefined;

  constructor(
    cfg: BalancerConfig,
    private readonly opts: StateOwnerOptions,
  ) {
    this.ledger = new LeaseLedger(opts.workers);
    this.server = new BalancerServer(cfg, { ...opts.server, log: opts.log, listeners: false });
    this.watchBalancers();
  }

  /** Starts health checks and the cluster join, then forks the workers. */
  async start(): Promise<void> {
    await this.server.start();
    this.syncLeases();
    for (let i = 0; i < this.opts.workers; i++) this.fork(i);
  }

  private fork(index: number): void {
    // The worker's index for its log lines (named outside COHORT_*, the prefix of error codes).
    const w = cluster.fork({ cohortWorkerIndex: String(index) });
    this.workers.set(w.id, w);
    this.indexes.set(w.id, index);
    w.on('message', (m: ToOwner) => this.handle(w, m));
    w.on('exit', (code, signal) => {
      this.workers.delete(w.id);
      this.ready.delete(w.id);
      this.busy.delete(w.id);
      this.queued.delete(w.id);
      this.indexes.delete(w.id);
      this.apply(this.ledger.removeWorker(w.id));
      if (this.stopping) {
        if (this.workers.size === 0) this.exited?.();
        return;
      }
      this.opts.log.error({ worker: index, pid: w.process.pid, code, signal }, 'worker engine exited');
      if (code === WORKER_START_FAILED) {
        this.opts.log.error('a worker engine could not start; stopping the balancer');
        void this.close().then(() => process.exit(1));
        return;
      }
      this.fork(index);
    });
  }

  private send(w: Worker | undefined, m: ToWorker): void {
    if (w !== undefined && w.isConnected()) w.send(m);
  }

  private handle(w: Worker, m: ToOwner): void {
    switch (m.t) {
      case 'up':
        this.send(w, { t: 'hello', index: this.indexes.get(w.id) ?? 0, count: this.opts.workers });
        this.send(w, { t: 'state', balancers: this.exportState() });
        this.apply(this.ledger.addWorker(w.id));
        return;
      case 'ready':
        this.ready.add(w.id);
        if (!this.readyFired && this.ready.size === this.opts.workers) {
          this.readyFired = true;
          this.opts.onReady?.(m.urls);
        }
        return;
      case 'want':
        this.opts.log.debug({ worker: this.indexes.get(w.id), key: m.key, n: m.n, waiting: m.waiting }, 'lease wanted');
        this.apply(this.ledger.want(w.id, m.key, m.n, m.waiting));
        return;
      case 'withdraw':
        this.opts.log.debug({ worker: this.indexes.get(w.id), key: m.key }, 'lease want withdrawn');
        this.apply(this.ledger.withdrawn(w.id, m.key));
        return;
      case 'return':
        this.opts.log.debug({ worker: this.indexes.get(w.id), key: m.key, n: m.n }, 'lease returned');
        this.apply(this.ledger.returned(w.id, m.key, m.n));
        return;
      case 'health': {
        const b = this.server.balancers.get(m.balancer);
        if (b && adoptHealth(b, m.member, systemClock.now())) this.scheduleBroadcast();
        return;
      }
      case 'stats':
        this.mergeStats(w.id, m);
        return;
    }
  }

  private apply(actions: readonly LeaseAction[]): void {
    for (const a of actions) {
      const w = this.workers.get(a.worker);
      this.opts.log.debug({ ...a, worker: this.indexes.get(a.worker) }, `lease ${a.kind}`);
      if (a.kind === 'grant') this.send(w, { t: 'grant', key: a.key, n: a.n });
      else if (a.kind === 'recall') this.send(w, { t: 'recall', key: a.key, target: a.target });
      else this.send(w, { t: 'spare', key: a.key });
    }
  }

  private mergeStats(worker: number, m: Extract<ToOwner, { t: 'stats' }>): void {
    for (const [name, per] of Object.entries(m.members)) {
      const b = this.server.balancers.get(name);
      if (b === undefined) continue;
      for (const [route, s] of Object.entries(per)) {
        const member = b.findMember(route);
        if (member === undefined) continue;
        const c = member.counters;
        c.requests += s.requests;
        c.errors += s.errors;
        c.bytesOut += s.bytesOut;
        c.bytesIn += s.bytesIn;
        c.retries += s.retries;
      }
    }
    for (const [name, [unavailable, timeouts]] of Object.entries(m.balancers)) {
      const b = this.server.balancers.get(name);
      if (b === undefined) continue;
      b.unavailable += unavailable;
      b.queueTimeouts += timeouts;
    }
    this.busy.set(worker, m.members);
    this.queued.set(worker, m.balancers);
    for (const b of this.server.balancers.values()) {
      let sum = 0;
      for (const per of this.queued.values()) sum += per[b.name]?.[2] ?? 0;
      b.queuedElsewhere = sum;
    }
    // The owner's busy count is the sum of the workers' (what the manager and /metrics show).
    for (const b of this.server.balancers.values()) {
      for (const member of b.members) {
        let sum = 0;
        for (const per of this.busy.values()) sum += per[b.name]?.[member.route]?.busy ?? 0;
        member.busy = sum;
      }
    }
    if (this.opts.onFinish) unpackFinished(m.finished, this.opts.onFinish);
  }

  private watchBalancers(): void {
    for (const b of this.server.balancers.values()) {
      if (this.watched.has(b)) continue;
      this.watched.add(b);
      b.on('transition', () => this.scheduleBroadcast());
      b.on('setting', () => this.scheduleBroadcast());
      b.on('change', () => this.scheduleBroadcast());
    }
  }

  private exportState() {
    const now = systemClock.now();
    return [...this.server.balancers.values()].map((b) => exportBalancer(b, now));
  }

  private syncLeases(): void {
    const maxes = new Map<string, number>();
    for (const b of this.server.balancers.values()) for (const m of b.members) maxes.set(leaseKey(b.name, m.route), m.max);
    this.apply(this.ledger.sync(maxes));
  }

  /** Changes come in bursts (a reload changes many fields): one broadcast per turn of the event loop. */
  private scheduleBroadcast(): void {
    if (this.broadcastPending) return;
    this.broadcastPending = true;
    setImmediate(() => {
      this.broadcastPending = false;
      this.watchBalancers();
      const balancers = this.exportState();
      for (const w of this.workers.values()) this.send(w, { t: 'state', balancers });
      this.syncLeases();
    });
  }

  /** SIGHUP: the owner reloads, broadcasts the new state, then every worker reloads the same file. */
  async reload(next: BalancerConfig): Promise<void> {
    await this.server.reload(next);
    this.watchBalancers();
    this.scheduleBroadcast();
    await new Promise<void>((r) => setImmediate(r));
    for (const w of this.workers.values()) this.send(w, { t: 'reload' });
  }

  /** Passes a signal on to every worker (SIGUSR2: they reopen their access log files too). */
  signalWorkers(signal: NodeJS.Signals): void {
    for (const w of this.workers.values()) w.process.kill(signal);
  }

  /** SIGTERM: every worker drains its connections and exits; then the owner stops its checks. */
  close(): Promise<void> {
    this.stopping = true;
    const allExited = new Promise<void>((r) => {
      if (this.workers.size === 0) r();
      else this.exited = r;
    });
    for (const w of this.workers.values()) this.send(w, { t: 'drain' });
    const deadline = (this.server.currentConfig.timeouts.shutdown + 5) * 1000;
    const timer = setTimeout(() => {
      for (const w of this.workers.values()) w.process.kill('SIGKILL');
    }, deadline);
    timer.unref();
    return allExited.then(async () => {
      clearTimeout(timer);
      await this.server.close(0);
    });
  }
}

export { WORKER_START_FAILED };
