import type { IncomingMessage } from 'node:http';
import type { Principal } from './auth.js';
import { safeEqual } from './auth.js';
import { ManagerError } from './errors.js';

/**
 * CSRF defences for every state-changing request, in two independent layers:
 * 1. Cross-origin requests are refused: `Sec-Fetch-Site` must be
 *    `same-origin` or `none` when sent, and `Origin`, when sent, must equal
 *    the manager's own origin (scheme://Host) or one of `manager.origins`. Another port on the same host
 *    (the balanced application itself) is a different origin and is refused.
 * 2. A nonce: the principal's CSRF token must come back in the form field
 *    `csrf` or the `X-CSRF-Token` header (bearer tokens excepted: no browser
 *    sends them by itself).
 */
export function checkSameOrigin(req: IncomingMessage, scheme: 'http' | 'https', extraOrigins: readonly string[] = []): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new ManagerError('COHORT_MANAGER_CROSS_ORIGIN', `cross-origin request refused (Sec-Fetch-Site: ${site})`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    const expected = `${scheme}://${req.headers.host ?? ''}`.toLowerCase();
    const o = origin.toLowerCase();
    if (o !== expected && !extraOrigins.some((x) => x.toLowerCase() === o)) throw new ManagerError('COHORT_MANAGER_CROSS_ORIGIN', `cross-origin request refused (Origin: ${origin})`);
  }
}

/** Checks the nonce a change carries against the principal's. */
export function checkNonce(principal: Principal, supplied: string | undefined): void {
  if (principal.csrf === undefined) return;
  if (supplied === undefined || supplied === '' || !safeEqual(supplied, principal.csrf)) {
    throw new ManagerError('COHORT_MANAGER_CSRF', 'missing or wrong CSRF nonce (send the X-CSRF-Token header or the csrf form field; GET the page or /api/session for it)');
  }
}
