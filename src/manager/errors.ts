import { CohortError } from '../errors.js';

/**
 * Manager error codes (listed in docs/manager.md, "Error codes"). Each maps
 * to one HTTP status so that the page, the JSON API and logs agree.
 */
export const MANAGER_ERRORS = {
  COHORT_MANAGER_UNAUTHENTICATED: 401,
  COHORT_MANAGER_CSRF: 403,
  COHORT_MANAGER_CROSS_ORIGIN: 403,
  COHORT_MANAGER_NOT_FOUND: 404,
  COHORT_MANAGER_METHOD: 405,
  COHORT_MANAGER_CONFLICT: 409,
  COHORT_MANAGER_TOO_LARGE: 413,
  COHORT_MANAGER_UNSUPPORTED_MEDIA: 415,
  COHORT_MANAGER_INVALID: 422,
  COHORT_MANAGER_RATE_LIMITED: 429,
  COHORT_MANAGER_STATE_UNREADABLE: 500,
  COHORT_MANAGER_PERSIST_FAILED: 500,
  COHORT_MANAGER_INTERNAL: 500,
} as const;

export type ManagerErrorCode = keyof typeof MANAGER_ERRORS;

/** An error the manager answers with a stable code and its HTTP status. */
export class ManagerError extends CohortError {
  readonly status: number;
  constructor(code: ManagerErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ManagerError';
    this.status = MANAGER_ERRORS[code];
  }
}
