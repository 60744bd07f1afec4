/**
 * Errors of the Redis backend, with stable codes (docs/errors.md), and the
 * one pure decision about a failed command: retry it (and why) or not.
 */
import { CohortError } from '../../errors.js';

export const RedisErrorCode = {
  /** The configured client package (`redis` or `ioredis`) is not installed. */
  ClientMissing: 'COHORT_REDIS_CLIENT_MISSING',
  /** No connection to Redis (refused, closed, timed out), still after retrying for `retryWindowMs`. */
  Unavailable: 'COHORT_REDIS_UNAVAILABLE',
  /** A commit reached the master but fewer than `waitReplicas` replicas acknowledged it within `waitTimeoutMs`. */
  NotReplicated: 'COHORT_REDIS_NOT_REPLICATED',
  /** Redis answered with an error that is not worth retrying (or kept answering a retryable one past `retryWindowMs`). */
  CommandFailed: 'COHORT_REDIS_COMMAND_FAILED',
  /** Redis refused the credentials (WRONGPASS, NOAUTH, NOPERM): not retried. */
  AuthFailed: 'COHORT_REDIS_AUTH_FAILED',
  /** `passwordFile` cannot be read or is empty. */
  PasswordFile: 'COHORT_REDIS_PASSWORD_FILE',
} as const;
export type RedisErrorCode = (typeof RedisErrorCode)[keyof typeof RedisErrorCode];

export class RedisError extends CohortError {
  constructor(code: RedisErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'RedisError';
  }
}

/** Why a failed command may succeed if sent again; the label of the retry metric. */
export type RetryReason = 'readonly' | 'loading' | 'cluster-down' | 'try-again' | 'redirect' | 'master-down' | 'connection';

/**
 * The failure's retry reason, or undefined when retrying cannot help (a
 * script error, WRONGTYPE, NOAUTH, a NotReplicated WAIT: the write happened).
 *
 * - READONLY: a client still on a demoted master after a failover;
 * - LOADING / MASTERDOWN: a restarted server or a replica without its master;
 * - CLUSTERDOWN / TRYAGAIN / MOVED / ASK (past the client's own redirects): resharding or failover in a cluster;
 * - connection errors: refused, reset, closed, timed out (the client reconnects meanwhile).
 */
export function retryReason(err: unknown): RetryReason | undefined {
  if (err instanceof RedisError) return err.code === RedisErrorCode.Unavailable ? 'connection' : undefined;
  const e = err as { message?: unknown; code?: unknown; name?: unknown } | undefined;
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  if (/^READONLY\b/.test(msg)) return 'readonly';
  if (/^LOADING\b/.test(msg)) return 'loading';
  if (/^MASTERDOWN\b/.test(msg)) return 'master-down';
  if (/^CLUSTERDOWN\b/.test(msg)) return 'cluster-down';
  if (/^TRYAGAIN\b/.test(msg)) return 'try-again';
  if (/^(MOVED|ASK)\b/.test(msg)) return 'redirect';
  if (isConnectionError(err)) return 'connection';
  return undefined;
}

/** Socket-level failures of either client (no answer from Redis at all). */
export function isConnectionError(err: unknown): boolean {
  const e = err as { message?: unknown; code?: unknown; name?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (/^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENOTCONN|ECONNABORTED)$/.test(code)) return true;
  // node-redis error classes (some keep name 'Error': the class tells), ioredis's MaxRetriesPerRequestError
  const names = [typeof e?.name === 'string' ? e.name : '', errorClassName(err)];
  if (names.some((n) => /^(ConnectionTimeoutError|SocketClosedUnexpectedlyError|ClientClosedError|ClientOfflineError|TimeoutError|ReconnectStrategyError|RootNodesUnavailableError|MaxRetriesPerRequestError)$/.test(n))) return true;
  const msg = typeof e?.message === 'string' ? e.message : '';
  return /ECONNREFUSED|ECONNRESET|Connection is closed|Socket closed unexpectedly|The client is closed|Command timed out|Timeout|Stream isn't writeable|Failed to refresh slots cache|None of the sentinels are available|All sentinels are unreachable|Cluster isn't ready|connect ETIMEDOUT/i.test(msg);
}

/** The error's class name (node-redis's TimeoutError has name 'Error' and an empty message). */
export function errorClassName(err: unknown): string {
  const c = (err as { constructor?: { name?: unknown } } | undefined)?.constructor?.name;
  return typeof c === 'string' ? c : '';
}

/** A one-line description of a client's error, never empty. */
export function describeError(err: unknown): string {
  const msg = String((err as Error | undefined)?.message ?? err);
  const cls = errorClassName(err);
  return msg === '' ? cls || 'unknown error' : msg;
}

/** Redis refused the credentials or the user's permissions. */
export function isAuthError(err: unknown): boolean {
  return /^(WRONGPASS|NOAUTH|NOPERM)\b|invalid password|invalid username-password/i.test(describeError(err));
}
