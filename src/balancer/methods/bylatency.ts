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
/** ms after which a latency sample counts half. */
const LATENCY_HALF_LIFE_MS = 5_000;

export const bylatency: LbMethod = {
  name: 'bylatency',
  pick(candidates: readonly Member[], ctx: LbContext): Member {
    if (candidates.length === 1) return candidates[0]!;
    const a = draw(candidates, ctx, undefined);
    const b = draw(candidates, ctx, a);
    let floor = Number.POSITIVE_INFINITY;
    for (const m of candidates) if (m.latencyEwma !== undefined && m.latencyEwma < floor) floor = m.latencyEwma;
    if (floor === Number.POSITIVE_INFINITY) floor = 1;
    // A member's excess latency fades with the age of its last sample, so a
    // member that was slow is probed again once its record is old.
    const latency = (m: Member) => {
      if (m.latencyEwma === undefined) return floor;
      const age = ctx.now - m.latencyAt;
      return age <= 0 ? m.latencyEwma : floor + (m.latencyEwma - floor) * Math.pow(0.5, age / LATENCY_HALF_LIFE_MS);
    };
    const cost = (m: Member) => (latency(m) + 0.05) * (m.busy + 1) / m.effectiveWeight(ctx.now, ctx.slowstartMs);
    const ca = cost(a);
    const cb = cost(b);
    // Costs within 10% of each other are a tie: spread rather than herd.
    if (Math.abs(ca - cb) <= 0.1 * Math.max(ca, cb)) return ctx.random() < 0.5 ? a : b;
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
