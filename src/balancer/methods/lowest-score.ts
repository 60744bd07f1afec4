import type { Member } from '../member.js';
import type { LbContext } from './method.js';
import { pickByRequests } from './byrequests.js';

/**
 * The candidate with the lowest score wins; ties (e.g. all idle at start)
 * are broken by byrequests so that they still share by weight.
 */
export function pickLowest(candidates: readonly Member[], ctx: LbContext, score: (m: Member) => number): Member {
  let best: Member[] = [];
  let bestScore = Number.POSITIVE_INFINITY;
  for (const m of candidates) {
    const s = score(m);
    if (s < bestScore) {
      bestScore = s;
      best = [m];
    } else if (s === bestScore) best.push(m);
  }
  return best.length === 1 ? best[0]! : pickByRequests(best, ctx);
}
