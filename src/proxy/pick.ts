import type { Balancer } from '../balancer/balancer.js';
import type { Member } from '../balancer/member.js';
import type { Decision } from '../balancer/picker.js';

const NONE: ReadonlySet<Member> = new Set();

/**
 * Asks the balancer for a member for one attempt: at once, or after waiting
 * in its bounded queue when every candidate is at `max`. `onDecision` runs
 * exactly once; a pick holds a slot that the outcome report frees.
 */
export function pick(balancer: Balancer, route: string | undefined, exclude: ReadonlySet<Member> | undefined, onDecision: (d: Decision) => void, onError: (err: Error) => void): void {
  const d = balancer.acquire({ route, exclude: exclude ?? NONE });
  if (d instanceof Promise) d.then(onDecision, onError);
  else onDecision(d);
}
