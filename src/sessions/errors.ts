import { CohortError } from '../errors.js';

/**
 * Stable codes of the session layer. Every code is listed in docs/sessions.md.
 */
export const SessionErrorCode = {
  /** A function, symbol, BigInt, undefined in an array, non-finite number, non-plain object or cycle was assigned. */
  Unserializable: 'COHORT_SESSION_UNSERIALIZABLE',
  /** An attribute or the whole session is larger than the configured limit. */
  TooLarge: 'COHORT_SESSION_TOO_LARGE',
  /** The session was invalidated; it can no longer be used. */
  Invalidated: 'COHORT_SESSION_INVALIDATED',
  /** A synchronous commit was acknowledged by no peer although peers should hold a copy. */
  ReplicationFailed: 'COHORT_SESSION_REPLICATION_FAILED',
  /** State transfer did not finish within `transferTimeoutMs`. */
  TransferTimeout: 'COHORT_SESSION_TRANSFER_TIMEOUT',
  /** A malformed session id (cookie or path parameter). */
  BadId: 'COHORT_SESSION_BAD_ID',
  /** A replication message that does not have the expected shape. */
  BadMessage: 'COHORT_SESSION_BAD_MESSAGE',
  /** The Redis/Valkey backend failed. */
  StoreFailed: 'COHORT_SESSION_STORE_FAILED',
  /** The manager was used before start() or after close(). */
  NotRunning: 'COHORT_SESSION_NOT_RUNNING',
  /** A commit on a leaving node of a session whose ownership it handed (or is handing) over. */
  HandedOff: 'COHORT_SESSION_HANDED_OFF',
  /** A graceful handoff ended with sessions not handed over (logged; they are left to take-over). */
  HandoffIncomplete: 'COHORT_SESSION_HANDOFF_INCOMPLETE',
} as const;

export type SessionErrorCode = (typeof SessionErrorCode)[keyof typeof SessionErrorCode];

export class SessionError extends CohortError {
  constructor(code: SessionErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SessionError';
  }
}
