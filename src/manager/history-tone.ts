/**
 * What a dashboard history entry means for the operator, so the page can
 * colour it: a node becoming ready or a member recovering is good news, a
 * failure bad, a suspicion or a node not ready yet a warning, the rest
 * (operator changes, a graceful leave, a node joining) neutral. Pure.
 */

export type HistoryTone = 'good' | 'bad' | 'warn' | 'info';

/** Balancer member health (MemberHealth values) after a transition. */
const MEMBER_TONES: Record<string, HistoryTone> = { ok: 'good', error: 'bad', 'check-failed': 'bad', ejected: 'bad' };

/** A balancer member's transition, by the health it went to. */
export function memberTransitionTone(to: string): HistoryTone {
  return MEMBER_TONES[to] ?? 'info';
}

/**
 * A cluster history entry, by what happened (the text after "route: ", as the
 * cluster source writes it: `ready`, `not ready`, `added`, `back`,
 * `suspected (…)`, `gone (left)`, `gone (no answer …)`).
 */
export function clusterEventTone(what: string): HistoryTone {
  if (what === 'ready' || what === 'back') return 'good';
  if (what === 'not ready' || what.startsWith('suspected')) return 'warn';
  if (what === 'gone (left)') return 'info';
  if (what.startsWith('gone')) return 'bad';
  return 'info';
}
