import { MemberFlag, MemberHealth, type Member } from './member.js';
import type { LbContext, LbMethod } from './methods/method.js';

/**
 * The pure routing decision for one attempt of one request: which member, and
 * why. Inputs are the members, the sticky route (if any), the members this
 * request already failed on, and the balancer's options; no sockets, no timers.
 */

export type PickReason = 'sticky' | 'failover' | 'balanced' | 'standby' | 'forcerecovery';

export type Decision =
  | { readonly kind: 'pick'; readonly member: Member; readonly reason: PickReason; readonly detail: string }
  /** Candidates exist but all are at `max`: wait for a free slot. */
  | { readonly kind: 'queue'; readonly detail: string }
  /** Nothing can serve this request (503). */
  | { readonly kind: 'fail'; readonly detail: string };

export interface PickInput {
  readonly route: string | undefined;
  /** Members this request already failed on. */
  readonly exclude: ReadonlySet<Member> | undefined;
}

export interface PickOptions {
  readonly nofailover: boolean;
  readonly forcerecovery: boolean;
}

export function decide(
  members: readonly Member[],
  input: PickInput,
  opts: PickOptions,
  method: LbMethod,
  ctx: LbContext,
): Decision {
  const now = ctx.now;
  const exclude = input.exclude;
  let routeMember: Member | undefined;
  if (input.route !== undefined) {
    for (const m of members) {
      if (m.route === input.route) {
        routeMember = m;
        break;
      }
    }
  }
  let preferLbset: number | undefined;
  let failoverFrom = '';
  if (routeMember !== undefined) {
    const tried = exclude?.has(routeMember) ?? false;
    if (!tried && routeMember.usable(now)) {
      if (!routeMember.full) return new StickyPick(routeMember);
      return { kind: 'queue', detail: `sticky member ${routeMember.route} is at max=${routeMember.max}` };
    }
    if (opts.nofailover) {
      return { kind: 'fail', detail: `sticky member ${routeMember.route} is unusable (${describe(routeMember, tried)}) and nofailover is on` };
    }
    preferLbset = routeMember.lbset;
    failoverFrom = `route ${routeMember.route} unusable (${describe(routeMember, tried)})`;
  }

  // Tiers: the failed-over member's lbset first, then ascending lbset; in each,
  // regular members before hot standbys. Draining members take only their own route.
  const lbsets = lbsetOrder(members, preferLbset);
  let sawFull = false;
  for (const lbset of lbsets) {
    for (let pass = 0; pass < 2; pass++) {
      const standby = pass === 1;
      let tier: Member[] | undefined;
      let full = 0;
      for (const m of members) {
        if (m.lbset !== lbset || m.flags.has(MemberFlag.HotStandby) !== standby) continue;
        if (m.flags.has(MemberFlag.Drain) || (exclude !== undefined && exclude.size > 0 && exclude.has(m)) || !m.usable(now)) continue;
        if (m.full) full++;
        else (tier ??= []).push(m);
      }
      if (tier !== undefined) {
        const member = method.pick(tier, ctx);
        const reason: PickReason = preferLbset !== undefined ? 'failover' : standby ? 'standby' : 'balanced';
        return new Balanced(member, reason, failoverFrom, method.name, tier.length, lbset, standby);
      }
      if (full > 0) {
        sawFull = true;
        // regular members at max are busy, not unusable: wait for them rather than wake the hot standbys
        break;
      }
    }
    if (sawFull) return { kind: 'queue', detail: `all usable members of lbset ${lbset} are at max` };
  }

  // Nothing usable. httpd's forcerecovery: if every member that could serve is
  // merely in error (not disabled, not failing health checks), try them all again.
  if (opts.forcerecovery) {
    const inError: Member[] = [];
    let blocked = false;
    for (const m of members) {
      if (m.administrativelyOut || m.flags.has(MemberFlag.Drain)) continue;
      if (m.health === MemberHealth.Error || m.health === MemberHealth.Ejected) {
        if (!(exclude?.has(m) ?? false) && !m.full) inError.push(m);
      } else blocked = true;
    }
    if (!blocked && inError.length > 0) {
      const member = method.pick(inError, ctx);
      return { kind: 'pick', member, reason: 'forcerecovery', detail: `${failoverFrom ? `${failoverFrom}; ` : ''}every member in error: forced recovery` };
    }
  }
  return { kind: 'fail', detail: failoverFrom || 'no usable member' };
}

/**
 * A pick among a tier. Its `detail` (for the explain header and error
 * answers) is written only when asked for: most picks never need it.
 */
class Balanced {
  readonly kind = 'pick' as const;
  constructor(
    readonly member: Member,
    readonly reason: PickReason,
    private readonly failoverFrom: string,
    private readonly methodName: string,
    private readonly tierSize: number,
    private readonly lbset: number,
    private readonly standby: boolean,
  ) {}

  get detail(): string {
    return `${this.failoverFrom ? `${this.failoverFrom}; ` : ''}${this.methodName} over ${this.tierSize} in lbset ${this.lbset}${this.standby ? ' (hot standby)' : ''}`;
  }
}

/** The sticky member, free and usable. */
class StickyPick {
  readonly kind = 'pick' as const;
  readonly reason = 'sticky' as const;
  constructor(readonly member: Member) {}

  get detail(): string {
    return `route ${this.member.route}`;
  }
}

/** The lbsets in the order they are tried: `prefer` first, then ascending. One allocation when all members share one lbset. */
function lbsetOrder(members: readonly Member[], prefer: number | undefined): number[] {
  if (members.length === 0) return [];
  const first = members[0]!.lbset;
  let single = true;
  for (const m of members) {
    if (m.lbset !== first) {
      single = false;
      break;
    }
  }
  if (single) return [first];
  const lbsets = [...new Set(members.map((m) => m.lbset))].sort((a, b) => a - b);
  if (prefer !== undefined) {
    lbsets.splice(lbsets.indexOf(prefer), 1);
    lbsets.unshift(prefer);
  }
  return lbsets;
}

function describe(m: Member, tried: boolean): string {
  if (tried) return 'failed this request';
  if (m.flags.has(MemberFlag.Disabled)) return 'disabled';
  if (m.flags.has(MemberFlag.Stopped)) return 'stopped';
  return m.reason ? `${m.health}: ${m.reason.message}` : m.health;
}
