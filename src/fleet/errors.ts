import { CohortError } from '../errors.js';

/**
 * Why a balancer refused another's state change (codes in docs/errors.md):
 * COHORT_FLEET_INVALID (not a well-formed change), COHORT_FLEET_FORGED (the
 * sender is not a balancer, claims another's change as its own, or stamps an
 * impossible version), COHORT_FLEET_STALE (older than what the register holds).
 */
export class FleetError extends CohortError {
  constructor(code: 'COHORT_FLEET_INVALID' | 'COHORT_FLEET_FORGED' | 'COHORT_FLEET_STALE', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'FleetError';
  }
}
