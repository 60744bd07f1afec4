/**
 * Graceful handoff, in one process: a node closing gracefully hands the
 * sessions it owns over to the survivors before it leaves. In-memory cluster
 * (test/sessions/helpers), three nodes; a request-level run with real HTTP
 * servers and sticky virtual users at the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Server, ServerResponse } from 'node:http';
import { startCluster, startNode, settle, stopAll, advanceAll, type TestNode } from './helpers/fixture.js';
import { MemoryHub } from './helpers/memory-cluster.js';
import { closeServer, listen } from './helpers/http.js';
import { VirtualUser, runUsers, type TargetNode } from './helpers/virtual-users.js';
import { ReplicatedSessionManager } from '../../src/sessions/replication/replicated-manager.js';
import { withSessions, type SessionRequest } from '../../src/sessions/http/middleware.js';
import type { ReplicationConfigInput } from '../../src/sessions/config.js';
import type { JsonValue, MemberView } from '../../src/cluster/types.js';
import { Topic } from '../../src/sessions/replication/wire.js';
import { backupRoutes } from '../../src/sessions/replication/placement.js';

const MAX_INACTIVE_MS = 60_000;

/** Creates `n` sessions owned by `node`, each committed 1–3 times (versions differ). */
async function createSessions(node: TestNode, n: number): Promise<Map<string, { version: number; n: number }>> {
  const out = new Map<string, { version: number; n: number }>();
  for (let i = 0; i < n; i++) {
    const s = node.manager.create();
    for (let k = 0; k <= i % 3; k++) {
      const a = s.attributes as { n?: number; user?: string };
      a.n = (a.n ?? 0) + 1;
      a.user = `u${i}`;
      await node.manager.commit(s);
    }
    out.set(s.base, { version: s.version, n: (s.rawAttributes as { n: number }).n });
  }
  return out;
}

/** The survivor that owns `base`; asserts there is exactly one. */
function ownerOf(base: string, survivors: readonly TestNode[]): TestNode {
  const owners = survivors.filter((n) => n.manager.peek(base)?.route === n.route);
  assert.equal(owners.length, 1, `session ${base.slice(0, 6)} has ${owners.length} owners among the survivors`);
  return owners[0]!;
}

/** Intercepts the first handoff request `node` receives: `before` runs before it is handled. */
function onFirstHandoff(node: TestNode, before: () => Promise<void> | void): void {
  const ch = node.channel;
  const dispatch = ch.dispatch.bind(ch);
  let done = false;
  ch.dispatch = async (from: MemberView, topic: string, payload: JsonValue) => {
    if (topic === Topic.Handoff && !done) {
      done = true;
      await before();
    }
    return dispatch(from, topic, payload);
  };
}

for (const mode of ['all-to-all', 'backup'] as const) {
  test(`handoff (${mode}): a node closing gracefully hands its sessions over; the survivors own them at the current version and take over expiry`, async () => {
    const { nodes } = await startCluster(3, { mode, maxInactiveMs: MAX_INACTIVE_MS });
    const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
    try {
      const sessions = await createSessions(n1, 60);
      const ofN2 = await createSessions(n2, 30);
      await settle();

      await n1.manager.close();
      const report = n1.manager.getStats().lastHandoff!;
      assert.ok(report, 'close() recorded a handoff report');
      assert.deepEqual({ sessions: report.sessions, handed: report.handed, moved: report.moved, failed: report.failed, peers: report.peers, members: report.members },
        { sessions: 60, handed: 60, moved: 0, failed: 0, peers: 2, members: 2 });
      await settle();
      // Backup mode: n2's sessions whose backup was n1 were re-created on n3 while n1 was still there.
      if (mode === 'backup') for (const base of ofN2.keys()) assert.ok(n3.manager.peek(base), `n3 holds a copy of n2's session ${base.slice(0, 6)}`);
      await n1.channel.close();
      await settle();

      const survivors = [n2, n3];
      const received = new Map<string, number>();
      for (const [base, was] of sessions) {
        const owner = ownerOf(base, survivors);
        received.set(owner.route, (received.get(owner.route) ?? 0) + 1);
        const s = owner.manager.peek(base)!;
        assert.equal(s.version, was.version + 1, 'the route change is one version after the last commit on n1');
        assert.equal((s.rawAttributes as { n: number }).n, was.n);
        const other = survivors.find((n) => n !== owner)!;
        const copy = other.manager.peek(base);
        assert.ok(copy, `the other survivor holds a copy of ${base.slice(0, 6)}`);
        assert.equal(copy.route, owner.route, 'the copy names the new owner');
        assert.equal(copy.version, s.version);
      }
      assert.equal(n2.manager.getStats().handoffsReceived + n3.manager.getStats().handoffsReceived, 60);
      assert.equal(received.size, 2, `sessions spread over both survivors: ${JSON.stringify([...received])}`);

      // A request presenting the old id (route n1) works at either survivor: the count continues.
      for (const [base, was] of [...sessions].slice(0, 10)) {
        const at = [n2, n3][was.n % 2]!;
        const s = (await at.manager.load(`${base}.n1`))!;
        assert.ok(s, 'loaded');
        assert.equal(s.route, at.route);
        const a = s.attributes as { n: number };
        a.n += 1;
        await at.manager.commit(s);
        assert.equal(a.n, was.n + 1);
      }
      await settle();

      // The new owners expire the sessions by the owner rule (an orphan would wait maxInactive + grace on a replica).
      advanceAll(nodes, MAX_INACTIVE_MS + 1);
      n2.manager.sweep();
      n3.manager.sweep();
      await settle();
      for (const base of sessions.keys()) {
        assert.equal(n2.manager.peek(base), undefined, 'expired on n2');
        assert.equal(n3.manager.peek(base), undefined, 'expired on n3');
      }
    } finally {
      stopAll(nodes);
    }
  });
}

test('handoff (backup, 4 nodes): after the handoff every session lives exactly on its new owner and the backups the placement names for it', async () => {
  const { nodes } = await startCluster(4, { mode: 'backup', backups: 1 });
  const [n1, ...survivors] = nodes as [TestNode, TestNode, TestNode, TestNode];
  try {
    const sessions = await createSessions(n1, 80);
    await settle();
    await n1.manager.close();
    assert.equal(n1.manager.getStats().lastHandoff!.handed, 80);
    const routes = survivors.map((n) => n.route);
    const check = (when: string) => {
      for (const [base, was] of sessions) {
        const owner = ownerOf(base, survivors);
        const expected = new Set([owner.route, ...backupRoutes(base, owner.route, routes, 1)]);
        const holding = new Set(survivors.filter((n) => n.manager.peek(base)).map((n) => n.route));
        assert.deepEqual(holding, expected, `holders of ${base.slice(0, 6)} ${when}`);
        for (const r of expected) assert.equal(survivors.find((n) => n.route === r)!.manager.peek(base)!.version, was.version + 1);
      }
    };
    // Already before n1 leaves (no window with a single copy), and after.
    await settle(10);
    check('before n1 left');
    await n1.channel.close();
    await settle(10);
    check('after n1 left');
  } finally {
    stopAll(nodes);
  }
});

test('handoff: sessions created during the handoff are handed over in a later round; a handed session cannot be committed on the leaving node', async () => {
  const { nodes } = await startCluster(3, {});
  const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
  try {
    const sessions = await createSessions(n1, 40);
    await settle();
    let created: string | undefined;
    let rejected: unknown;
    onFirstHandoff(n2, async () => {
      // n1 is handing over: a session of the batch is locked, a new one is still n1's own.
      const some = n1.manager.peek([...sessions.keys()][0]!)!;
      (some.attributes as { n: number }).n = 99;
      rejected = await n1.manager.commit(some).then(() => undefined, (e: unknown) => e);
      const s = n1.manager.create();
      (s.attributes as { late: boolean }).late = true;
      await n1.manager.commit(s);
      created = s.base;
    });
    await n1.manager.close();
    assert.equal((rejected as { code?: string } | undefined)?.code, 'COHORT_SESSION_HANDED_OFF');
    const report = n1.manager.getStats().lastHandoff!;
    assert.equal(report.sessions, 41);
    assert.equal(report.handed, 41);
    assert.equal(report.failed, 0);
    assert.ok(report.rounds >= 2, `rounds: ${report.rounds}`);
    await n1.channel.close();
    await settle();
    const owner = ownerOf(created!, [n2, n3]);
    assert.deepEqual(owner.manager.peek(created!)!.rawAttributes, { late: true });
  } finally {
    stopAll(nodes);
  }
});

test('handoff: a receiver that never answers costs at most the timeout; its share is counted failed and still taken over on the next request', async () => {
  const { nodes } = await startCluster(3, { handoffTimeoutMs: 2_000, syncTimeoutMs: 300 });
  const [n1, n2, n3] = nodes as [TestNode, TestNode, TestNode];
  try {
    const sessions = await createSessions(n1, 40);
    await settle();
    onFirstHandoff(n2, () => new Promise<void>(() => undefined));
    // The in-memory channel's timers are unref'd: keep the loop alive while n1 waits for n2.
    const keepAlive = setInterval(() => undefined, 1_000);
    await n1.manager.close().finally(() => clearInterval(keepAlive));
    const report = n1.manager.getStats().lastHandoff!;
    assert.equal(report.handed + report.failed, 40);
    assert.ok(report.failed > 0 && report.handed > 0, JSON.stringify(report));
    assert.equal(report.members, 1);
    await n1.channel.close();
    await settle();
    // A session of the failed share (its owner is gone): taken over as before.
    const failed = [...sessions].find(([base]) => n3.manager.peek(base)?.route === 'n1')!;
    assert.ok(failed);
    const s = (await n3.manager.load(`${failed[0]}.n1`))!;
    assert.equal(s.route, 'n3');
    assert.equal((s.rawAttributes as { n: number }).n, failed[1].n);
  } finally {
    stopAll(nodes);
  }
});

test('handoff: a node alone just closes', async () => {
  const hub = new MemoryHub();
  const n1 = await startNode(hub, 'n1');
  try {
    await createSessions(n1, 5);
    await n1.manager.close();
    const r = n1.manager.getStats().lastHandoff!;
    assert.deepEqual({ sessions: r.sessions, handed: r.handed, failed: r.failed, peers: r.peers, members: r.members }, { sessions: 5, handed: 0, failed: 0, peers: 0, members: 0 });
  } finally {
    stopAll([n1]);
  }
});

test('handoff disabled (handoffTimeoutMs: 0): close leaves the sessions to take-over, as before', async () => {
  const { nodes } = await startCluster(2, { handoffTimeoutMs: 0 });
  try {
    await createSessions(nodes[0]!, 3);
    await nodes[0]!.manager.close();
    assert.equal(nodes[0]!.manager.getStats().lastHandoff, undefined);
  } finally {
    stopAll(nodes);
  }
});

// Request level: real HTTP servers, sticky virtual users; n1 shuts down gracefully mid-run.
async function gracefulRun(config: ReplicationConfigInput) {
  const hub = new MemoryHub();
  const nodes: Array<TargetNode & { manager: ReplicatedSessionManager; server: Server; stopped: boolean; stop(): Promise<void> }> = [];
  for (const route of ['n1', 'n2', 'n3']) {
    const channel = hub.channel(route);
    await channel.start();
    const manager = new ReplicatedSessionManager({ channel, config });
    await manager.start();
    const { server, url } = await listen(withSessions(manager, (req: SessionRequest, res: ServerResponse) => {
      const s = req.session as { n?: number };
      s.n = (s.n ?? 0) + 1;
      res.end(String(s.n));
    }));
    const node = {
      route, url, manager, server, stopped: false,
      alive: () => !node.stopped,
      // The node runtime's order: stop taking requests, finish in-flight ones, hand over, leave.
      async stop() {
        node.stopped = true;
        await closeServer(server);
        await manager.close();
        await channel.close();
      },
    };
    nodes.push(node);
  }
  const users = Array.from({ length: 30 }, (_, i) => new VirtualUser(i, () => nodes));
  let owned = 0;
  await runUsers(users, 6, async (step) => {
    if (step === 2) {
      owned = nodes[0]!.manager.getStats().owned;
      await nodes[0]!.stop();
    }
  });
  const report = nodes[0]!.manager.getStats().lastHandoff!;
  for (const n of nodes) if (!n.stopped) await closeServer(n.server);
  for (const n of nodes) n.manager.destroy();
  return { reports: users.map((u) => u.report()), owned, report };
}

for (const consistency of ['async', 'sync'] as const) {
  for (const mode of ['all-to-all', 'backup'] as const) {
    test(`graceful shutdown mid-run (${mode}, ${consistency}): 30 users, n1 hands its sessions over, every counter continues, nothing lost`, async (t) => {
      const { reports, owned, report } = await gracefulRun({ mode, consistency });
      const moved = reports.filter((r) => r.routes[0] === 'n1');
      t.diagnostic(`${mode}/${consistency}: n1 owned ${owned}, handed ${report.handed} to ${report.members} members, ${report.failed} failed; ${moved.length} users continued elsewhere`);
      assert.ok(moved.length >= 5, `${moved.length} users were on n1`);
      assert.equal(report.handed, owned);
      assert.equal(report.failed, 0);
      for (const r of moved) assert.notEqual(r.routes[r.routes.length - 1], 'n1');
      for (const r of reports) assert.equal(r.acknowledged, 6, `user ${r.user} reached ${r.acknowledged}`);
      assert.equal(reports.reduce((x, r) => x + r.lost, 0), 0, 'no acknowledged increment lost');
    });
  }
}
