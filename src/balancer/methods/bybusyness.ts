import type { Member } from '../member.js';
import type { LbContext, LbMethod } from './method.js';
import { pickByRequests } from './byrequests.js';

/**
 * httpd's bybusyness: the member with the fewest outstanding requests relative
 * to its weight wins; ties are broken by byrequests so that idle members
 * still share by weight.
 */
export const bybusyness: LbMethod = {
  name: 'bybusyness',
  pick(candidates: readonly Member[], ctx: LbContext): Member {
    let best: Member[] = [];
    let bestScore = Number.POSITIVE_INFINITY;
    for (const m of candidates) {
      const score = m.busy / m.effectiveWeight(ctx.now, ctx.slowstartMs);
      if (score < bestScore) {
        bestScore = score;
        best = [m];
      } else if (score === bestScore) best.push(m);
    }
    return best.length === 1 ? best[0]! : pickByRequests(best, ctx);
  },
};
