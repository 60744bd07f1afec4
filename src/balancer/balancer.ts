import { EventEmitter } from 'node:events';
import { hcheckSchema, type BalancerSpec, type HcheckSpec, type MemberSpec } from '../config/balancer-schema.js';

const HCHECK_DEFAULTS: HcheckSpec = hcheckSchema.parse({});
import type { Clock, Random } from '../util/clock.js';
import { Member, MemberFlag, MemberHealth, type MemberSettingChange, type MemberTransition } from './member.js';
import type { LbMethod, LbContext } from './methods/method.js';
import type { MethodRegistry } from './methods/index.js';
import { decide, type Decision, type PickInput } from './picker.js';
import { RetryBudget } from './retry-budget.js';
import type { Outcome } from './outcome.js';
import { parseStickyNames, type StickyNames } from './sticky.js';

/** A queued request waiting for a member slot. */
interface Waiter {
  readonly input: PickInput;
  readonly resolve: (d: Decision) => void;
  timer: unknown;
  done: boolean;
}

/**
 * Watches slot use (`--workers N`: a worker's engine runs each member on a lease
 * of its max and renews it from these calls). Undefined in a single engine.
 */
export interface SlotWatcher {
  /** A request took a slot of `member` (busy already counts it). */
  acquired(member: Member): void;
  /** A request freed a slot of `member`. */
  released(member: Member): void;
  /** A request waits in the queue: every candidate is at its max. */
  queued(): void;
}

export interface BalancerEvents {
  transition: [MemberTransition & { balancer: string }];
  /** A member setting or flag changed (manager, reload, discovery): one event per change. */
  setting: [MemberSettingChange & { balancer: string }];
  change: [{ balancer: string; what: string }];
}

/**
 * One balancer (httpd's `balancer://name`): its members, its method and the
 * state that spans requests (wait queue, retry budget, outlier ejection).
 * The proxy asks it for decisions and reports outcomes; the manager changes
 * members through it. Sockets live elsewhere.
 */
export class Balancer extends EventEmitter<BalancerEvents> {
  readonly name: string;
  members: Member[] = [];
  method!: LbMethod;
  sticky!: StickyNames;
  nofailover!: boolean;
  maxattempts!: number;
  timeoutMs!: number;
  maxqueue!: number;
  failonstatus!: Set<number>;
  forcerecovery!: boolean;
  slowstartMs!: number;
  outlier!: BalancerSpec['outlier'];
  hcheck!: HcheckSpec | false;
  readonly retryBudget: RetryBudget;
  private readonly queue: Waiter[] = [];
  /** Counts requests answered 503 because nothing could serve them. */
  unavailable = 0;
  queueTimeouts = 0;
  /** Set by a worker engine (`--workers N`); undefined in a single engine. */
  slotWatcher: SlotWatcher | undefined;
  /** `--workers N`, in the state owner: requests waiting in the workers' queues (their last report). */
  queuedElsewhere = 0;

  constructor(
    spec: BalancerSpec,
    private readonly methods: MethodRegistry,
    private readonly clock: Clock,
    private readonly random: Random,
  ) {
    super();
    this.name = spec.name;
    this.applySettings(spec);
    this.retryBudget = new RetryBudget(spec.retrybudget.percent, spec.retrybudget.min);
    for (const m of spec.members) this.addMember(m);
  }

  /** The balancer-wide settings of a spec (not its members). */
  private applySettings(spec: BalancerSpec): void {
    this.method = this.methods.get(spec.method);
    this.sticky = parseStickyNames(spec.stickysession, spec.stickysessionsep);
    this.nofailover = spec.nofailover;
    this.maxattempts = spec.maxattempts;
    this.timeoutMs = spec.timeout * 1000;
    this.maxqueue = spec.maxqueue;
    this.failonstatus = new Set(spec.failonstatus);
    this.forcerecovery = spec.forcerecovery;
    this.slowstartMs = spec.slowstart * 1000;
    this.outlier = spec.outlier;
    this.hcheck = spec.hcheck;
  }

  /** The balancer-wide settings as httpd's manager shows them. */
  settings() {
    return {
      method: this.method.name,
      stickysession: `${this.sticky.cookie}|${this.sticky.param}`,
      stickysessionsep: this.sticky.sep,
      nofailover: this.nofailover,
      maxattempts: this.maxattempts,
      timeout: this.timeoutMs / 1000,
      forcerecovery: this.forcerecovery,
    };
  }

  /** Applies a reloaded spec, keeping the runtime state of members whose URL and route are unchanged. */
  reconfigure(spec: BalancerSpec): void {
    this.applySettings(spec);
    const old = new Map(this.members.map((m) => [`${m.key} ${m.route}`, m]));
    const next: Member[] = [];
    for (const ms of spec.members) {
      const fresh = this.newMember(ms);
      const kept = old.get(`${fresh.key} ${fresh.route}`);
      if (kept) {
        kept.configure({ loadfactor: fresh.loadfactor, max: fresh.max, retryMs: fresh.retryMs, lbset: fresh.lbset }, 'reload');
        kept.hcheck = fresh.hcheck;
        // Re-enabled by the reload: ramps up (slow start), as for the manager.
        kept.replaceFlags(fresh.flags, 'reload', this.clock.now());
        next.push(kept);
      } else {
        // A member added by a reload ramps up like one added at run time (slow start).
        fresh.recoveredAt = this.clock.now();
        next.push(fresh);
      }
    }
    this.members = next;
    this.emit('change', { balancer: this.name, what: 'reconfigured' });
    this.drainQueue();
  }

  /** The health-check settings for one member: its own over the balancer's (or over the defaults); false = not checked. */
  hcheckFor(m: Member): HcheckSpec | false {
    if (m.hcheck === false) return false;
    if (m.hcheck === undefined) return this.hcheck;
    const base = this.hcheck === false ? HCHECK_DEFAULTS : this.hcheck;
    const own = Object.fromEntries(Object.entries(m.hcheck).filter(([, v]) => v !== undefined));
    return { ...base, ...own };
  }

  get ctx(): LbContext {
    return { now: this.clock.now(), random: this.random, slowstartMs: this.slowstartMs };
  }

  findMember(route: string): Member | undefined {
    return this.members.find((m) => m.route === route);
  }

  private newMember(spec: MemberSpec): Member {
    return new Member(spec, (t) => this.emit('transition', { ...t, balancer: this.name }), (c) => this.emit('setting', { ...c, balancer: this.name }));
  }

  addMember(spec: MemberSpec): Member {
    const m = this.newMember(spec);
    if (this.members.some((x) => x.route === m.route)) throw new Error(`balancer ${this.name} already has a member with route "${m.route}"`);
    // A new member starts with slow start so it is not flooded.
    m.recoveredAt = this.clock.now();
    // Start its lbstatus level with the others so it doesn't take a burst.
    this.members.push(m);
    this.emit('change', { balancer: this.name, what: `member ${m.route} added` });
    this.drainQueue();
    return m;
  }

  removeMember(route: string): boolean {
    const i = this.members.findIndex((m) => m.route === route);
    if (i < 0) return false;
    this.members.splice(i, 1);
    this.emit('change', { balancer: this.name, what: `member ${route} removed` });
    return true;
  }

  /**
   * Ends a member's `retry` wait early (the error probe saw it answer): one 'change', so every view of the
   * member (the workers' copies, the fleet, the dashboard) learns it, and queued requests may go to it.
   */
  endRetryWait(member: Member, now: number): boolean {
    if (!member.endRetryWait(now)) return false;
    this.emit('change', { balancer: this.name, what: `member ${member.route} answered the error probe` });
    this.drainQueue();
    return true;
  }

  setFlag(member: Member, flag: MemberFlag, on: boolean, source = 'manager'): void {
    if (!member.setFlag(flag, on, source, this.clock.now())) return;
    this.emit('change', { balancer: this.name, what: `member ${member.route} ${on ? '+' : '-'}${flag}` });
    this.drainQueue();
  }

  /** Synchronous decision for one attempt. */
  pick(input: PickInput): Decision {
    return decide(this.members, input, this, this.method, this.ctx);
  }

  /**
   * A decision, waiting in the bounded queue up to `timeout` when every
   * candidate is at `max`. Never waits when timeout is 0.
   */
  acquire(input: PickInput): Decision | Promise<Decision> {
    const d = this.pick(input);
    if (d.kind !== 'queue') return this.settle(d);
    if (this.timeoutMs <= 0 || this.queue.length >= this.maxqueue) {
      this.unavailable++;
      return { kind: 'fail', detail: `${d.detail}${this.timeoutMs <= 0 ? ' (timeout 0: no queueing)' : ' and the queue is full'}` };
    }
    return new Promise<Decision>((resolve) => {
      const w: Waiter = { input, resolve, timer: undefined, done: false };
      w.timer = this.clock.setTimeout(() => {
        if (w.done) return;
        w.done = true;
        const i = this.queue.indexOf(w);
        if (i >= 0) this.queue.splice(i, 1);
        this.queueTimeouts++;
        this.unavailable++;
        resolve({ kind: 'fail', detail: `${d.detail}; waited ${this.timeoutMs} ms for a free slot` });
      }, this.timeoutMs);
      this.queue.push(w);
      this.slotWatcher?.queued();
    });
  }

  private settle(d: Decision): Decision {
    if (d.kind === 'pick') {
      if (d.reason === 'forcerecovery') {
        // Try every member in error again at once (httpd's forcerecovery).
        for (const m of this.members) if (m.health === MemberHealth.Error || m.health === MemberHealth.Ejected) m.outUntil = 0;
      }
      d.member.busy++;
      this.slotWatcher?.acquired(d.member);
    } else if (d.kind === 'fail') this.unavailable++;
    return d;
  }

  get queued(): number {
    return this.queue.length + this.queuedElsewhere;
  }

  /** Requests waiting in this engine's own queue (a worker engine's share, without queuedElsewhere). */
  get waiting(): number {
    return this.queue.length;
  }

  /** A request to `member` finished (successfully or not): free its slot. */
  release(member: Member): void {
    member.busy--;
    this.slotWatcher?.released(member);
    if (this.queue.length > 0) this.drainQueue();
  }

  /** Serves waiting requests that can now be picked (public for a worker engine whose lease grew). */
  drainQueue(): void {
    while (this.queue.length > 0) {
      const w = this.queue[0]!;
      const d = this.pick(w.input);
      if (d.kind === 'queue') return;
      this.queue.shift();
      w.done = true;
      this.clock.clearTimeout(w.timer as never);
      w.resolve(this.settle(d));
    }
  }

  /**
   * The one port through which the proxy tells the balancer what happened on
   * a member (`at`: the monotonic time it happened, when the caller read it already). Returns true for a `response` whose status counts as a member
   * failure (failonstatus); false otherwise.
   */
  report(member: Member, outcome: Outcome, at?: number): boolean {
    switch (outcome.kind) {
      case 'dispatched':
        member.counters.requests++;
        member.counters.bytesOut += outcome.bytesOut;
        member.transferred += outcome.bytesOut;
        return false;
      case 'response': {
        const now = at ?? this.clock.now();
        member.recordLatency(outcome.latencyMs, now);
        return this.observeStatus(member, outcome.status, now, Date.now());
      }
      case 'failed': {
        const now = this.clock.now();
        const f = outcome.failure;
        member.counters.errors++;
        if (f.marksDown) member.markError(f.source, `${f.code}: ${f.message}`, now, Date.now());
        this.release(member);
        return false;
      }
      case 'retried':
        member.counters.retries++;
        return false;
      case 'finished':
        member.counters.bytesIn += outcome.bytesIn;
        member.counters.bytesOut += outcome.bytesOut;
        member.transferred += outcome.bytesIn + outcome.bytesOut;
        this.release(member);
        return false;
    }
  }

  /** A new client request entered this balancer (the retry budget's denominator). */
  requestStarted(now = this.clock.now()): void {
    this.retryBudget.recordRequest(now);
  }

  /** Grants one retry if the retry budget allows it (charging it). */
  grantRetry(): boolean {
    return this.retryBudget.tryRetry(this.clock.now());
  }

  /** Records a response status for outlier detection and failonstatus. Returns true when the status counts as a member failure. */
  observeStatus(member: Member, status: number, now: number, wall: number): boolean {
    if (this.failonstatus.has(status)) {
      member.markError('status', `answered ${status} (failonstatus)`, now, wall);
      return true;
    }
    if (status >= 500 && this.outlier !== false) {
      member.markReachable(now, wall);
      member.consecutive5xx++;
      if (member.consecutive5xx >= this.outlier.consecutive5xx && member.health === MemberHealth.Ok) {
        const ejected = this.members.filter((m) => m.health === MemberHealth.Ejected && now < m.outUntil).length;
        const allowed = Math.floor((this.members.length * this.outlier.maxejectpercent) / 100);
        if (ejected < allowed) {
          member.eject(this.outlier.ejecttime * 1000 * (member.ejections + 1), `${member.consecutive5xx} consecutive 5xx`, now, wall);
          member.consecutive5xx = 0;
        }
      }
      return false;
    }
    member.markSuccess(now, wall);
    return false;
  }

  snapshot() {
    const now = this.clock.now();
    return {
      name: this.name,
      ...this.settings(),
      queued: this.queue.length,
      unavailable: this.unavailable,
      members: this.members.map((m) => m.snapshot(now)),
    };
  }
}
