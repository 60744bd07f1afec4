/**
 * The failover scenario, in one process: three nodes (in-memory
 * cluster, real HTTP servers), 50 virtual users each incrementing a session
 * counter; the owner of about a third of them is killed mid-run (its HTTP
 * server and channel vanish at once); every counter continues on another
 * node. Sync: no acknowledged increment may be lost. Async: reported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { MemoryHub } from './helpers/memory-cluster.js';
import { closeServer, listen } from './helpers/http.js';
import { VirtualUser, runUsers, type TargetNode } from './helpers/virtual-users.js';
import { ReplicatedSessionManager } from '../../src/sessions/replication/replicated-manager.js';
import { withSessions, type SessionRequest } from '../../src/sessions/http/middleware.js';
import type { ReplicationConfigInput } from '../../src/sessions/config.js';

async function scenario(config: ReplicationConfigInput) {
  const hub = new MemoryHub();
  const nodes: Array<TargetNode & { manager: ReplicatedSessionManager; server: import('node:http').Server; dead: boolean; kill(): void }> = [];
  for (const route of ['n1', 'n2', 'n3']) {
    const channel = hub.channel(route);
    await channel.start();
    const manager = new ReplicatedSessionManager({ channel, config });
    await manager.start();
    const { server, url } = await listen(
      withSessions(manager, (req: SessionRequest, res: ServerResponse) => {
        const s = req.session as { n?: number };
        s.n = (s.n ?? 0) + 1;
        res.end(String(s.n));
      }),
    );
    const node = {
      route, url, manager, server, dead: false,
      alive: () => !node.dead,
      kill() {
        node.dead = true;
        server.closeAllConnections();
        server.close();
        hub.kill(channel);
        manager.destroy();
      },
    };
    nodes.push(node);
  }
  const users = Array.from({ length: 50 }, (_, i) => new VirtualUser(i, () => nodes));
  await runUsers(users, 6, async (step) => {
    if (step === 2) nodes[0]!.kill();
  });
  for (const n of nodes) if (!n.dead) await closeServer(n.server);
  for (const n of nodes) n.manager.destroy();
  return users.map((u) => u.report());
}

for (const consistency of ['sync', 'async'] as const) {
  for (const mode of ['all-to-all', 'backup'] as const) {
    test(`failover (${mode}, ${consistency}): 50 users, owner of a third killed mid-run, every counter continues`, async (t) => {
      const reports = await scenario({ mode, consistency });
      const moved = reports.filter((r) => r.routes[0] === 'n1');
      assert.ok(moved.length >= 10, `${moved.length} users were on the killed node`);
      for (const r of moved) assert.notEqual(r.routes[r.routes.length - 1], 'n1', 'taken over by a live node');
      const lost = reports.reduce((x, r) => x + r.lost, 0);
      t.diagnostic(`${mode}/${consistency}: ${moved.length} users failed over, ${lost} acknowledged increments lost`);
      for (const r of reports) assert.ok(r.acknowledged >= 6, `user ${r.user} reached ${r.acknowledged}`);
      if (consistency === 'sync') assert.equal(lost, 0);
    });
  }
}

for (const consistency of ['async', 'sync'] as const) {
  test(`16 concurrent connections writing one session (${consistency}): the replica converges to the owner's version`, async () => {
    const hub = new MemoryHub();
    const ms: ReplicatedSessionManager[] = [];
    for (const r of ['n1', 'n2']) {
      const ch = hub.channel(r);
      await ch.start();
      const m = new ReplicatedSessionManager({ channel: ch, config: { consistency } });
      await m.start();
      ms.push(m);
    }
    const { server, url } = await listen(
      withSessions(ms[0]!, (req: SessionRequest, res: ServerResponse) => {
        const s = req.session as { n?: number; log?: number[] };
        s.n = (s.n ?? 0) + 1;
        (s.log ??= []).push(s.n);
        res.end(String(s.n));
      }),
    );
    try {
      const first = await fetch(url);
      const cookie = first.headers.getSetCookie()[0]!.split(';')[0]!;
      await first.text();
      for (let burst = 0; burst < 7; burst++) {
        await Promise.all(Array.from({ length: 16 }, async () => (await fetch(url, { headers: { cookie } })).text()));
        for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
        const owner = ms[0]!.peek(cookie.split('=')[1]!)!;
        const replica = ms[1]!.peek(cookie.split('=')[1]!)!;
        assert.equal(replica.version, owner.version, `burst ${burst}`);
        assert.deepEqual(replica.rawAttributes, owner.rawAttributes);
        assert.equal(owner.rawAttributes.n, 1 + 16 * (burst + 1));
      }
    } finally {
      await closeServer(server);
      ms.forEach((m) => m.destroy());
    }
  });
}
