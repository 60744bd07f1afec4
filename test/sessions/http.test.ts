import { test } from 'node:test';
import assert from 'node:assert/strict';
import express from 'express';
import session from 'express-session';
import Fastify from 'fastify';
import { MemoryHub } from './helpers/memory-cluster.js';
import { closeServer, cookieFrom, get, listen } from './helpers/http.js';
import { ReplicatedSessionManager } from '../../src/sessions/replication/replicated-manager.js';
import { sessionMiddleware, withSessions, type SessionRequest } from '../../src/sessions/http/middleware.js';
import { cohortStore } from '../../src/sessions/http/express-store.js';
import { cohortFastifySessions } from '../../src/sessions/http/fastify.js';
import { readCookie, readPathParameter, stripPathParameter } from '../../src/sessions/http/cookie.js';
import { settle } from './helpers/fixture.js';

async function managers(n: number, config = {}) {
  const hub = new MemoryHub();
  const out: ReplicatedSessionManager[] = [];
  for (let i = 1; i <= n; i++) {
    const channel = hub.channel(`n${i}`);
    await channel.start();
    const m = new ReplicatedSessionManager({ channel, config });
    await m.start();
    out.push(m);
  }
  return { hub, managers: out, stop: () => out.forEach((m) => m.destroy()) };
}

test('cookie parsing: exact name (XJSESSIONID does not fool it), quoted values, path parameter in the path only', () => {
  assert.equal(readCookie('XJSESSIONID=bad; JSESSIONID=good', 'JSESSIONID'), 'good');
  assert.equal(readCookie('a=1;JSESSIONID="q"', 'JSESSIONID'), 'q');
  assert.equal(readCookie(undefined, 'JSESSIONID'), undefined);
  assert.equal(readPathParameter('/shop/cart;jsessionid=abc.n1?x=1', 'jsessionid'), 'abc.n1');
  assert.equal(readPathParameter('/shop?q=;jsessionid=abc', 'jsessionid'), undefined);
  assert.equal(stripPathParameter('/shop/cart;jsessionid=abc.n1?x=1', 'jsessionid'), '/shop/cart?x=1');
});

test('node:http wrapper: counter over two nodes, cookie attributes, take-over rewrites the route, ;jsessionid= accepted', async () => {
  const { managers: [m1, m2], stop } = await managers(2, { consistency: 'sync' });
  const handler = (req: SessionRequest, res: import('node:http').ServerResponse) => {
    if (req.url === '/none') return void res.end('no session touched');
    if (req.url !== '/' && req.url !== '/x') return void res.writeHead(404).end(req.url);
    const s = req.session as { n?: number };
    s.n = (s.n ?? 0) + 1;
    res.end(String(s.n));
  };
  // express-session's defaults would store a session for /none too: this test asserts the opt-out.
  const a = await listen(withSessions(m1!, handler, { saveUninitialized: false }));
  const b = await listen(withSessions(m2!, handler, { saveUninitialized: false }));
  try {
    const none = await get(`${a.url}/none`);
    assert.deepEqual(none.setCookie, [], 'no session, no cookie');
    const r1 = await get(`${a.url}/`);
    assert.equal(r1.body, '1');
    const sc = r1.setCookie[0]!;
    assert.match(sc, /^JSESSIONID=[A-Za-z0-9_-]{24}\.n1; Path=\/; HttpOnly; SameSite=Lax$/);
    const c1 = cookieFrom(r1.setCookie)!;
    const r2 = await get(`${a.url}/`, c1);
    assert.equal(r2.body, '2');
    assert.deepEqual(r2.setCookie, [], 'same id: no new cookie');
    // the balancer fails over to n2: it takes the session over and rewrites the route
    const r3 = await get(`${b.url}/`, c1);
    assert.equal(r3.body, '3');
    const c2 = cookieFrom(r3.setCookie)!;
    assert.equal(c2, c1.replace(/\.n1$/, '.n2'));
    // URL rewriting: the id in the path parameter
    const r4 = await get(`${b.url}/x;jsessionid=${c2.split('=')[1]}`);
    assert.equal(r4.body, '4');
    // Secure behind a TLS-terminating proxy only when trusted
    const m3 = withSessions(m1!, handler, { cookie: { trustProxy: true } });
    const c = await listen(m3);
    const r5 = await get(`${c.url}/`, undefined, { 'x-forwarded-proto': 'https' });
    assert.match(r5.setCookie[0]!, /; Secure; SameSite=Lax$/);
    await closeServer(c.server);
  } finally {
    await closeServer(a.server);
    await closeServer(b.server);
    stop();
  }
});

test('express middleware: in-place mutation replicates, unserializable fails at the assignment, regenerate, destroy, save({sync})', async () => {
  const { managers: [m1, m2], stop } = await managers(2);
  const app = (m: ReplicatedSessionManager) => {
    const x = express();
    x.use(sessionMiddleware(m, { cookie: { name: 'SID' } }));
    x.get('/add/:sku', (req, res) => {
      const s = (req as unknown as SessionRequest).session as { cart?: { items: string[] } };
      if (!s.cart) s.cart = { items: [] };
      s.cart.items.push(req.params.sku);
      res.json(s.cart);
    });
    x.get('/cart', (req, res) => res.json(((req as unknown as SessionRequest).session as { cart?: unknown }).cart ?? null));
    x.get('/bad', (req, res) => {
      ((req as unknown as SessionRequest).session as Record<string, unknown>).fn = () => 1;
      res.end('unreachable');
    });
    x.get('/login', async (req, res) => {
      const s = (req as unknown as SessionRequest).session;
      s.changeId();
      s.user = 'ann';
      await s.save({ sync: true });
      res.end(s.id);
    });
    x.get('/logout', (req, res, next) => (req as unknown as SessionRequest).session.destroy((err) => (err ? next(err) : res.end('bye'))));
    x.get('/regenerate', (req, res) => {
      const s = (req as unknown as SessionRequest).session;
      void s.regenerate(() => {
        s.fresh = true;
        res.json(Object.keys(s));
      });
    });
    x.use((err: Error & { code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).end(`${err.code}: ${err.message}`);
    });
    return x;
  };
  const a = await listen(app(m1!));
  const b = await listen(app(m2!));
  try {
    const r1 = await get(`${a.url}/add/apple`);
    const c1 = cookieFrom(r1.setCookie, 'SID')!;
    await get(`${a.url}/add/pear`, c1);
    await settle();
    const copy = m2!.peek(c1.split('=')[1]!)!;
    assert.deepEqual(copy.rawAttributes.cart, { items: ['apple', 'pear'] }, 'push() replicated without setAttribute');
    assert.equal((await get(`${b.url}/cart`, c1)).body, '{"items":["apple","pear"]}');
    const bad = await get(`${a.url}/bad`, c1);
    assert.equal(bad.status, 500);
    assert.match(bad.body, /^COHORT_SESSION_UNSERIALIZABLE: session attribute fn: a function/);
    // login: new id, same cart, synchronously on the peer when the response arrives
    const login = await get(`${a.url}/login`, c1);
    const c2 = cookieFrom(login.setCookie, 'SID')!;
    assert.notEqual(c2, c1);
    assert.equal(m2!.peek(c2.split('=')[1]!)?.rawAttributes.user, 'ann');
    assert.equal((await get(`${a.url}/cart`, c1)).body, 'null', 'old id is dead');
    const regen = await get(`${a.url}/regenerate`, c2);
    assert.equal(regen.body, '["fresh"]');
    const c3 = cookieFrom(regen.setCookie, 'SID')!;
    const out = await get(`${a.url}/logout`, c3);
    assert.match(out.setCookie[0]!, /^SID=; Path=\/; Max-Age=0/);
    await settle();
    assert.equal(m2!.peek(c3.split('=')[1]!), undefined);
  } finally {
    await closeServer(a.server);
    await closeServer(b.server);
    stop();
  }
});

test('express-session with the Cohort Store: an existing app becomes replicated by changing one line', async () => {
  const { managers: ms, stop } = await managers(2, { consistency: 'sync' });
  const CohortStore = cohortStore(session.Store);
  const app = (m: ReplicatedSessionManager) => {
    const store = new CohortStore(m);
    const x = express();
    x.use(session({ store, secret: 'test', resave: false, saveUninitialized: false, genid: () => store.genid(), name: 'JSESSIONID' }));
    x.get('/inc', (req, res) => {
      const s = req.session as unknown as { n?: number };
      s.n = (s.n ?? 0) + 1;
      res.end(String(s.n));
    });
    return { x, store };
  };
  const one = app(ms[0]!);
  const two = app(ms[1]!);
  const a = await listen(one.x);
  const b = await listen(two.x);
  try {
    const r1 = await get(`${a.url}/inc`);
    const c = cookieFrom(r1.setCookie)!;
    assert.equal((await get(`${a.url}/inc`, c)).body, '2');
    assert.equal((await get(`${b.url}/inc`, c)).body, '3', 'served by the other node');
    assert.equal((await get(`${a.url}/inc`, c)).body, '4');
    const len = await new Promise<number>((r, j) => two.store.length((e, n) => (e ? j(e) : r(n!))));
    assert.equal(len, 1);
    // all(): an array of the sessions with their ids (express-session's documented shape, connect-redis's)
    const all = await new Promise<Array<{ id: string; n: number }>>((r, j) => one.store.all((e, v) => (e ? j(e) : r(v as never))));
    assert.equal(all[0]!.n, 4);
    assert.ok(decodeURIComponent(c).startsWith(`JSESSIONID=s:${all[0]!.id}.`), 'the id as express-session set it')
    await new Promise<void>((r, j) => one.store.destroy(all[0]!.id, (e) => (e ? j(e) : r())));
    assert.equal((await get(`${b.url}/inc`, c)).body, '1', 'destroyed cluster-wide');
  } finally {
    await closeServer(a.server);
    await closeServer(b.server);
    stop();
  }
});

test('fastify plugin: req.session with the same surface, commit before the response', async () => {
  const { managers: [m1, m2], stop } = await managers(2, { consistency: 'sync' });
  const mk = async (m: ReplicatedSessionManager) => {
    const f = Fastify();
    await f.register(cohortFastifySessions as never, { manager: m });
    f.get('/inc', async (req) => {
      const s = (req as unknown as { session: { n?: number } }).session;
      s.n = (s.n ?? 0) + 1;
      return { n: s.n };
    });
    await f.listen({ port: 0, host: '127.0.0.1' });
    const addr = f.server.address() as import('node:net').AddressInfo;
    return { f, url: `http://127.0.0.1:${addr.port}` };
  };
  const a = await mk(m1!);
  const b = await mk(m2!);
  try {
    const r1 = await get(`${a.url}/inc`);
    const c = cookieFrom(r1.setCookie)!;
    assert.match(r1.setCookie[0]!, /HttpOnly; SameSite=Lax/);
    assert.equal((await get(`${a.url}/inc`, c)).body, '{"n":2}');
    const r3 = await get(`${b.url}/inc`, c);
    assert.equal(r3.body, '{"n":3}');
    assert.match(cookieFrom(r3.setCookie)!, /\.n2$/);
  } finally {
    await a.f.close();
    await b.f.close();
    stop();
  }
});
