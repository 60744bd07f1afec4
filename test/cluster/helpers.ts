import { createClusterNode, type ClusterNode } from '../../src/cluster/index.js';
import type { MembershipEvent } from '../../src/cluster/types.js';

export const SECRET = 'test-secret-0123456789abcdef';

export async function startNode(route: string, opts: Record<string, unknown> = {}, deps: Record<string, unknown> = {}): Promise<ClusterNode> {
  const node = createClusterNode({ route, listen: { host: '127.0.0.1', port: 0 }, secret: SECRET, ...opts }, deps);
  await node.start();
  return node;
}

export function addr(n: ClusterNode): string {
  return `${n.self.channelAddress.host}:${n.self.channelAddress.port}`;
}

/** Resolves when `pred` holds, polling every 10 ms; rejects after `ms`. */
export async function until(pred: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function record(n: ClusterNode): MembershipEvent[] {
  const ev: MembershipEvent[] = [];
  n.onMembership((e) => ev.push(e));
  return ev;
}
