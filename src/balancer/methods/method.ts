import type { Random } from '../../util/clock.js';
import type { Member } from '../member.js';

/** What a balancing method may read besides the candidates. */
export interface LbContext {
  /** Monotonic ms. */
  readonly now: number;
  readonly random: Random;
  /** Slow-start window in ms (0 = off). */
  readonly slowstartMs: number;
}

/**
 * A balancing method. `pick` receives the usable, non-full candidates of one
 * tier (never empty) and returns one of them; it may update per-member
 * balancing state (lbstatus) of the candidates. It never touches sockets.
 */
export interface LbMethod {
  readonly name: string;
  pick(candidates: readonly Member[], ctx: LbContext): Member;
}
