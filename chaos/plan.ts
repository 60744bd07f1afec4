/**
 * The fault plan: which fault hits which node, for how long, in what order.
 * Pure: profile, node names and a random source in, a list out. Faults never
 * overlap; the executor runs them one after another while time remains.
 */
import type { Profile } from './options.js';

export enum FaultKind {
  /** SIGKILL, then restart the node after `holdMs`. */
  Kill = 'kill',
  /** SIGSTOP, then SIGCONT after `holdMs`. */
  Pause = 'pause',
  /** Cut the node off from the other nodes (not from the balancer) for `holdMs`. */
  Partition = 'partition',
  /** A graceful restart in a rolling upgrade (rolling profile): drain, disable, SIGTERM, start, ready, enable. */
  Restart = 'restart',
}

export interface Fault {
  readonly kind: FaultKind;
  readonly node: string;
  /** How long the fault lasts, ms. */
  readonly holdMs: number;
  /** Quiet time after the node is back before the next fault, ms. */
  readonly settleMs: number;
}

/** Traffic before the first fault, ms (sessions exist and are replicated). */
export const WARMUP_MS = 3_000;

/**
 * Faults for a run of `durationMs`. Nodes are hit in turn, so that every
 * node's users see every kind; the short profile is one kill and one pause.
 */
export function faultPlan(profile: Profile, nodes: readonly string[], durationMs: number, random: () => number): Fault[] {
  const hold = (min: number, max: number) => Math.round(min + random() * (max - min));
  // The rolling profile's "faults" are the rollout's restarts (scenario.ts), not random ones.
  if (profile === 'rolling') return [];
  if (profile === 'short') {
    return [
      { kind: FaultKind.Kill, node: nodes[0]!, holdMs: 2_000, settleMs: 2_500 },
      { kind: FaultKind.Pause, node: nodes[1]!, holdMs: 2_500, settleMs: 2_000 },
    ];
  }
  const kinds = profile === 'netns' ? [FaultKind.Kill, FaultKind.Pause, FaultKind.Partition] : [FaultKind.Kill, FaultKind.Pause];
  const out: Fault[] = [];
  // Enough entries for the longest run; the executor stops when time is up.
  const budget = Math.ceil(durationMs / 4_000) + 1;
  for (let i = 0; i < budget; i++) {
    const kind = kinds[i % kinds.length]!;
    // Every (kind, node) pair comes up: shift the node once per round when the counts share a factor.
    const shift = kinds.length % nodes.length === 0 ? Math.floor(i / kinds.length) : 0;
    const node = nodes[(i + shift) % nodes.length]!;
    out.push({ kind, node, holdMs: kind === FaultKind.Kill ? hold(1_000, 4_000) : hold(1_500, 4_000), settleMs: hold(2_000, 4_000) });
  }
  return out;
}

/**
 * Sessions stick to the nodes that took them over, so after a few faults some
 * node may have no users at all; a fault aimed at it would prove nothing.
 * Such a fault moves to the node with the most users (`usersOn` per node).
 */
export function aimAt(fault: Fault, usersOn: Readonly<Record<string, number>>): Fault {
  if ((usersOn[fault.node] ?? 0) > 0) return fault;
  let best = fault.node;
  for (const [node, n] of Object.entries(usersOn)) if (n > (usersOn[best] ?? 0)) best = node;
  return best === fault.node ? fault : { ...fault, node: best };
}
