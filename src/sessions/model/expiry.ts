/**
 * Expiry without synchronized clocks. Each node measures idle time on its
 * own monotonic clock; only durations travel, never timestamps.
 *  - The owner expires a session after `maxInactiveMs` without access and
 *    tells the holders (authoritative destroy).
 *  - The owner tells holders about accesses that changed nothing at most
 *    every `accessNotifyMs` per session, so a holder hears of a live session
 *    at least that often.
 *  - A replica (or a copy whose owner is gone) expires only after
 *    `maxInactiveMs + graceMs` without any news; graceMs exceeds the access
 *    notification period plus transit, so a session live on its owner never
 *    expires on a replica while the two can talk.
 */

export interface ExpiryPolicy {
  /** ms; extra time a replica waits beyond maxInactive before dropping a copy. */
  readonly graceMs: number;
  /** ms; the owner re-announces an access at most this often per session. */
  readonly accessNotifyMs: number;
}

export interface ExpiryView {
  readonly lastAccess: number;
  readonly maxInactiveMs: number;
  readonly accessNotifiedAt: number;
}

export type ExpiryRole = 'owner' | 'replica';

export function isExpired(s: ExpiryView, role: ExpiryRole, now: number, policy: ExpiryPolicy): boolean {
  const idle = now - s.lastAccess;
  return role === 'owner' ? idle > s.maxInactiveMs : idle > s.maxInactiveMs + policy.graceMs;
}

/** Whether an access (without changes) must be announced to the holders now. */
export function shouldNotifyAccess(s: ExpiryView, now: number, policy: ExpiryPolicy): boolean {
  return now - s.accessNotifiedAt >= Math.min(policy.accessNotifyMs, s.maxInactiveMs / 2);
}
