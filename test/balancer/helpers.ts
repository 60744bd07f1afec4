import { Balancer } from '../../src/balancer/balancer.js';
import { MethodRegistry } from '../../src/balancer/methods/index.js';
import { balancerSchema, type BalancerSpec } from '../../src/config/balancer-schema.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import type { z } from 'zod';

/** A Balancer on a manual clock with a seeded random source. */
export function makeBalancer(spec: Partial<z.input<typeof balancerSchema>> & { members: z.input<typeof balancerSchema>['members'] }, clock = new ManualClock(1_000_000)) {
  const parsed: BalancerSpec = balancerSchema.parse({ name: 'b', slowstart: 0, ...spec });
  const b = new Balancer(parsed, new MethodRegistry(), clock, seededRandom(42));
  return { b, clock };
}

/** Picks `n` times, releasing each pick at once; returns the route of each pick. */
export function pickMany(b: Balancer, n: number, route?: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = b.acquire({ route, exclude: undefined });
    if (d instanceof Promise) throw new Error('unexpected queueing');
    if (d.kind !== 'pick') throw new Error(`no pick: ${d.kind} ${d.detail}`);
    out.push(d.member.route);
    b.release(d.member);
  }
  return out;
}

export function counts(routes: readonly string[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const r of routes) c[r] = (c[r] ?? 0) + 1;
  return c;
}

export function longestRun(routes: readonly string[]): number {
  let best = 0;
  let run = 0;
  for (let i = 0; i < routes.length; i++) {
    run = i > 0 && routes[i] === routes[i - 1] ? run + 1 : 1;
    best = Math.max(best, run);
  }
  return best;
}
