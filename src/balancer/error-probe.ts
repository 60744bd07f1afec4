/**
 * Recovery without a health check (HAProxy's fast `downinter` checks, but
 * only while a member is in error): a member that failed a request at the
 * connection level (refused, reset, timed out) is normally out for `retry`
 * seconds (httpd's default 60 s). With no health check configured for it,
 * the balancer probes it every `interval` seconds instead; once `rise`
 * probes in a row pass, its retry time is cut short — it is eligible again
 * and its next request is the trial, as after `retry` (success: Ok, with
 * slow start; failure: out again).
 *
 * A probe is `GET path` (default `/.cohort/health`). It passes when the
 * member answers with a status below 500: a `cohort node` answers 503 until
 * it has its sessions (state transfer) and 200 once ready; any other HTTP
 * server (Tomcat, an app without that path) answers 404, which says it is up.
 * A refused or reset connection, a timeout or a 5xx fails.
 *
 * Pure: the member's state and a clock reading in, a decision out. The timers
 * and sockets are in src/probe/error-prober.ts. Documented in docs/balancer.md.
 */

/** The `errorprobe` settings (seconds). */
export interface ErrorProbeSpec {
  readonly interval: number;
  readonly timeout: number;
  readonly path: string;
  readonly rise: number;
}

export const ERROR_PROBE_DEFAULTS: ErrorProbeSpec = { interval: 1, timeout: 1, path: '/.cohort/health', rise: 1 };

/** Failure sources (Member.reason.source) that say "unreachable", worth probing. An answer (failonstatus) is not. */
export const PROBED_SOURCES: ReadonlySet<string> = new Set(['connect', 'reset', 'timeout']);

/** What the policy reads of a member. */
export interface ProbeSubject {
  readonly health: string;
  readonly reason: { readonly source: string } | undefined;
  /** Monotonic ms until which it is out. */
  readonly outUntil: number;
  readonly administrativelyOut: boolean;
}

export type ProbeOutcome =
  /** Cut the retry time short: eligible now. */
  | { readonly kind: 'recover'; readonly passes: number }
  /** Passed, not `rise` times yet; probe again at `nextAt`. */
  | { readonly kind: 'passed'; readonly passes: number; readonly nextAt: number }
  /** Failed; probe again at `nextAt`. */
  | { readonly kind: 'failed'; readonly nextAt: number }
  /** Nothing to do (no longer in error, or already eligible). */
  | { readonly kind: 'idle' };

interface ProbeState {
  nextAt: number;
  passes: number;
  inFlight: boolean;
  /** The outUntil this state was made for: a new failure starts over. */
  episode: number;
}

/** Whether a probe answer (HTTP status, or undefined for no answer) passes. */
export function probePasses(status: number | undefined): boolean {
  return status !== undefined && status >= 100 && status < 500;
}

export class ErrorProbePolicy<M extends ProbeSubject> {
  private readonly states = new WeakMap<M, ProbeState>();

  constructor(readonly spec: ErrorProbeSpec) {}

  /** Is `m` in an error episode worth probing (out, unreachable, not administratively out)? */
  wanted(m: M, now: number): boolean {
    return !m.administrativelyOut && m.health === 'error' && m.reason !== undefined && PROBED_SOURCES.has(m.reason.source) && now < m.outUntil;
  }

  /** Should a probe of `m` start now? Marks it in flight when so. */
  begin(m: M, now: number): boolean {
    if (!this.wanted(m, now)) {
      this.states.delete(m);
      return false;
    }
    let s = this.states.get(m);
    if (!s || s.episode !== m.outUntil) {
      // a new failure: first probe one interval after it (the member just failed)
      s = { nextAt: now + this.spec.interval * 1000, passes: 0, inFlight: false, episode: m.outUntil };
      this.states.set(m, s);
    }
    if (s.inFlight || now < s.nextAt) return false;
    s.inFlight = true;
    return true;
  }

  /** The result of the probe started by {@link begin}. */
  complete(m: M, status: number | undefined, now: number): ProbeOutcome {
    const s = this.states.get(m);
    if (!s) return { kind: 'idle' };
    s.inFlight = false;
    if (!this.wanted(m, now) || s.episode !== m.outUntil) {
      this.states.delete(m);
      return { kind: 'idle' };
    }
    s.nextAt = now + this.spec.interval * 1000;
    if (!probePasses(status)) {
      s.passes = 0;
      return { kind: 'failed', nextAt: s.nextAt };
    }
    s.passes++;
    if (s.passes >= this.spec.rise) {
      this.states.delete(m);
      return { kind: 'recover', passes: s.passes };
    }
    return { kind: 'passed', passes: s.passes, nextAt: s.nextAt };
  }
}
