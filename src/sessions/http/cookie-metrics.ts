/**
 * What became of the Cohort session cookies requests presented, as a Prometheus counter read from a counts
 * object at scrape time: `cohort_session_cookies_rejected_total{reason="malformed|unknown"}`. A rejected
 * cookie never fails the request: it gets a new session. The registry is the caller's.
 */
import { Counter, type Registry } from 'prom-client';

/** `malformed`: not a Cohort id (`<base64url>[.<route>]`); `unknown`: well-formed, but no such session (expired, destroyed, never existed). */
export type SessionCookieOutcome = 'malformed' | 'unknown';

export type SessionCookieCounts = Record<SessionCookieOutcome, number>;

export const newSessionCookieCounts = (): SessionCookieCounts => ({ malformed: 0, unknown: 0 });

export const SESSION_COOKIES_METRIC = 'cohort_session_cookies_rejected_total';

export function registerSessionCookieMetric(registry: Registry, counts: SessionCookieCounts): void {
  new Counter({
    name: SESSION_COOKIES_METRIC,
    help: 'Session cookies (or ;jsessionid= parameters) that named no session, by reason (malformed, unknown); each request got a new session.',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const r of Object.keys(counts) as SessionCookieOutcome[]) this.inc({ reason: r }, counts[r]);
    },
  });
}
