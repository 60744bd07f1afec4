/**
 * The member state that every worker engine shares with the state owner
 * (`--workers N`): what a member is (URL, route, weights, flags, max) and its
 * health (error, ejection, check failure, slow start). The owner exports it on
 * every change — rare events: a health transition, a manager or reload change,
 * a member added or removed — and each worker applies it to its own members.
 *
 * Times cross processes as durations (`outForMs`, `recoveredAgoMs`), because
 * each process's monotonic clock has its own origin.
 */
import type { Balancer } from '../balancer.js';
import { Member, MemberFlag, MemberHealth, type MemberReason } from '../member.js';

export interface SharedMember {
  readonly url: string;
  readonly route: string;
  readonly loadfactor: number;
  readonly lbset: number;
  /** The member's global max (a worker's engine runs on its lease instead). */
  readonly max: number;
  readonly retryMs: number;
  readonly flags: readonly MemberFlag[];
  readonly health: MemberHealth;
  readonly reason: MemberReason | undefined;
  readonly lastError: MemberReason | undefined;
  /** ms until an Error/Ejected member may be tried again (0: now). */
  readonly outForMs: number;
  /** ms since it became usable again (slow start); null: never out. */
  readonly recoveredAgoMs: number | null;
  readonly ejections: number;
}

export interface SharedBalancer {
  readonly name: string;
  readonly members: readonly SharedMember[];
}

export function exportMember(m: Member, now: number): SharedMember {
  return {
    url: m.url.href,
    route: m.route,
    loadfactor: m.loadfactor,
    lbset: m.lbset,
    max: m.max,
    retryMs: m.retryMs,
    flags: [...m.flags],
    health: m.health,
    reason: m.reason,
    lastError: m.lastError,
    outForMs: Math.max(0, m.outUntil - now),
    recoveredAgoMs: Number.isFinite(m.recoveredAt) ? now - m.recoveredAt : null,
    ejections: m.ejections,
  };
}

export function exportBalancer(b: Balancer, now: number): SharedBalancer {
  return { name: b.name, members: b.members.map((m) => exportMember(m, now)) };
}

/** Sets a member's health fields from shared state (no events: the owner already logged the change). */
function applyHealth(m: Member, s: SharedMember, now: number): void {
  m.health = s.health;
  m.reason = s.reason;
  m.lastError = s.lastError;
  m.outUntil = s.outForMs > 0 ? now + s.outForMs : 0;
  m.recoveredAt = s.recoveredAgoMs === null ? Number.NEGATIVE_INFINITY : now - s.recoveredAgoMs;
  m.ejections = s.ejections;
}

/**
 * A worker applies the owner's state of one balancer: adds and removes
 * members, copies settings, flags and health. `max` is left to the caller
 * (the worker's lease). Returns the members that were added.
 */
export function applyBalancer(b: Balancer, state: SharedBalancer, now: number): Member[] {
  const added: Member[] = [];
  const wanted = new Set(state.members.map((s) => s.route));
  for (const m of [...b.members]) if (!wanted.has(m.route)) b.removeMember(m.route);
  for (const s of state.members) {
    let m = b.findMember(s.route);
    if (m !== undefined && m.url.href !== s.url) {
      b.removeMember(s.route);
      m = undefined;
    }
    if (m === undefined) {
      m = b.addMember({ url: s.url, route: s.route, loadfactor: s.loadfactor, max: 0 + s.max, retry: s.retryMs / 1000, lbset: s.lbset, status: [] });
      added.push(m);
    }
    m.loadfactor = s.loadfactor;
    m.lbset = s.lbset;
    m.retryMs = s.retryMs;
    m.flags.clear();
    for (const f of s.flags) m.flags.add(f);
    applyHealth(m, s, now);
  }
  // Keep the owner's order (the picker's tie-breaks follow it).
  b.members.sort((x, y) => state.members.findIndex((s) => s.route === x.route) - state.members.findIndex((s) => s.route === y.route));
  return added;
}

/**
 * The owner adopts a health change a worker saw on a request (error,
 * recovery on trial, ejection): sets the fields and emits the balancer's
 * `transition` event (logs, manager history). Returns whether anything changed.
 */
export function adoptHealth(b: Balancer, s: SharedMember, now: number): boolean {
  const m = b.findMember(s.route);
  if (m === undefined || m.url.href !== s.url) return false;
  const from = m.health;
  if (from === s.health && Math.abs(m.outUntil - (s.outForMs > 0 ? now + s.outForMs : 0)) < 1) return false;
  // A check failure is the owner's own verdict (health checks run only there): a worker's request outcome doesn't override it.
  if (from === MemberHealth.CheckFailed) return false;
  applyHealth(m, s, now);
  if (from !== s.health) {
    const reason = s.reason ?? { source: 'request', message: 'request succeeded', since: now, sinceWall: Date.now() };
    b.emit('transition', { balancer: b.name, member: m.route, from, to: s.health, reason });
  }
  return true;
}
