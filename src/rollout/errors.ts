import { CohortError } from '../errors.js';

/** Codes of `cohort rollout` (docs/errors.md, docs/rollout.md). */
export type RolloutErrorCode =
  | 'COHORT_ROLLOUT_USAGE'
  | 'COHORT_ROLLOUT_NOT_READY'
  | 'COHORT_ROLLOUT_COMMAND'
  | 'COHORT_ROLLOUT_MANAGER';

export class RolloutError extends CohortError {
  constructor(code: RolloutErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'RolloutError';
  }
}
