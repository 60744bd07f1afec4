import type { Member } from '../member.js';
import type { LbContext, LbMethod } from './method.js';

/**
 * Cohort's latency-aware method: power of two choices. Two distinct candidates
 * are drawn at random in proportion to their weight; the one with the lower
 * expected wait — smoothed latency × (outstanding + 1) ÷ weight — wins.
 * A member not yet measured counts as the fastest measured one, so it is
 * explored. A slow member keeps a share proportional to how fast it is,
 * instead of an equal share that fills its queue and the p99.
 */
export const bylatency: LbMethod = {
  name: 'bylatency',
  pick(candidates: readonly Member[], ctx: LbContext): Member {
    if (candidates.length === 1) return candidates[0]!;
    const a = draw(candidates, ctx, undefined);
    const b = draw(candidates, ctx, a);
    let floor = Number.POSITIVE_INFINITY;
    for (const m of candidates) if (m.latencyEwma !== undefined && m.latencyEwma < floor) floor = m.latencyEwma;
    if (floor === Number.POSITIVE_INFINITY) floor = 1;
    const cost = (m: Member) => ((m.latencyEwma ?? floor) + 0.05) * (m.busy + 1) / m.effectiveWeight(ctx.now, ctx.slowstartMs);
    const ca = cost(a);
    const cb = cost(b);
    if (ca === cb) return ctx.random() < 0.5 ? a : b;
    return ca < cb ? a : b;
  },
};

function draw(candidates: readonly Member[], ctx: LbContext, exclude: Member | undefined): Member {
  let total = 0;
  for (const m of candidates) if (m !== exclude) total += m.effectiveWeight(ctx.now, ctx.slowstartMs);
  let r = ctx.random() * total;
  let last = candidates[0]!;
  for (const m of candidates) {
    if (m === exclude) continue;
    last = m;
    r -= m.effectiveWeight(ctx.now, ctx.slowstartMs);
    if (r < 0) return m;
  }
  return last;
}
