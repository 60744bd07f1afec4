/**
 * What SIGHUP changes on a running `cohort node` (pure: two configurations
 * in, a plan out). Applied at run time: `loglevel`, `loadfactor` (the static
 * weight, or with `loadReport` the idle ceiling) and the static
 * `cluster.members`. Every other changed key needs a restart; the plan names
 * them so the node can log that they were not applied. Documented in docs/node.md.
 */
import type { NodeConfig } from './config.js';

export interface NodeReloadPlan {
  readonly loglevel?: NodeConfig['loglevel'];
  /** Present when the loadfactor changed; `value` undefined = no longer published. */
  readonly loadfactor?: { readonly value: number | undefined };
  /** The new static member list, when it changed and the membership is static. */
  readonly members?: readonly string[];
  /** Changed keys (paths like `node.cluster.listen`) that take effect only after a restart. */
  readonly needRestart: readonly string[];
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Static membership is in use when neither DNS nor multicast is configured (the order membershipFor uses). */
function isStatic(c: NodeConfig['cluster']): boolean {
  return c.dns === undefined && c.multicast === false;
}

export function planNodeReload(current: NodeConfig, next: NodeConfig): NodeReloadPlan {
  const needRestart: string[] = [];
  let members: readonly string[] | undefined;
  for (const key of Object.keys({ ...current, ...next }) as (keyof NodeConfig)[]) {
    if (key === 'loglevel' || key === 'loadfactor' || key === 'cluster') continue;
    if (!same(current[key], next[key])) needRestart.push(`node.${key}`);
  }
  for (const key of Object.keys({ ...current.cluster, ...next.cluster }) as (keyof NodeConfig['cluster'])[]) {
    if (same(current.cluster[key], next.cluster[key])) continue;
    if (key === 'members' && isStatic(current.cluster) && isStatic(next.cluster)) members = next.cluster.members;
    else needRestart.push(`node.cluster.${key}`);
  }
  return {
    ...(next.loglevel !== current.loglevel ? { loglevel: next.loglevel } : {}),
    ...(next.loadfactor !== current.loadfactor ? { loadfactor: { value: next.loadfactor } } : {}),
    ...(members ? { members } : {}),
    needRestart,
  };
}
