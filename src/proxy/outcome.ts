import type { Failure, FailureSource } from '../balancer/outcome.js';

/**
 * Failure classification and retry safety: pure functions of codes and
 * request facts, tested by tables (test/proxy/outcome.test.ts).
 */

/** Nothing reached the member: always safe to send elsewhere, and the member is down. */
const CONNECT = new Set(['ECONNREFUSED', 'CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTDOWN', 'ECONNABORTED']);
/** The member's connection died under the request: the member is probably down. */
const RESET = new Set(['ECONNRESET', 'EPIPE']);

export interface Classified extends Failure {
  /** Anything of the request may have reached the member (so a retry could repeat its effect). */
  readonly reachedMember: boolean;
  /** The kind of failure another member might not have: worth a retry if retry safety allows. */
  readonly retryable: boolean;
}

/** Classifies an attempt's failure by its code. */
export function classifyFailure(code: string, message: string): Classified {
  const make = (source: FailureSource, marksDown: boolean, retryable: boolean, reachedMember: boolean): Classified =>
    ({ code, message, source, marksDown, retryable, reachedMember });
  if (CONNECT.has(code)) return make('connect', true, true, false);
  if (RESET.has(code)) return make('reset', true, true, true);
  if (code === 'HEADERS_TIMEOUT') return make('timeout', true, true, true);
  if (code === 'BODY_TIMEOUT') return make('timeout', false, false, true);
  if (code === 'COHORT_FAILONSTATUS') return make('status', false, true, true);
  if (code.startsWith('HPE_')) return make('protocol', false, false, true);
  if (code === 'CLIENT_BODY') return make('client', false, false, true);
  if (/CERT|SSL|TLS|SELF_SIGNED|VERIFY|ALTNAME/.test(code)) return make('tls', false, false, false);
  return make('internal', false, false, true);
}

export interface RetryFacts {
  readonly failure: Classified;
  /** Any byte of the response was sent to the client. */
  readonly responseStarted: boolean;
  /** Attempts made so far, this one included. */
  readonly attempts: number;
  readonly maxattempts: number;
  readonly hasBody: boolean;
  /** The body can be sent again (buffered, or not a byte of it read yet). */
  readonly bodyReplayable: boolean;
  readonly idempotent: boolean;
}

/**
 * May the request go to another member? Only when nothing of the response
 * went out, attempts remain, the body can be sent again and — when the
 * failed member may have acted on it — the method is idempotent or there
 * was no body. (The retry budget is the balancer's, asked after this.)
 */
export function retrySafe(f: RetryFacts): boolean {
  if (!f.failure.retryable || f.responseStarted) return false;
  if (f.attempts > f.maxattempts) return false;
  if (!f.bodyReplayable) return false;
  if (f.failure.reachedMember && f.hasBody && !f.idempotent) return false;
  return true;
}

/**
 * A reused keep-alive connection that failed before any response byte, on
 * a request that may be replayed: the member most likely closed it while idle.
 * Sent again once on a fresh connection to the same member, without charging
 * the retry budget or the member's health (a dead member then refuses the
 * fresh connection, and that failure counts).
 */
export function staleReplay(f: { readonly code: string; readonly reused: boolean; readonly responseBytes: number; readonly bodyReplayable: boolean; readonly hasBody: boolean; readonly idempotent: boolean; readonly replayed: boolean }): boolean {
  if (!f.reused || f.replayed || f.responseBytes > 0 || !f.bodyReplayable) return false;
  if (!RESET.has(f.code)) return false;
  return !f.hasBody || f.idempotent;
}

export interface FailureAnswer {
  readonly status: number;
  readonly detail: string;
  readonly retryAfter: boolean;
}

/** What the client is told when an attempt failed before any response byte and no retry follows. */
export function failureAnswer(f: Classified, route: string, status?: number): FailureAnswer {
  if (f.code === 'COHORT_FAILONSTATUS') return { status: 503, detail: `member ${route} answered ${status ?? '?'} (failonstatus) and no retry was possible`, retryAfter: true };
  // Like httpd: a member that could not be reached at all makes the service unavailable, not the gateway broken.
  if (f.code === 'ECONNREFUSED') return { status: 503, detail: `member ${route} could not be reached (${f.code}) and no other member was available`, retryAfter: true };
  if (f.source === 'timeout' || f.code === 'CONNECT_TIMEOUT') return { status: 504, detail: `member ${route} did not answer in time (${f.code})`, retryAfter: false };
  if (f.source === 'client') return { status: 400, detail: 'request body was malformed or incomplete', retryAfter: false };
  return { status: 502, detail: `member ${route} failed: ${f.code}${f.source === 'tls' ? ` (${f.message})` : ''}`, retryAfter: false };
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}
