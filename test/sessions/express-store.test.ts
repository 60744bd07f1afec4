/**
 * Cohort's express-session Store keeps express-session's Store contract (MemoryStore's behaviour) and what
 * connect-redis users rely on, on one node and across nodes: written on n1, read, touched, expired and
 * cleared through n2. The last tests run real express-session apps on two nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import express from 'express';
import session from 'express-session';
import { cohortStore, storeKey, DEFAULT_STORE_TTL_S, type CohortStoreOptions } from '../../src/sessions/http/express-store.js';
import { startCluster, stopAll, settle, type TestNode } from './helpers/fixture.js';
import { closeServer, get, listen } from './helpers/http.js';
import { redisUnavailableReason, startRedis } from './helpers/redis-server.js';
import { RedisSessionManager } from '../../src/sessions/redis/redis-manager.js';

const Store = cohortStore(session.Store);

/** Stores on every node of a fresh cluster, with one shared fake wall clock. */
async function stores(n: number, options: Omit<CohortStoreOptions, 'now'> = {}, config = {}) {
  const { nodes } = await startCluster(n, { consistency: 'sync', ...config });
  const wall = { t: Date.parse('2026-12-01T00:00:00Z') };
  const list = nodes.map((x) => new Store(x.manager, { ...options, now: () => wall.t }));
  return { nodes, wall, s: list, stop: () => stopAll(nodes) };
}

const iso = (ms: number) => new Date(ms).toISOString();

test('any string is a sid: ids without a route, with dots, with unsafe characters round-trip on one node and across nodes', async () => {
  const { s: [a, b], stop } = await stores(2);
  try {
    const sids = ['apple', '%', '/foo', 'abc.def.ghi', 'x'.repeat(300), 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAAAAAAAAAA.n2'];
    for (const [i, sid] of sids.entries()) await a!.set(sid, { n: i, cookie: { originalMaxAge: null, expires: null } });
    for (const [i, sid] of sids.entries()) {
      assert.deepEqual(await a!.get(sid), { n: i, cookie: { originalMaxAge: null, expires: null } }, `one node: ${sid}`);
      assert.deepEqual(await b!.get(sid), { n: i, cookie: { originalMaxAge: null, expires: null } }, `other node: ${sid}`);
    }
    assert.deepEqual(((await b!.ids()) as string[]).sort(), [...sids].sort(), 'ids() gives back the ids that were set');
    const all = (await b!.all()) as Array<{ id: string; n: number }>;
    assert.deepEqual(all.map((x) => x.id).sort(), [...sids].sort());
    assert.equal(all.find((x) => x.id === '/foo')!.n, 2);
    assert.equal(await b!.length(), sids.length);
    assert.equal(await a!.get('apples'), null, 'an unknown sid is null');
    // a sid whose digest key is taken by another session's key does not read it
    assert.equal(await a!.get(storeKey('apple')), null);
  } finally {
    stop();
  }
});

test('cookie.expires (else originalMaxAge) is honoured to the ms on every node; a session set already expired is destroyed; length/all skip expired', async () => {
  const { s: [a, b], wall, stop } = await stores(2);
  try {
    await a!.set('s1', { cookie: { originalMaxAge: 5, expires: iso(wall.t + 5) }, v: 1 });
    assert.equal(((await b!.get('s1')) as { v: number }).v, 1);
    wall.t += 5;
    assert.equal(await b!.get('s1'), null, 'expired on the other node');
    assert.equal(await a!.get('s1'), null, 'and on the writer');
    assert.equal(await a!.length(), 0);
    await a!.set('s2', { cookie: { expires: iso(wall.t + 60_000) } });
    await a!.set('s2', { cookie: { expires: iso(wall.t - 1) } });
    assert.equal(await b!.length(), 0, 'connect-redis: set with a past expiry removes the session');
    await a!.set('s3', { cookie: { expires: iso(wall.t + 1000) } });
    wall.t += 2000;
    assert.deepEqual(await b!.all(), []);
    // originalMaxAge without expires: the lifetime from now
    await a!.set('s4', { cookie: { originalMaxAge: 3000 } });
    wall.t += 2999;
    assert.ok(await b!.get('s4'));
    wall.t += 1;
    assert.equal(await b!.get('s4'), null);
  } finally {
    stop();
  }
});

test('touch stores the session and the expiry it is given, on the other node too; touching an unknown or expired sid creates nothing', async () => {
  const { s: [a, b], wall, stop } = await stores(2);
  try {
    const t0 = wall.t;
    await a!.set('t', { cookie: { originalMaxAge: 1000, expires: iso(t0 + 1000) }, user: 'bob' });
    wall.t += 900;
    await b!.touch('t', { cookie: { originalMaxAge: 1000, expires: iso(wall.t + 1000) }, user: 'bob' });
    wall.t += 900; // past the first expiry, within the touched one
    assert.deepEqual(await a!.get('t'), { cookie: { originalMaxAge: 1000, expires: iso(t0 + 1900) }, user: 'bob' });
    await b!.touch('nobody', { cookie: { expires: iso(wall.t + 1000) } });
    assert.equal(await a!.get('nobody'), null);
    wall.t += 1000;
    await b!.touch('t', { cookie: { expires: iso(wall.t + 5000) } });
    assert.equal(await a!.get('t'), null, 'an expired session is not revived by touch');
  } finally {
    stop();
  }
});

test('ttl option: number of seconds for sessions without cookie.expires (default one day), a function for every session; disableTouch', async () => {
  const { s: [a], wall, stop } = await stores(1, { ttl: 10 });
  const fn = await stores(1, { ttl: (sess) => (sess.short ? 1 : 100) });
  const noTouch = await stores(1, { disableTouch: true });
  const dflt = await stores(1);
  try {
    await a!.set('x', { v: 1 });
    wall.t += 9_999;
    assert.ok(await a!.get('x'));
    wall.t += 1;
    assert.equal(await a!.get('x'), null, 'ttl 10 s');

    const [f] = fn.s;
    await f!.set('short', { short: true, cookie: { expires: iso(fn.wall.t + 60_000) } });
    await f!.set('long', { cookie: { expires: iso(fn.wall.t + 1) } });
    fn.wall.t += 1_000;
    assert.equal(await f!.get('short'), null, 'ttl(sess) wins over cookie.expires');
    assert.ok(await f!.get('long'));

    const [n] = noTouch.s;
    await n!.set('y', { cookie: { expires: iso(noTouch.wall.t + 1000) } });
    await n!.touch('y', { cookie: { expires: iso(noTouch.wall.t + 60_000) } });
    noTouch.wall.t += 1000;
    assert.equal(await n!.get('y'), null, 'disableTouch: touch does not move the expiry');

    const [d] = dflt.s;
    await d!.set('z', { v: 1 });
    dflt.wall.t += DEFAULT_STORE_TTL_S * 1000 - 1;
    assert.ok(await d!.get('z'));
    dflt.wall.t += 1;
    assert.equal(await d!.get('z'), null);
  } finally {
    stop();
    fn.stop();
    noTouch.stop();
    dflt.stop();
  }
});

test('clear() is cluster-wide: sessions owned by n1, n2 and n3 all go, whichever node clears', async () => {
  const { s, stop } = await stores(3);
  try {
    for (const [i, st] of s.entries()) for (let k = 0; k < 3; k++) await st.set(`n${i}-${k}`, { k });
    assert.equal(await s[2]!.length(), 9);
    await s[1]!.clear();
    for (const st of s) assert.equal(await st.length(), 0);
    for (const st of s) assert.equal(await st.get('n0-1'), null);
  } finally {
    stop();
  }
});

test('a session its owner expired is expired on every node, also for reads without take-over (manager contract)', async () => {
  const { nodes } = await startCluster(2, { consistency: 'sync', maxInactiveMs: 1000, graceMs: 500, accessNotifyMs: 100, flushIntervalMs: 50 });
  const [n1, n2] = nodes as [TestNode, TestNode];
  try {
    const s = n1.manager.create();
    s.attributes.v = 1;
    await n1.manager.commit(s);
    assert.ok(await n2.manager.load(s.id, { takeOver: false }));
    // the owner is cut off: no destroy reaches n2, so n2 must apply the replica rule itself
    n1.channel.destroy();
    n2.clock.advance(1501);
    assert.equal(await n2.manager.load(s.id, { takeOver: false }), undefined);
  } finally {
    stopAll(nodes);
  }
});

test('callbacks: called once, on a later turn, with (null, value); without a callback a promise', async () => {
  const { s: [a], stop } = await stores(1);
  try {
    const calls: unknown[][] = [];
    let sync = true;
    let r: unknown;
    await new Promise<void>((done) => {
      r = a!.set('c', { v: 1 }, (...args: unknown[]) => {
        assert.equal(sync, false, 'not called synchronously');
        calls.push(args);
        done();
      });
      sync = false;
    });
    assert.equal(r, undefined);
    await new Promise<void>((done) => a!.get('c', (err, v) => (calls.push([err, v]), done())));
    await settle();
    assert.equal(calls.length, 2);
    assert.equal(calls[0]![0], null);
    assert.deepEqual(calls[1], [null, { v: 1 }]);
    assert.ok((a!.get('c') as Promise<unknown>) instanceof Promise);
    assert.deepEqual(await a!.get('c'), { v: 1 });
  } finally {
    stop();
  }
});

test('an exception thrown in a callback propagates as an uncaught exception, not an unhandled rejection', () => {
  const dist = fileURLToPath(new URL('../../', import.meta.url));
  const script = `
    import session from 'express-session';
    import { startCluster } from '${dist}test/sessions/helpers/fixture.js';
    import { cohortStore } from '${dist}src/sessions/http/express-store.js';
    const { nodes } = await startCluster(1);
    const store = new (cohortStore(session.Store))(nodes[0].manager);
    process.on('unhandledRejection', () => { console.log('UNHANDLED'); process.exit(3); });
    process.on('uncaughtException', (e) => { console.log('UNCAUGHT ' + e.message); process.exit(4); });
    store.get('nope', () => { throw new Error('from the callback'); });
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dist, encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.stdout.trim(), 'UNCAUGHT from the callback', r.stderr);
  assert.equal(r.status, 4);
});

test('real express-session on two nodes: default ids and a custom genid, written on one node, read, touched and destroyed through the other', async () => {
  const { nodes } = await startCluster(2, { consistency: 'sync' });
  const servers: Array<Awaited<ReturnType<typeof listen>>> = [];
  try {
    let n = 0;
    for (const genid of [undefined, () => `user-${++n}@example`]) {
      const urls: string[] = [];
      for (const node of nodes) {
        const store = new Store(node.manager);
        const app = express();
        app.use(session({ store, secret: 'k', resave: false, saveUninitialized: false, cookie: { maxAge: 60_000 }, ...(genid ? { genid } : {}) }));
        app.get('/inc', (req, res) => {
          const s = req.session as unknown as { n?: number };
          s.n = (s.n ?? 0) + 1;
          res.end(`${s.n} ${req.sessionID}`);
        });
        app.get('/read', (req, res) => void res.end(String((req.session as unknown as { n?: number }).n)));
        app.get('/logout', (req, res) => void req.session.destroy(() => res.end('bye')));
        const l = await listen(app);
        servers.push(l);
        urls.push(l.url);
      }
      const r1 = await get(`${urls[0]}/inc`);
      const cookie = r1.setCookie[0]!.split(';')[0]!;
      const sid = r1.body.split(' ')[1]!;
      if (genid) assert.match(sid, /^user-\d+@example$/);
      assert.equal((await get(`${urls[1]}/read`, cookie)).body, '1', 'read on the other node');
      assert.equal((await get(`${urls[1]}/inc`, cookie)).body, `2 ${sid}`, 'written on the other node, same sid');
      assert.equal((await get(`${urls[0]}/read`, cookie)).body, '2');
      const ids = (await new Store(nodes[0]!.manager).ids()) as string[];
      assert.ok(ids.includes(sid), `ids() lists ${sid}`);
      assert.equal((await get(`${urls[1]}/logout`, cookie)).body, 'bye');
      assert.equal((await get(`${urls[0]}/read`, cookie)).body, 'undefined', 'destroyed everywhere');
    }
  } finally {
    for (const l of servers) await closeServer(l.server);
    stopAll(nodes);
  }
});

test('the Store on the Redis backend: two nodes sharing a real redis-server, any sid, ids as set, expiry and clear', { skip: redisUnavailableReason() }, async () => {
  const redis = await startRedis();
  const ms = [new RedisSessionManager({ route: 'r1', url: redis!.url }), new RedisSessionManager({ route: 'r2', url: redis!.url })];
  try {
    for (const m of ms) await m.start();
    const wall = { t: Date.now() };
    const [a, b] = ms.map((m) => new Store(m, { now: () => wall.t }));
    await a!.set('apple', { v: 1, cookie: { expires: iso(wall.t + 60_000) } });
    await a!.set('AAAAAAAAAAAAAAAAAAAAAAAA.r1', { v: 2 });
    assert.deepEqual(await b!.get('apple'), { v: 1, cookie: { expires: iso(wall.t + 60_000) } });
    assert.deepEqual(((await b!.ids()) as string[]).sort(), ['AAAAAAAAAAAAAAAAAAAAAAAA.r1', 'apple']);
    await b!.touch('apple', { v: 1, cookie: { expires: iso(wall.t + 120_000) } });
    wall.t += 90_000;
    assert.ok(await a!.get('apple'), 'touched on r2, alive on r1');
    wall.t += 30_000;
    assert.equal(await a!.get('apple'), null, 'expired');
    await b!.clear();
    assert.equal(await a!.length(), 0);
  } finally {
    for (const m of ms) await m.close();
    await redis?.stop();
  }
});

test('clear() during a partition: this side at once; the other side\'s sessions when the partition heals (tombstones win)', async () => {
  const { hub, nodes } = await startCluster(2, { consistency: 'sync' });
  const [n1, n2] = nodes as [TestNode, TestNode];
  const [a, b] = [new Store(n1.manager), new Store(n2.manager)];
  try {
    await a.set('mine', { v: 1 });
    await b.set('theirs', { v: 2 });
    assert.equal(await a.length(), 2);
    hub.partition([n1.channel], [n2.channel]);
    await a.clear();
    assert.equal(await a.length(), 0, 'this side: its own and the orphaned copies');
    assert.equal(await b.length(), 2, 'the other side cannot be told yet');
    hub.heal();
    for (let i = 0; i < 50 && ((await b.length()) as number) > 0; i++) await settle(10);
    assert.equal(await b.length(), 0, 'after the heal, the tombstones reach the other side');
  } finally {
    stopAll(nodes);
  }
});
