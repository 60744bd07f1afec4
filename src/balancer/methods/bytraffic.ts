import type { LbMethod } from './method.js';
import { pickLowest } from './lowest-score.js';

/** httpd's bytraffic: the member that moved the fewest bytes relative to its weight wins. */
export const bytraffic: LbMethod = {
  name: 'bytraffic',
  pick: (candidates, ctx) => pickLowest(candidates, ctx, (m) => m.transferred / m.effectiveWeight(ctx.now, ctx.slowstartMs)),
};
