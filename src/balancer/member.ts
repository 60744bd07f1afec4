import type { MemberHcheck, MemberSpec } from '../config/balancer-schema.js';

/**
 * One balancer member (an app node) and everything the balancer knows about it.
 * This is the single model that the picker, the proxy, the manager page, the
 * JSON API and /metrics read. Mutations go through the methods below so that
 * every state change is recorded with its reason.
 *
 * Times are monotonic milliseconds from the injected Clock.
 */

/** Administrative flags an operator sets (httpd: D, N, H, I, S). */
export enum MemberFlag {
  Disabled = 'disabled',
  Drain = 'drain',
  HotStandby = 'hot-standby',
  IgnoreErrors = 'ignore-errors',
  Stopped = 'stopped',
}

/** Health as the balancer sees it. */
export enum MemberHealth {
  Ok = 'ok',
  /** Failed a request (connect error, timeout, failonstatus); out for `retry`. */
  Error = 'error',
  /** Failed `fall` active health checks in a row; out until `rise` passes. */
  CheckFailed = 'check-failed',
  /** Ejected by outlier detection (consecutive 5xx). */
  Ejected = 'ejected',
}

export interface MemberReason {
  /** What put it there: 'connect', 'timeout', 'reset', 'status', 'hcheck', 'outlier', 'operator', ... */
  readonly source: string;
  readonly message: string;
  /** Monotonic ms. */
  readonly since: number;
  /** Wall-clock ms (for display). */
  readonly sinceWall: number;
}

export interface MemberTransition {
  readonly member: string;
  readonly from: MemberHealth;
  readonly to: MemberHealth;
  readonly reason: MemberReason;
}

export type TransitionListener = (t: MemberTransition) => void;

/** Counters shown by the manager and exported to /metrics. */
export interface MemberCounters {
  requests: number;
  errors: number;
  /** Bytes received from clients and sent to this member. */
  bytesOut: number;
  /** Bytes received from this member and sent to clients. */
  bytesIn: number;
  retries: number;
}

const EWMA_ALPHA = 0.3;

export class Member {
  /** Route id (jvmRoute); defaults to the member's name. */
  route: string;
  readonly url: URL;
  /** Stable key: the URL's origin. */
  readonly key: string;
  loadfactor: number;
  max: number;
  /** ms a member stays in error before it's tried again. */
  retryMs: number;
  lbset: number;
  /** Its own health-check settings over the balancer's (`false`: never checked); undefined = the balancer's. */
  hcheck: MemberHcheck | undefined;
  readonly flags = new Set<MemberFlag>();

  health: MemberHealth = MemberHealth.Ok;
  /** Why it is not Ok (kept after recovery as `lastError`). */
  reason: MemberReason | undefined;
  lastError: MemberReason | undefined;
  /** Monotonic ms until which an Error/Ejected member is skipped. */
  outUntil = 0;
  /** Monotonic ms at which the member last became usable after being out (slow start). */
  recoveredAt = Number.NEGATIVE_INFINITY;

  /** Active health check streaks. */
  checkPasses = 0;
  checkFails = 0;
  lastCheck: { readonly ok: boolean; readonly at: number; readonly detail: string } | undefined;

  /** Outlier detection. */
  consecutive5xx = 0;
  ejections = 0;

  /** Balancing state. */
  lbstatus = 0;
  busy = 0;
  /** Bytes moved either way, for bytraffic. */
  transferred = 0;
  /** Smoothed response-head latency in ms; undefined until measured. */
  latencyEwma: number | undefined;
  /** Monotonic ms of the last latency sample. */
  latencyAt = 0;

  readonly counters: MemberCounters = { requests: 0, errors: 0, bytesOut: 0, bytesIn: 0, retries: 0 };

  private readonly onTransition: TransitionListener | undefined;

  constructor(spec: MemberSpec, onTransition?: TransitionListener) {
    this.url = new URL(spec.url);
    this.key = this.url.origin;
    this.route = spec.route ?? this.url.host;
    this.loadfactor = spec.loadfactor;
    this.max = spec.max;
    this.retryMs = spec.retry * 1000;
    this.lbset = spec.lbset;
    this.hcheck = spec.hcheck;
    for (const s of spec.status) this.flags.add(s as MemberFlag);
    this.onTransition = onTransition;
  }

  /** Administratively excluded from all traffic (disabled or stopped). */
  get administrativelyOut(): boolean {
    return this.flags.has(MemberFlag.Disabled) || this.flags.has(MemberFlag.Stopped);
  }

  /**
   * May this member take a request now? Error and Ejected members come back
   * once their time is up (the next request is their trial); CheckFailed
   * members come back only by passing health checks.
   */
  usable(now: number): boolean {
    if (this.administrativelyOut) return false;
    switch (this.health) {
      case MemberHealth.Ok:
        return true;
      case MemberHealth.CheckFailed:
        return false;
      default:
        return now >= this.outUntil;
    }
  }

  /** True when the member is at its concurrency limit. */
  get full(): boolean {
    return this.busy >= this.max;
  }

  /**
   * Weight with slow start applied: a member that just came back ramps from
   * 10% to its full loadfactor over `slowstartMs`.
   */
  effectiveWeight(now: number, slowstartMs: number): number {
    const since = now - this.recoveredAt;
    if (slowstartMs <= 0 || since >= slowstartMs) return this.loadfactor;
    return Math.max(this.loadfactor * 0.1, (this.loadfactor * Math.max(0, since)) / slowstartMs);
  }

  private transition(to: MemberHealth, reason: MemberReason): void {
    const from = this.health;
    this.health = to;
    if (to === MemberHealth.Ok) {
      this.lastError = this.reason ?? this.lastError;
      this.reason = undefined;
    } else {
      this.reason = reason;
      this.lastError = reason;
    }
    if (from !== to) this.onTransition?.({ member: this.route, from, to, reason });
  }

  /** A request to it failed in a way that says the member is down. */
  markError(source: string, message: string, now: number, wall: number): void {
    if (this.flags.has(MemberFlag.IgnoreErrors)) {
      this.lastError = { source, message, since: now, sinceWall: wall };
      return;
    }
    this.outUntil = now + this.retryMs;
    // With health checks on, coming back takes `rise` passes counted from this failure,
    // not passes banked before it (else a member that resets every request flaps back at once).
    this.checkPasses = 0;
    this.transition(MemberHealth.Error, { source, message, since: now, sinceWall: wall });
  }

  /** A request succeeded: an Error/Ejected member on trial is Ok again. */
  markSuccess(now: number, wall: number): void {
    this.consecutive5xx = 0;
    this.markReachable(now, wall);
  }

  /** The member answered (any status): a member in Error on trial is Ok again. Ejection stands until it expires. */
  markReachable(now: number, wall: number): void {
    if (this.health === MemberHealth.Ejected && now < this.outUntil) return;
    if (this.health === MemberHealth.Error || this.health === MemberHealth.Ejected) {
      this.recoveredAt = now;
      this.transition(MemberHealth.Ok, { source: 'request', message: 'request succeeded', since: now, sinceWall: wall });
    }
  }

  eject(durationMs: number, message: string, now: number, wall: number): void {
    this.ejections++;
    this.outUntil = now + durationMs;
    this.transition(MemberHealth.Ejected, { source: 'outlier', message, since: now, sinceWall: wall });
  }

  /** Records an active health-check result; returns true when the health changed. */
  recordCheck(ok: boolean, detail: string, rise: number, fall: number, now: number, wall: number): boolean {
    this.lastCheck = { ok, at: wall, detail };
    if (ok) {
      this.checkFails = 0;
      this.checkPasses++;
      if (this.health !== MemberHealth.Ok && this.checkPasses >= rise) {
        this.recoveredAt = now;
        this.outUntil = 0;
        this.transition(MemberHealth.Ok, { source: 'hcheck', message: `passed ${this.checkPasses} check(s)`, since: now, sinceWall: wall });
        return true;
      }
      return false;
    }
    this.checkPasses = 0;
    this.checkFails++;
    if (this.health !== MemberHealth.CheckFailed && this.checkFails >= fall) {
      this.transition(MemberHealth.CheckFailed, { source: 'hcheck', message: `failed ${this.checkFails} check(s): ${detail}`, since: now, sinceWall: wall });
      return true;
    }
    return false;
  }

  /** An operator cleared the error state (manager "reset"). */
  resetHealth(now: number, wall: number): void {
    this.outUntil = 0;
    this.checkFails = 0;
    this.transition(MemberHealth.Ok, { source: 'operator', message: 'reset by operator', since: now, sinceWall: wall });
  }

  recordLatency(ms: number, now = 0): void {
    this.latencyAt = now;
    this.latencyEwma = this.latencyEwma === undefined ? ms : this.latencyEwma + EWMA_ALPHA * (ms - this.latencyEwma);
  }

  /** httpd-style status letters: Ok, D, S, N, H, I, E, C, ejected → E. */
  statusFlags(now: number): string {
    let s = '';
    if (this.flags.has(MemberFlag.Disabled)) s += 'D';
    if (this.flags.has(MemberFlag.Stopped)) s += 'S';
    if (this.flags.has(MemberFlag.Drain)) s += 'N';
    if (this.flags.has(MemberFlag.HotStandby)) s += 'H';
    if (this.flags.has(MemberFlag.IgnoreErrors)) s += 'I';
    if (this.health === MemberHealth.Error || this.health === MemberHealth.Ejected) s += now >= this.outUntil ? 'E(retry)' : 'E';
    if (this.health === MemberHealth.CheckFailed) s += 'C';
    return s === '' ? 'Ok' : s;
  }

  /** A plain snapshot for the manager, the JSON API and logs. */
  snapshot(now: number) {
    return {
      route: this.route,
      url: this.url.href,
      loadfactor: this.loadfactor,
      lbset: this.lbset,
      max: this.max,
      retry: this.retryMs / 1000,
      status: [...this.flags],
      flags: this.statusFlags(now),
      health: this.health,
      usable: this.usable(now),
      reason: this.reason,
      lastError: this.lastError,
      outForMs: this.health !== MemberHealth.Ok && this.health !== MemberHealth.CheckFailed ? Math.max(0, this.outUntil - now) : 0,
      lastCheck: this.lastCheck,
      busy: this.busy,
      latencyMs: this.latencyEwma,
      ...this.counters,
    };
  }
}

export type MemberSnapshot = ReturnType<Member['snapshot']>;
