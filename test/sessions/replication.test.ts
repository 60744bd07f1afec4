import { test } from 'node:test';
import assert from 'node:assert/strict';
import { advanceAll, settle, startCluster, startNode, stopAll } from './helpers/fixture.js';
import { Topic } from '../../src/sessions/replication/wire.js';
import { parseSessionId } from '../../src/sessions/model/session-id.js';
import type { Session } from '../../src/sessions/model/session.js';

test('all-to-all: a new session and in-place changes reach every node; only the changed attribute travels', async () => {
  const { hub, nodes } = await startCluster(3);
  const [a, b, c] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]];
  try {
    const s = a.manager.create();
    s.attributes.user = 'ann';
    s.attributes.cart = { items: [] };
    await a.manager.commit(s);
    await settle();
    (s.attributes.cart as { items: unknown[] }).items.push({ sku: 'x1' });
    const sent: unknown[] = [];
    hub.hold = (m) => (m.topic === Topic.Delta ? (sent.push(m.payload), false) : false);
    await a.manager.commit(s);
    await settle();
    for (const n of [b, c]) {
      const copy = n.manager.peek(s.id)!;
      assert.equal(copy.version, 2);
      assert.deepEqual(copy.rawAttributes, { user: 'ann', cart: { items: [{ sku: 'x1' }] } });
      assert.equal(copy.route, 'n1');
    }
    assert.deepEqual(Object.keys((sent[0] as { d: Array<{ s: object }> }).d[0]!.s), ['cart']);
  } finally {
    stopAll(nodes);
  }
});

test('sync commit resolves only after every peer applied the delta', async () => {
  const { nodes } = await startCluster(3, { consistency: 'sync' });
  try {
    const s = nodes[0]!.manager.create();
    s.attributes.n = 1;
    const r = await nodes[0]!.manager.commit(s);
    assert.equal(r.replicatedTo.length, 2);
    for (const n of nodes.slice(1)) assert.equal(n.manager.peek(s.id)?.rawAttributes.n, 1, 'applied before commit resolved');
    s.attributes.n = 2;
    await nodes[0]!.manager.commit(s, { sync: false });
    await settle();
    assert.equal(nodes[1]!.manager.peek(s.id)?.rawAttributes.n, 2);
  } finally {
    stopAll(nodes);
  }
});

test('out-of-order async deltas: buffered and applied in order; a stale delta is rejected', async () => {
  const { hub, nodes } = await startCluster(2);
  const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
  try {
    const s = a.manager.create();
    s.attributes.count = 0;
    await a.manager.commit(s);
    await settle();
    hub.hold = (m) => m.topic === Topic.Delta;
    for (let i = 1; i <= 16; i++) {
      (s.attributes as { count: number }).count = i;
      await a.manager.commit(s);
    }
    // deliver in reverse order: every delta but the first arrives early
    await hub.release([...Array(16).keys()].reverse());
    await settle();
    assert.equal(b.manager.peek(s.id)!.version, a.manager.peek(s.id)!.version);
    assert.equal(b.manager.peek(s.id)!.rawAttributes.count, 16);
    // replay an old delta: rejected, the replica keeps the newer value
    hub.hold = undefined;
    const before = b.manager.getStats().staleRejected;
    await a.channel.send(b.channel.self.id, Topic.Delta, { d: [{ i: s.base, r: 'n1', b: 3, v: 4, s: { count: -1 } }] }, { mode: 'applied' });
    assert.equal(b.manager.peek(s.id)!.rawAttributes.count, 16);
    assert.equal(b.manager.getStats().staleRejected, before + 1);
  } finally {
    stopAll(nodes);
  }
});

test('a lost delta is repaired: the replica asks for a full copy after the gap timeout', async () => {
  const { hub, nodes } = await startCluster(2, { gapTimeoutMs: 100 });
  const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
  try {
    const s = a.manager.create();
    s.attributes.k = 'v1';
    await a.manager.commit(s);
    await settle();
    let drop = true;
    hub.hold = (m) => m.topic === Topic.Delta && drop;
    s.attributes.k = 'v2';
    await a.manager.commit(s);
    hub.held.length = 0; // lost
    drop = false;
    s.attributes.k = 'v3';
    await a.manager.commit(s);
    await settle();
    assert.equal(b.manager.peek(s.id)!.version, 1, 'gap: buffered, not applied');
    b.clock.advance(150);
    await settle();
    assert.equal(b.manager.peek(s.id)!.version, 3);
    assert.equal(b.manager.peek(s.id)!.rawAttributes.k, 'v3');
  } finally {
    stopAll(nodes);
  }
});

test('id regeneration, max inactive interval and invalidation replicate', async () => {
  const { nodes } = await startCluster(2, { consistency: 'sync' });
  const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
  try {
    const s = a.manager.create();
    s.attributes.role = 'guest';
    await a.manager.commit(s);
    const oldId = s.id;
    a.manager.regenerateId(s);
    s.attributes.role = 'admin';
    s.setMaxInactive(5_000);
    await a.manager.commit(s);
    assert.notEqual(s.id, oldId);
    assert.equal(b.manager.peek(oldId), undefined);
    assert.equal(b.manager.peek(s.id)!.rawAttributes.role, 'admin');
    assert.equal(b.manager.peek(s.id)!.maxInactiveMs, 5_000);
    assert.equal(await a.manager.load(oldId), undefined, 'old id is dead');
    const destroyed: string[] = [];
    a.manager.on('destroyed', (e) => destroyed.push(e.id));
    await a.manager.invalidate(s);
    assert.equal(b.manager.peek(s.id), undefined);
    assert.equal(await a.manager.load(s.id), undefined);
    assert.deepEqual(destroyed, [s.id]);
  } finally {
    stopAll(nodes);
  }
});

test('route take-over: another node takes ownership, rewrites the route, tells the cluster (owner alive, then dead)', async () => {
  const { hub, nodes } = await startCluster(3);
  const [a, b, c] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]];
  try {
    const s = a.manager.create();
    s.attributes.n = 1;
    await a.manager.commit(s);
    await settle();
    const id1 = s.id;
    const taken: string[] = [];
    b.manager.on('takenOver', (e) => taken.push(`${e.previousId}>${e.id}`));
    const sb = (await b.manager.load(id1))!;
    assert.equal(parseSessionId(sb.id)!.route, 'n2');
    assert.equal(parseSessionId(sb.id)!.base, s.base);
    (sb.attributes as { n: number }).n++;
    await b.manager.commit(sb);
    await settle();
    assert.deepEqual(taken, [`${id1}>${sb.id}`]);
    assert.equal(a.manager.peek(s.base)!.route, 'n2', 'old owner demoted');
    assert.equal(c.manager.peek(s.base)!.rawAttributes.n, 2);
    // the old owner sees the old cookie again: it takes the session back with the newest state
    const sa = (await a.manager.load(id1))!;
    assert.equal(sa.rawAttributes.n, 2);
    assert.equal(sa.route, 'n1');
    await a.manager.commit(sa);
    await settle();
    // owner dies: c takes over from its own copy
    hub.kill(a.channel);
    a.manager.destroy();
    const sc = (await c.manager.load(sa.id))!;
    assert.equal(sc.route, 'n3');
    assert.equal(sc.rawAttributes.n, 2);
    assert.equal(sc.version, 3);
    await c.manager.commit(sc);
    await settle();
    assert.equal(b.manager.peek(sc.id)!.route, 'n3');
    assert.equal(b.manager.peek(sc.id)!.version, 4);
  } finally {
    stopAll(nodes);
  }
});

test('backup mode: one backup by rendezvous hashing; survives two failures in a row after re-replication', async () => {
  const { hub, nodes } = await startCluster(4, { mode: 'backup', backups: 1 });
  try {
    const [a] = nodes as [typeof nodes[0]];
    const sessions: Session[] = [];
    for (let i = 0; i < 200; i++) {
      const s = a.manager.create();
      s.attributes.i = i;
      await a.manager.commit(s);
      sessions.push(s);
    }
    await settle();
    const copies = nodes.slice(1).map((n) => n.manager.getStats().sessions);
    assert.equal(copies.reduce((x, y) => x + y, 0), 200, 'exactly one backup per session');
    assert.ok(copies.every((c) => c > 30), `spread: ${copies}`);
    // first failure: the owner
    hub.kill(a.channel);
    a.manager.destroy();
    await settle(20);
    const live = nodes.slice(1);
    const holders = (base: string) => live.filter((n) => n.channel.alive && n.manager.peek(base)).length;
    for (const s of sessions) assert.equal(holders(s.base), 2, 're-replicated to 2 holders (backups + 1)');
    // second failure: whichever node holds the most
    const victim = live.reduce((x, y) => (x.manager.getStats().sessions >= y.manager.getStats().sessions ? x : y));
    hub.kill(victim.channel);
    victim.manager.destroy();
    await settle(20);
    const rest = live.filter((n) => n !== victim);
    for (const s of sessions) {
      const n = rest.find((x) => x.manager.peek(s.base)) ?? rest[0]!;
      const got = await n.manager.load(s.id);
      assert.ok(got, `session ${s.attributes.i} survived`);
      assert.equal(got.rawAttributes.i, s.rawAttributes.i);
    }
    // a node that holds nothing finds it on the others
    const other = rest[0]!;
    const s0 = sessions.find((s) => !other.manager.peek(s.base))!;
    if (s0) assert.equal((await other.manager.load(s0.id))?.rawAttributes.i, s0.rawAttributes.i);
  } finally {
    stopAll(nodes);
  }
});

test('expiry without synchronized clocks: a session live on its owner never expires on a replica', async () => {
  const cfg = { maxInactiveMs: 60_000, graceMs: 20_000, accessNotifyMs: 10_000, flushIntervalMs: 100, sweepIntervalMs: 1_000 };
  const { nodes } = await startCluster(2, cfg);
  const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
  try {
    assert.notEqual(a.clock.now(), b.clock.now(), 'clocks differ by ~1e9 ms');
    const s = a.manager.create();
    s.attributes.x = 1;
    await a.manager.commit(s);
    await settle();
    // 10 minutes of read-only requests every 15 s: the replica must keep it
    for (let t = 0; t < 600_000; t += 15_000) {
      advanceAll(nodes, 15_000);
      const got = await a.manager.load(s.id);
      assert.ok(got, `owner keeps it at t=${t}`);
      await a.manager.commit(got);
      advanceAll(nodes, 100);
      await settle();
      assert.ok(b.manager.peek(s.base), `replica keeps it at t=${t}`);
    }
    // idle: the owner expires it and tells the replica
    advanceAll(nodes, 61_000);
    await settle();
    assert.equal(a.manager.peek(s.base), undefined);
    assert.equal(b.manager.peek(s.base), undefined);
    // owner dies: the replica expires its copy only after maxInactive + grace
    const s2 = a.manager.create();
    s2.attributes.y = 1;
    await a.manager.commit(s2);
    await settle();
    a.channel.destroy();
    a.manager.destroy();
    b.clock.advance(70_000);
    assert.ok(b.manager.peek(s2.base), 'within interval + grace');
    b.clock.advance(12_000);
    assert.equal(b.manager.peek(s2.base), undefined);
  } finally {
    stopAll(nodes);
  }
});

test('events: created, attributeChanged, destroyed; optionally on replicas', async () => {
  const { nodes } = await startCluster(2, { replicaEvents: true, consistency: 'sync' });
  const [a, b] = nodes as [typeof nodes[0], typeof nodes[0]];
  try {
    const ev: string[] = [];
    for (const n of nodes) {
      n.manager.on('created', (e) => ev.push(`${n.route} created replica=${e.replica}`));
      n.manager.on('attributeChanged', (e) => ev.push(`${n.route} ${e.name} replica=${e.replica}`));
      n.manager.on('destroyed', (e) => ev.push(`${n.route} destroyed ${e.reason} replica=${e.replica}`));
    }
    const s = a.manager.create();
    s.attributes.k = 1;
    await a.manager.commit(s);
    await a.manager.invalidate(s);
    assert.deepEqual(ev.sort(), [
      'n1 created replica=false', 'n1 destroyed invalidated replica=false', 'n1 k replica=false',
      'n2 created replica=true', 'n2 destroyed invalidated replica=true', 'n2 k replica=true',
    ]);
    void b;
  } finally {
    stopAll(nodes);
  }
});

test('a restarted node receives the sessions by state transfer before it is ready', async () => {
  const { hub, nodes } = await startCluster(2, { transferChunk: 50 });
  try {
    const [a] = nodes as [typeof nodes[0]];
    for (let i = 0; i < 500; i++) {
      const s = a.manager.create();
      s.attributes.i = i;
      await a.manager.commit(s);
    }
    await settle();
    const c = await startNode(hub, 'n3', { transferChunk: 50 });
    nodes.push(c);
    assert.equal(c.manager.ready, true);
    assert.equal(c.manager.getStats().sessions, 500);
    assert.equal(c.manager.getStats().lastTransfer?.complete, true);
    assert.equal(c.manager.getStats().lastTransfer?.chunks, 10);
    assert.equal(c.channel.self.meta.ready, 'true');
  } finally {
    stopAll(nodes);
  }
});

test("syncAcks 'one': a sync commit returns as soon as one holder applied; a hung peer does not delay it", async () => {
  const { hub, nodes } = await startCluster(3, { consistency: 'sync', syncAcks: 'one', syncTimeoutMs: 2000 });
  try {
    const [a, b, c] = nodes as [typeof nodes[0], typeof nodes[0], typeof nodes[0]];
    hub.hold = (m) => m.to === c.channel.self.id && m.topic === Topic.Delta;
    const s = a.manager.create();
    s.attributes.k = 1;
    const t0 = performance.now();
    const r = await a.manager.commit(s);
    assert.ok(performance.now() - t0 < 1500, 'did not wait for the hung peer (syncTimeoutMs 2000)');
    assert.deepEqual(r.replicatedTo, [b.channel.self.id]);
    assert.equal(b.manager.peek(s.id)?.rawAttributes.k, 1);
  } finally {
    hub.held.length = 0;
    stopAll(nodes);
  }
});

test('an unknown id does not fan out: at most the named live owner (or the placement) is asked', async () => {
  for (const mode of ['all-to-all', 'backup'] as const) {
    const { hub, nodes } = await startCluster(4, { mode });
    try {
      const a = nodes[0]!;
      const before = hub.sent.get(Topic.Get) ?? 0;
      const bogus = 'A'.repeat(24);
      assert.equal(await a.manager.load(`${bogus}.zz9`), undefined);
      const deadRoute = hub.sent.get(Topic.Get) ?? 0;
      if (mode === 'backup') assert.ok(deadRoute - before <= 2, `backup: orphan holders only (${deadRoute - before})`);
      else assert.equal(deadRoute - before, 0, 'all-to-all: an id nobody holds is not asked for');
      assert.equal(await a.manager.load(`${bogus}.n2`), undefined);
      const liveRoute = (hub.sent.get(Topic.Get) ?? 0) - deadRoute;
      assert.ok(liveRoute <= 2, `${mode}: live owner asked first (${liveRoute} requests)`);
    } finally {
      stopAll(nodes);
    }
  }
});
