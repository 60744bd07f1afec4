import type { Member } from '../member.js';
import type { LbContext, LbMethod } from './method.js';

/**
 * httpd's byrequests (smooth weighted round robin on lbstatus): every
 * candidate's lbstatus grows by its weight, the largest wins and pays back the
 * total. Over any window each member's share matches its weight, and the
 * picks are interleaved (no long runs on one member).
 */
export function pickByRequests(candidates: readonly Member[], ctx: LbContext): Member {
  let best = candidates[0]!;
  let total = 0;
  let bestStatus = Number.NEGATIVE_INFINITY;
  for (const m of candidates) {
    const w = m.effectiveWeight(ctx.now, ctx.slowstartMs);
    m.lbstatus += w;
    total += w;
    if (m.lbstatus > bestStatus) {
      bestStatus = m.lbstatus;
      best = m;
    }
  }
  best.lbstatus -= total;
  return best;
}

export const byrequests: LbMethod = { name: 'byrequests', pick: pickByRequests };
