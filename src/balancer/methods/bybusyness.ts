import type { LbMethod } from './method.js';
import { pickLowest } from './lowest-score.js';

/** httpd's bybusyness: the member with the fewest outstanding requests relative to its weight wins. */
export const bybusyness: LbMethod = {
  name: 'bybusyness',
  pick: (candidates, ctx) => pickLowest(candidates, ctx, (m) => m.busy / m.effectiveWeight(ctx.now, ctx.slowstartMs)),
};
