import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settle, startCluster, startNode, stopAll } from './helpers/fixture.js';
import { MemoryHub } from './helpers/memory-cluster.js';
import { Session } from '../../src/sessions/model/session.js';

/** Fills a node with `n` committed sessions of ~`bytes` JSON each (alone, so nothing is sent). */
async function fill(node: Awaited<ReturnType<typeof startNode>>, n: number, bytes: number): Promise<void> {
  const payload = 'x'.repeat(bytes - 40);
  for (let i = 0; i < n; i++) {
    const s: Session = node.manager.create();
    s.attributes.user = `u${i}`;
    s.attributes.data = payload;
    await node.manager.commit(s);
  }
}

test('state transfer: 100,000 sessions of 1 KiB to a joining node in under 5 s, in bounded chunks', async (t) => {
  const hub = new MemoryHub();
  const a = await startNode(hub, 'n1', { transferChunk: 1000 });
  const nodes = [a];
  try {
    await fill(a, 100_000, 1024);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const b = await startNode(hub, 'n2', { transferChunk: 1000 });
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    nodes.push(b);
    const st = b.manager.getStats();
    assert.equal(st.sessions, 100_000);
    assert.equal(st.lastTransfer?.complete, true);
    assert.equal(st.lastTransfer?.chunks, 100);
    t.diagnostic(`state transfer 100000 x 1 KiB: ${ms.toFixed(0)} ms wall, ${cpuMs.toFixed(0)} ms CPU (${(hub.bytes / 1048576).toFixed(0)} MiB through the in-memory channel)`);
    // The 5 s target is measured by the benchmark (node dist/bench/sessions.js), not asserted in a test.
    const sample = [...a.manager.versions().keys()][54_321]!;
    assert.deepEqual(b.manager.peek(sample)!.rawAttributes, a.manager.peek(sample)!.rawAttributes);
  } finally {
    stopAll(nodes);
  }
});

test('state transfer falls back to the next peer when one fails, and ends ready', async () => {
  const { hub, nodes } = await startCluster(2, { transferChunk: 10 });
  try {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    await fill(a, 100, 100);
    await settle();
    assert.equal(b.manager.getStats().sessions, 100);
    // the oldest peer (a) refuses transfer requests
    hub.hold = (m) => m.topic === 'never';
    const orig = a.channel.dispatch.bind(a.channel);
    a.channel.dispatch = async (from, topic, payload) => {
      if (topic === 'sessions.transfer') throw new Error('boom');
      return orig(from, topic, payload);
    };
    const c = await startNode(hub, 'n3', { transferChunk: 10 });
    nodes.push(c);
    assert.equal(c.manager.getStats().sessions, 100);
    assert.deepEqual(c.manager.getStats().lastTransfer?.peers, ['n2']);
  } finally {
    stopAll(nodes);
  }
});

test('partition heal: members that missed changes catch up (anti-entropy) and all converge', async () => {
  const { hub, nodes } = await startCluster(3);
  const [a, b, c] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
  try {
    const shared: Session[] = [];
    for (let i = 0; i < 50; i++) {
      const s = a.manager.create();
      s.attributes.i = i;
      await a.manager.commit(s);
      shared.push(s);
    }
    await settle();
    hub.partition([a.channel, b.channel], [c.channel]);
    // majority side: change, destroy and create
    for (const s of shared.slice(0, 10)) {
      (s.attributes as { i: number }).i += 1000;
      await a.manager.commit(s);
    }
    for (const s of shared.slice(10, 15)) await a.manager.invalidate(s);
    for (let i = 0; i < 5; i++) {
      const s = b.manager.create();
      s.attributes.fromB = i;
      await b.manager.commit(s);
    }
    // minority side: its own new sessions
    for (let i = 0; i < 7; i++) {
      const s = c.manager.create();
      s.attributes.fromC = i;
      await c.manager.commit(s);
    }
    await settle();
    assert.notDeepEqual(c.manager.versions(), a.manager.versions());
    hub.heal();
    await settle(30);
    const va = [...a.manager.versions()].sort();
    for (const n of [b, c]) assert.deepEqual([...n.manager.versions()].sort(), va, `${n.route} converged`);
    assert.equal(va.length, 50 - 5 + 5 + 7);
    assert.equal(c.manager.peek(shared[0]!.base)!.rawAttributes.i, 1000);
    assert.equal(c.manager.peek(shared[12]!.base), undefined, 'destroyed during the partition: stays destroyed');
  } finally {
    stopAll(nodes);
  }
});

test('writes during a state transfer: the joiner ends at the owner\'s versions (deltas ordered against transferred copies)', async (t) => {
  const hub = new MemoryHub();
  const a = await startNode(hub, 'n1', { transferChunk: 50, gapTimeoutMs: 50 });
  const nodes = [a];
  try {
    const list: Session[] = [];
    for (let i = 0; i < 2000; i++) {
      const s = a.manager.create();
      s.attributes.n = 0;
      await a.manager.commit(s);
      list.push(s);
    }
    const joining = startNode(hub, 'n2', { transferChunk: 50, gapTimeoutMs: 50 });
    for (let round = 0; round < 5; round++) {
      for (let i = round; i < 2000; i += 7) {
        (list[i]!.attributes as { n: number }).n++;
        await a.manager.commit(list[i]!);
      }
      await new Promise((r) => setImmediate(r));
    }
    const b = await joining;
    nodes.push(b);
    await settle(10);
    b.clock.advance(100);
    await settle(10);
    const va = a.manager.versions();
    const vb = b.manager.versions();
    assert.equal(vb.size, va.size);
    let behind = 0;
    for (const [k, v] of va) if (vb.get(k) !== v) behind++;
    assert.equal(behind, 0, `${behind} sessions behind`);
    const st = b.manager.getStats();
    assert.ok(st.deltasApplied + st.gapsBuffered + st.staleRejected > 0, 'deltas did arrive during the transfer');
    t.diagnostic(`during transfer: ${st.deltasApplied} deltas applied, ${st.gapsBuffered} buffered, ${st.staleRejected} stale, ${st.gapRepairs} repairs`);
  } finally {
    stopAll(nodes);
  }
});

test('partition heal in backup mode: every session ends with its owner and backup at the newest version', async () => {
  const { hub, nodes } = await startCluster(4, { mode: 'backup' });
  try {
    const [a, b, c, d] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
    const list: Session[] = [];
    for (let i = 0; i < 100; i++) {
      const s = a.manager.create();
      s.attributes.i = i;
      await a.manager.commit(s);
      list.push(s);
    }
    await settle();
    hub.partition([a.channel, b.channel], [c.channel, d.channel]);
    await settle(20);
    for (const s of list.slice(0, 30)) {
      (s.attributes as { i: number }).i += 1000;
      await a.manager.commit(s);
    }
    await settle();
    hub.heal();
    await settle(40);
    for (const s of list) {
      const { backupRoutes } = await import('../../src/sessions/replication/placement.js');
      const [bk] = backupRoutes(s.base, 'n1', ['n1', 'n2', 'n3', 'n4'], 1);
      const holder = nodes.find((n) => n.route === bk)!;
      const copy = holder.manager.peek(s.base);
      assert.ok(copy, `backup ${bk} holds ${s.rawAttributes.i}`);
      assert.equal(copy.version, s.version, `backup ${bk} at the owner's version`);
      assert.equal(copy.rawAttributes.i, s.rawAttributes.i);
    }
    void b; void c; void d;
  } finally {
    stopAll(nodes);
  }
});

test('periodic anti-entropy repairs a replica that silently missed the last delta', async () => {
  const cfg = { antiEntropyIntervalMs: 60_000 };
  const { hub, nodes } = await startCluster(2, cfg);
  try {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const s = a.manager.create();
    s.attributes.k = 'v1';
    await a.manager.commit(s);
    await settle();
    hub.hold = (m) => m.topic === 'sessions.delta';
    s.attributes.k = 'v2';
    await a.manager.commit(s);
    hub.held.length = 0; // lost, and nothing follows it
    hub.hold = undefined;
    assert.equal(b.manager.peek(s.base)!.version, 1);
    b.clock.advance(60_000);
    await settle(10);
    assert.equal(b.manager.peek(s.base)!.version, 2);
    assert.equal(b.manager.peek(s.base)!.rawAttributes.k, 'v2');
  } finally {
    stopAll(nodes);
  }
});
