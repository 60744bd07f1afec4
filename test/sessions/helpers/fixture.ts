/**
 * Builds clusters of session managers over the in-memory hub. Each node gets
 * its own ManualClock (optionally offset: clocks are never synchronized).
 */
import { ManualClock } from '../../../src/util/clock.js';
import { ReplicatedSessionManager } from '../../../src/sessions/replication/replicated-manager.js';
import type { ReplicationConfigInput } from '../../../src/sessions/config.js';
import { MemoryHub, type MemoryChannel } from './memory-cluster.js';

export interface TestNode {
  readonly route: string;
  readonly channel: MemoryChannel;
  readonly clock: ManualClock;
  readonly manager: ReplicatedSessionManager;
}

/** Lets queued in-memory deliveries (microtasks and immediates) run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

export async function startNode(hub: MemoryHub, route: string, config: ReplicationConfigInput = {}, clockOffset = 0): Promise<TestNode> {
  const channel = hub.channel(route);
  const clock = new ManualClock(clockOffset);
  const manager = new ReplicatedSessionManager({ channel, clock, config });
  await channel.start();
  await manager.start();
  return { route, channel, clock, manager };
}

export async function startCluster(n: number, config: ReplicationConfigInput = {}, hub = new MemoryHub()): Promise<{ hub: MemoryHub; nodes: TestNode[] }> {
  const nodes: TestNode[] = [];
  for (let i = 1; i <= n; i++) nodes.push(await startNode(hub, `n${i}`, config, i * 1_000_000_007));
  return { hub, nodes };
}

export function stopAll(nodes: readonly TestNode[]): void {
  for (const n of nodes) {
    n.manager.destroy();
    n.channel.destroy();
  }
}

/** Advances every node's clock by `ms` (each from its own offset). */
export function advanceAll(nodes: readonly TestNode[], ms: number): void {
  for (const n of nodes) n.clock.advance(ms);
}
