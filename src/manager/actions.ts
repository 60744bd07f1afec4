import { z } from 'zod';
import type { Balancer } from '../balancer/balancer.js';
import { MemberFlag, type Member } from '../balancer/member.js';
import { balancerSchema, memberSchema, memberStatusSchema, type MemberHcheck } from '../config/balancer-schema.js';
import type { MethodRegistry } from '../balancer/methods/index.js';
import { parseStickyNames } from '../balancer/sticky.js';
import { formatIssues } from '../config/load.js';
import { ManagerError } from './errors.js';

/**
 * The operator's actions on balancers and members — the one implementation
 * behind the page's forms, the JSON API and the persisted state. Every change
 * goes through the Balancer (setFlag, addMember, removeMember) or ends with a
 * 'change' event, so the picker, health checks and the dashboard see it at
 * once.
 */

const routeSchema = memberSchema.shape.route.unwrap();

/** A change to one member (JSON API body; the form posts map to it). */
export const memberChangeSchema = z.strictObject({
  /** Flags to set (true) or clear (false): disabled, drain, hot-standby, ignore-errors, stopped. */
  status: z.partialRecord(memberStatusSchema, z.boolean()).optional(),
  loadfactor: memberSchema.shape.loadfactor.unwrap().optional(),
  lbset: memberSchema.shape.lbset.unwrap().optional(),
  route: routeSchema.optional(),
  /** Clear the error / ejected / check-failed state now. */
  reset: z.literal(true).optional(),
});
export type MemberChange = z.infer<typeof memberChangeSchema>;

/** A new member (JSON API body): the config file's member keys. */
export const newMemberSchema = memberSchema;

export function parseOrThrow<T>(schema: z.ZodType<T>, raw: unknown): T {
  const r = schema.safeParse(raw);
  if (!r.success) throw new ManagerError('COHORT_MANAGER_INVALID', formatIssues(r.error).join('; '));
  return r.data;
}

export function findBalancer(balancers: ReadonlyMap<string, Balancer>, name: string): Balancer {
  const b = balancers.get(name);
  if (!b) throw new ManagerError('COHORT_MANAGER_NOT_FOUND', `no balancer named "${name}"`);
  return b;
}

export function findMember(b: Balancer, route: string): Member {
  const m = b.findMember(route);
  if (!m) throw new ManagerError('COHORT_MANAGER_NOT_FOUND', `balancer "${b.name}" has no member with route "${route}"`);
  return m;
}

/** Applies a change to a member; validates everything before changing anything. */
export function changeMember(b: Balancer, m: Member, change: MemberChange, now: number, wall: number): Member {
  if (change.route !== undefined && change.route !== m.route && b.findMember(change.route)) {
    throw new ManagerError('COHORT_MANAGER_CONFLICT', `balancer "${b.name}" already has a member with route "${change.route}"`);
  }
  // One event per changed setting (the balancer's 'setting'), then one 'change' for the batch.
  const what = m.configure({
    ...(change.loadfactor !== undefined ? { loadfactor: change.loadfactor } : {}),
    ...(change.lbset !== undefined ? { lbset: change.lbset } : {}),
    ...(change.route !== undefined ? { route: change.route } : {}),
  }, 'manager');
  if (change.reset) m.resetHealth(now, wall);
  if (what.length > 0) b.emit('change', { balancer: b.name, what: `member ${m.route}: ${what.join(', ')}` });
  for (const [flag, on] of Object.entries(change.status ?? {})) {
    if (on === undefined) continue;
    if (m.flags.has(flag as MemberFlag) !== on) b.setFlag(m, flag as MemberFlag, on);
  }
  return m;
}

/** Adds a member from a config-style spec. */
export function addMember(b: Balancer, raw: unknown): Member {
  const spec = parseOrThrow(newMemberSchema, raw);
  const route = spec.route ?? new URL(spec.url).host;
  if (b.findMember(route)) throw new ManagerError('COHORT_MANAGER_CONFLICT', `balancer "${b.name}" already has a member with route "${route}"`);
  return b.addMember(spec);
}

export function removeMember(b: Balancer, route: string): void {
  findMember(b, route);
  b.removeMember(route);
}

/** The operator-settable part of a member, as persisted and as re-applied at start. */
export interface MemberSettings {
  readonly url: string;
  readonly route: string;
  readonly loadfactor: number;
  readonly lbset: number;
  readonly max: number;
  readonly retry: number;
  readonly status: readonly string[];
  readonly hcheck?: MemberHcheck | undefined;
}

export function memberSettings(m: Member): MemberSettings {
  return { url: m.url.href, route: m.route, loadfactor: m.loadfactor, lbset: m.lbset, max: m.max, retry: m.retryMs / 1000, status: [...m.flags], ...(m.hcheck !== undefined ? { hcheck: m.hcheck } : {}) };
}

/** Gives a member saved settings (a 'setting' event per changed field; the caller emits one 'change' for the batch). */
export function setMemberSettings(m: Member, w: MemberSettings): void {
  m.configure({ route: w.route, loadfactor: w.loadfactor, lbset: w.lbset, max: w.max, retryMs: w.retry * 1000 }, 'manager');
  m.replaceFlags(w.status as MemberFlag[], 'manager');
}

/** A member spec from saved settings. */
export function memberSpecOf(w: MemberSettings) {
  return parseOrThrow(newMemberSchema, { url: w.url, route: w.route, loadfactor: w.loadfactor, lbset: w.lbset, max: w.max, retry: w.retry, status: [...w.status], ...(w.hcheck !== undefined ? { hcheck: w.hcheck } : {}) });
}

/** A change to a balancer's own settings (httpd's manager edits these too). */
export const balancerChangeSchema = z.strictObject({
  method: balancerSchema.shape.method.unwrap().optional(),
  stickysession: z.string().min(1, 'expected cookie|parameter names').optional(),
  stickysessionsep: balancerSchema.shape.stickysessionsep.unwrap().optional(),
  nofailover: z.boolean().optional(),
  maxattempts: balancerSchema.shape.maxattempts.unwrap().optional(),
  /** Seconds a request may wait for a free member. */
  timeout: balancerSchema.shape.timeout.unwrap().optional(),
  forcerecovery: z.boolean().optional(),
});
export type BalancerChange = z.infer<typeof balancerChangeSchema>;
export type BalancerSettings = Required<BalancerChange>;

export function balancerSettings(b: Balancer): BalancerSettings {
  const s = b.settings();
  return { ...s, method: s.method as BalancerSettings['method'] };
}

/** Applies a balancer change; the method must exist in `methods` (checked before anything changes). */
export function changeBalancer(b: Balancer, change: BalancerChange, methods: MethodRegistry): Balancer {
  const method = change.method !== undefined ? methods.get(change.method) : undefined;
  const before = balancerSettings(b);
  if (method) b.method = method;
  if (change.stickysession !== undefined || change.stickysessionsep !== undefined) {
    b.sticky = parseStickyNames(change.stickysession ?? before.stickysession, change.stickysessionsep ?? before.stickysessionsep);
  }
  if (change.nofailover !== undefined) b.nofailover = change.nofailover;
  if (change.maxattempts !== undefined) b.maxattempts = change.maxattempts;
  if (change.timeout !== undefined) b.timeoutMs = change.timeout * 1000;
  if (change.forcerecovery !== undefined) b.forcerecovery = change.forcerecovery;
  const after = balancerSettings(b);
  const what = (Object.keys(after) as Array<keyof BalancerSettings>).filter((k) => after[k] !== before[k]).map((k) => `${k} ${String(before[k])} → ${String(after[k])}`);
  if (what.length > 0) b.emit('change', { balancer: b.name, what: `balancer: ${what.join(', ')}` });
  return b;
}
