import type { Member } from '../member.js';
import type { LbContext, LbMethod } from './method.js';
import { pickByRequests } from './byrequests.js';

/**
 * httpd's bytraffic: the member that moved the fewest bytes relative to its
 * weight wins; ties (e.g. at start) fall back to byrequests.
 */
export const bytraffic: LbMethod = {
  name: 'bytraffic',
  pick(candidates: readonly Member[], ctx: LbContext): Member {
    let best: Member[] = [];
    let bestScore = Number.POSITIVE_INFINITY;
    for (const m of candidates) {
      const score = m.transferred / m.effectiveWeight(ctx.now, ctx.slowstartMs);
      if (score < bestScore) {
        bestScore = score;
        best = [m];
      } else if (score === bestScore) best.push(m);
    }
    return best.length === 1 ? best[0]! : pickByRequests(best, ctx);
  },
};
