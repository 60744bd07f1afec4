import type { MemberHcheck, MemberSpec } from '../config/balancer-schema.js';
import { mayMove } from '../util/transitions.js';

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

/** The settings an operator, a reload or discovery changes on a member. */
export interface MemberSettingsChange {
  readonly loadfactor?: number;
  readonly lbset?: number;
  readonly max?: number;
  readonly retryMs?: number;
  readonly route?: string;
}

/** One change of a member setting or flag: what, from, to, and who changed it. */
export interface MemberSettingChange {
  readonly member: string;
  readonly field: 'loadfactor' | 'lbset' | 'max' | 'retry' | 'route' | 'flags';
  readonly from: string | number;
  readonly to: string | number;
  /** 'manager', 'reload', 'discovery', … */
  readonly source: string;
}

export type SettingListener = (c: MemberSettingChange) => void;

/**
 * The member health state machine: for each move, the states it may start
 * from. A move from another state is refused (the state stays), so that e.g.
 * a request failure does not pull a member out of check-failed (only health
 * checks bring it back), and a trial success does not end an ejection early.
 */
export const HEALTH_MOVES = {
  /** A request failed in a way that says the member is down. */
  requestFailed: { from: [MemberHealth.Ok, MemberHealth.Error, MemberHealth.Ejected], to: MemberHealth.Error },
  /** A request to a member in error (on trial) or whose ejection expired succeeded. */
  requestSucceeded: { from: [MemberHealth.Error, MemberHealth.Ejected], to: MemberHealth.Ok },
  /** Outlier detection: consecutive 5xx. */
  ejected: { from: [MemberHealth.Ok], to: MemberHealth.Ejected },
  /** `rise` health checks passed. */
  checksPassed: { from: [MemberHealth.Error, MemberHealth.CheckFailed, MemberHealth.Ejected], to: MemberHealth.Ok },
  /** `fall` health checks failed. */
  checksFailed: { from: [MemberHealth.Ok, MemberHealth.Error, MemberHealth.Ejected], to: MemberHealth.CheckFailed },
  /** The operator's reset (manager): from any state. */
  operatorReset: { from: [], to: MemberHealth.Ok },
} as const satisfies Record<string, { readonly from: readonly MemberHealth[]; readonly to: MemberHealth }>;

export type HealthMove = keyof typeof HEALTH_MOVES;

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
  private readonly onSetting: SettingListener | undefined;

  constructor(spec: MemberSpec, onTransition?: TransitionListener, onSetting?: SettingListener) {
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
    this.onSetting = onSetting;
  }

  /**
   * Changes settings; one event per field that changed. Returns the changes
   * as text ("loadfactor 1 → 3"), empty when nothing changed.
   */
  configure(change: MemberSettingsChange, source: string): string[] {
    const done: string[] = [];
    const set = <K extends keyof MemberSettingsChange>(key: K, field: MemberSettingChange['field'], from: number | string, apply: () => void): void => {
      const to = change[key];
      if (to === undefined || to === from) return;
      const member = this.route;
      apply();
      done.push(`${field} ${from} → ${to}`);
      this.onSetting?.({ member, field, from, to: to as number | string, source });
    };
    set('loadfactor', 'loadfactor', this.loadfactor, () => (this.loadfactor = change.loadfactor!));
    set('lbset', 'lbset', this.lbset, () => (this.lbset = change.lbset!));
    set('max', 'max', this.max, () => (this.max = change.max!));
    set('retryMs', 'retry', this.retryMs, () => (this.retryMs = change.retryMs!));
    set('route', 'route', this.route, () => (this.route = change.route!));
    return done;
  }

  /**
   * Sets or clears one flag; an event when it changed. A member that is no
   * longer disabled or stopped ramps up from `now` (slow start). Returns
   * whether anything changed.
   */
  setFlag(flag: MemberFlag, on: boolean, source: string, now: number): boolean {
    if (this.flags.has(flag) === on) return false;
    return this.replaceFlags(on ? [...this.flags, flag] : [...this.flags].filter((f) => f !== flag), source, now);
  }

  /** Replaces all flags (a reload, saved settings); an event when the set changed. `now` undefined: no slow start. */
  replaceFlags(flags: Iterable<MemberFlag>, source: string, now?: number): boolean {
    const next = new Set(flags);
    const before = [...this.flags].sort().join(',');
    const after = [...next].sort().join(',');
    if (before === after) return false;
    const wasOut = this.administrativelyOut;
    this.flags.clear();
    for (const f of next) this.flags.add(f);
    if (wasOut && !this.administrativelyOut && now !== undefined) this.recoveredAt = now;
    this.onSetting?.({ member: this.route, field: 'flags', from: before, to: after, source });
    return true;
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

  /** Makes a health move if the table allows it from the current state; one event when the state changed. */
  private move(name: HealthMove, reason: MemberReason): boolean {
    const m = HEALTH_MOVES[name];
    if (!mayMove<MemberHealth>(this.health, m.from)) return false;
    this.transition(m.to, reason);
    return true;
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
    // With health checks on, coming back takes `rise` passes counted from this failure,
    // not passes banked before it (else a member that resets every request flaps back at once).
    this.checkPasses = 0;
    const reason = { source, message, since: now, sinceWall: wall };
    if (this.move('requestFailed', reason)) this.outUntil = now + this.retryMs;
    else this.lastError = reason;
  }

  /** A request succeeded: an Error/Ejected member on trial is Ok again. */
  markSuccess(now: number, wall: number): void {
    this.consecutive5xx = 0;
    this.markReachable(now, wall);
  }

  /** The member answered (any status): a member in Error on trial is Ok again. Ejection stands until it expires. */
  markReachable(now: number, wall: number): void {
    // Ok and CheckFailed stay as they are (requestSucceeded moves only Error and Ejected): the common case allocates nothing.
    if (this.health === MemberHealth.Ok || this.health === MemberHealth.CheckFailed) return;
    if (this.health === MemberHealth.Ejected && now < this.outUntil) return;
    if (this.move('requestSucceeded', { source: 'request', message: 'request succeeded', since: now, sinceWall: wall })) this.recoveredAt = now;
  }

  eject(durationMs: number, message: string, now: number, wall: number): void {
    if (!this.move('ejected', { source: 'outlier', message, since: now, sinceWall: wall })) return;
    this.ejections++;
    this.outUntil = now + durationMs;
  }

  /** Records an active health-check result; returns true when the health changed. */
  recordCheck(ok: boolean, detail: string, rise: number, fall: number, now: number, wall: number): boolean {
    this.lastCheck = { ok, at: wall, detail };
    if (ok) {
      this.checkFails = 0;
      this.checkPasses++;
      if (this.checkPasses >= rise && this.move('checksPassed', { source: 'hcheck', message: `passed ${this.checkPasses} check(s)`, since: now, sinceWall: wall })) {
        this.recoveredAt = now;
        this.outUntil = 0;
        return true;
      }
      return false;
    }
    this.checkPasses = 0;
    this.checkFails++;
    if (this.checkFails >= fall && this.move('checksFailed', { source: 'hcheck', message: `failed ${this.checkFails} check(s): ${detail}`, since: now, sinceWall: wall })) return true;
    return false;
  }

  /**
   * The member answered a probe while it waited out `retry` after a failure: the wait ends now, so its next
   * request is the trial (src/balancer/error-probe.ts). False when it was not waiting.
   */
  endRetryWait(now: number): boolean {
    if (this.outUntil <= now) return false;
    this.outUntil = now;
    return true;
  }

  /** An operator cleared the error state (manager "reset"). */
  resetHealth(now: number, wall: number): void {
    this.outUntil = 0;
    this.checkFails = 0;
    this.move('operatorReset', { source: 'operator', message: 'reset by operator', since: now, sinceWall: wall });
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
