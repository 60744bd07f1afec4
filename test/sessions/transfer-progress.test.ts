import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, startNode, stopAll } from './helpers/fixture.js';
import { MemoryHub } from './helpers/memory-cluster.js';
import { ManualClock } from '../../src/util/clock.js';
import { ReplicatedSessionManager } from '../../src/sessions/replication/replicated-manager.js';
import type { TransferProgress } from '../../src/sessions/replication/state-transfer.js';

async function fill(manager: ReplicatedSessionManager, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const s = manager.create();
    s.attributes.i = i;
    await manager.commit(s);
  }
}

/** A joining node whose transferProgress events are recorded from the start. */
async function join(hub: MemoryHub, route: string, config: Record<string, unknown>) {
  const channel = hub.channel(route);
  const clock = new ManualClock();
  const manager = new ReplicatedSessionManager({ channel, clock, config });
  const seen: TransferProgress[] = [];
  manager.on('transferProgress', (p: TransferProgress) => seen.push(p));
  await channel.start();
  await manager.start();
  return { node: { route, channel, clock, manager }, seen };
}

test('state transfer reports progress after each page: received/total sessions, pages', async () => {
  const hub = new MemoryHub();
  const a = await startNode(hub, 'n1', { transferChunk: 10 });
  const nodes = [a];
  try {
    await fill(a.manager, 95);
    const { node, seen } = await join(hub, 'n2', { transferChunk: 10 });
    nodes.push(node);
    assert.equal(seen.length, 10, 'one event per page');
    assert.deepEqual(seen[0], { received: 10, total: 95, chunks: 1 });
    assert.deepEqual(seen.at(-1), { received: 95, total: 95, chunks: 10 });
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.received > seen[i - 1]!.received);
  } finally {
    stopAll(nodes);
  }
});

test('backup mode: progress sums the peers pulled in parallel', async () => {
  const { hub, nodes } = await startCluster(3, { mode: 'backup', backups: 1, transferChunk: 5 });
  try {
    for (const n of nodes) await fill(n.manager, 20);
    const { node, seen } = await join(hub, 'n4', { mode: 'backup', backups: 1, transferChunk: 5 });
    nodes.push(node);
    const last = seen.at(-1)!;
    const report = node.manager.getStats().lastTransfer!;
    assert.equal(report.complete, true);
    assert.equal(last.received, report.sessions);
    assert.equal(last.total, report.sessions);
    assert.equal(last.chunks, report.chunks);
  } finally {
    stopAll(nodes);
  }
});
