import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settle, startCluster, startNode, stopAll } from './helpers/fixture.js';
import { closeServer, cookieFrom, get, listen } from './helpers/http.js';
import { ReplicatedSessionManager } from '../../src/sessions/replication/replicated-manager.js';
import { withSessions, type SessionRequest } from '../../src/sessions/http/middleware.js';
import { MemoryHub } from './helpers/memory-cluster.js';
import { backupRoutes } from '../../src/sessions/replication/placement.js';
import type { Session } from '../../src/sessions/model/session.js';

test('backup mode: a restarted owner pulls back the sessions placed on it, and others find sessions they do not hold', async () => {
  const { hub, nodes } = await startCluster(3, { mode: 'backup' });
  try {
    const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
    const mine: Session[] = [];
    for (let i = 0; i < 100; i++) {
      const s = a.manager.create();
      s.attributes.i = i;
      await a.manager.commit(s);
      mine.push(s);
    }
    await settle();
    // restart n1: new process (new member id), same route
    hub.kill(a.channel);
    a.manager.destroy();
    await settle(10);
    const a2 = await startNode(hub, 'n1', { mode: 'backup' });
    nodes[0] = a2;
    assert.equal(a2.manager.ready, true);
    assert.equal(a2.manager.getStats().owned, 100, 'its sessions came back by state transfer');
    for (const s of mine.slice(0, 10)) assert.equal((await a2.manager.load(s.id))?.rawAttributes.i, s.rawAttributes.i);
    // a new node holds only its share (pulled at join); it fetches the rest on demand and takes them over
    const d = await startNode(hub, 'n4', { mode: 'backup' });
    nodes.push(d);
    const held = d.manager.getStats().sessions;
    assert.ok(held > 10 && held < 60, `n4 pulled its share: ${held}`);
    for (const s of mine) {
      if (d.manager.peek(s.base)) assert.deepEqual(backupRoutes(s.base, 'n1', ['n1', 'n2', 'n3', 'n4'], 1), ['n4']);
    }
    const notOnD = mine.find((s) => !d.manager.peek(s.base))!;
    const got = await d.manager.load(notOnD.id);
    assert.equal(got?.rawAttributes.i, notOnD.rawAttributes.i);
    assert.equal(got?.route, 'n4');
    void b;
    assert.deepEqual(backupRoutes('x', 'n1', ['n1', 'n2', 'n3'], 1).length, 1);
  } finally {
    stopAll(nodes);
  }
});

test('sync commit with no acknowledging peer: COHORT_SESSION_REPLICATION_FAILED and a 503 instead of a false success', async () => {
  const hub = new MemoryHub();
  const managers: ReplicatedSessionManager[] = [];
  for (const r of ['n1', 'n2']) {
    const ch = hub.channel(r);
    await ch.start();
    const m = new ReplicatedSessionManager({ channel: ch, config: { consistency: 'sync', syncTimeoutMs: 100 } });
    await m.start();
    managers.push(m);
  }
  const srv = await listen(
    withSessions(managers[0]!, (req: SessionRequest, res) => {
      (req.session as { n?: number }).n = 1;
      res.end('ok');
    }),
  );
  try {
    const ok = await get(srv.url);
    assert.equal(ok.status, 200);
    hub.hold = (m) => m.topic === 'sessions.delta' || m.topic === 'sessions.copy';
    const bad = await get(srv.url, cookieFrom(ok.setCookie));
    assert.equal(bad.status, 503);
    assert.match(bad.body, /COHORT_SESSION_REPLICATION_FAILED/);
  } finally {
    hub.held.length = 0;
    await closeServer(srv.server);
    managers.forEach((m) => m.destroy());
  }
});

test('configuration: unknown keys and unsafe grace are rejected with the key path', () => {
  const channel = new MemoryHub().channel('n1');
  assert.throws(() => new ReplicatedSessionManager({ channel, config: { mode: 'backup', backup: 2 } as never }), /sessions: Unrecognized key/i);
  assert.throws(() => new ReplicatedSessionManager({ channel, config: { graceMs: 1000, accessNotifyMs: 5000 } }), /sessions\.graceMs: must exceed/);
  assert.throws(() => new ReplicatedSessionManager({ channel, config: { mode: 'ring' as never } }), /sessions\.mode/);
});

test('backend registry: builds the replicated and redis backends from the sessions section, rejects unknown ones', async () => {
  const { defaultSessionBackends } = await import('../../src/sessions/registry.js');
  const reg = defaultSessionBackends();
  const channel = new MemoryHub().channel('n1');
  const m = reg.create({ store: 'replicated', replication: { mode: 'backup', backups: 2 } }, { channel }, 'cohort.yaml');
  assert.ok(m instanceof ReplicatedSessionManager);
  assert.equal((m as ReplicatedSessionManager).config.backups, 2);
  assert.throws(() => reg.create({ store: 'mongo' }, { channel }, 'cohort.yaml'), /cohort\.yaml: invalid configuration[\s\S]*unknown backend "mongo"/);
  assert.throws(() => reg.create({ store: 'replicated', replication: { backups: 0 } }, { channel }, 'cohort.yaml'), /sessions\.replication\.backups/);
  assert.throws(() => reg.create({ store: 'redis', redis: { url: 'http://x' } }, { channel }), /sessions\.redis\.url/);
  const r = reg.create({ store: 'redis', redis: { url: 'redis://127.0.0.1:1' } }, { channel });
  assert.equal(r.route, 'n1');
  r.destroy();
});
