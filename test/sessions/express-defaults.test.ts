/**
 * Cohort's req.session with express-session's defaults and meanings: resave and saveUninitialized default
 * to true (with express-session's deprecation notice when left unset; explicit false still works); reload()
 * replaces req.session with the stored copy, discarding the request's unsaved changes (replicated on two
 * nodes, and Redis on two nodes); a malformed session cookie gives a new session and a counted outcome.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Registry } from 'prom-client';
import { withSessions, type SessionMiddlewareOptions, type SessionRequest } from '../../src/sessions/http/middleware.js';
import type { SessionManager } from '../../src/sessions/contract.js';
import { newSessionCookieCounts, registerSessionCookieMetric } from '../../src/sessions/http/cookie-metrics.js';
import { redisManagerFromConfig } from '../../src/sessions/redis/from-config.js';
import { startCluster, stopAll } from './helpers/fixture.js';
import { closeServer, cookieFrom, get, listen } from './helpers/http.js';
import { redisUnavailableReason, startRedis } from './helpers/redis-server.js';

type Handler = (req: SessionRequest, res: ServerResponse) => void | Promise<void>;

async function serve(managers: readonly SessionManager[], options: SessionMiddlewareOptions, routes: Record<string, Handler>) {
  const servers: Array<Awaited<ReturnType<typeof listen>>> = [];
  for (const m of managers) {
    servers.push(await listen(withSessions(m, async (req, res) => {
      const h = routes[(req as IncomingMessage).url ?? ''];
      if (!h) return void res.writeHead(404).end();
      try {
        await h(req, res);
      } catch (e) {
        res.writeHead(500).end((e as Error).message);
      }
    }, options)));
  }
  return { url: (i: number) => servers[i]!.url, close: async () => { for (const s of servers) await closeServer(s.server); } };
}

function recordingLogger() {
  const warnings: Array<{ code?: string; msg: string }> = [];
  return { warnings, logger: { debug() {}, info() {}, error() {}, warn: (o: object, msg: string) => void warnings.push({ ...(o as { code?: string }), msg }) } };
}

test('resave and saveUninitialized default to true (express-session): an untouched session is stored and its cookie set, an unchanged one stored again; explicit false keeps nothing', async () => {
  const { nodes } = await startCluster(1, { consistency: 'sync' });
  const m = nodes[0]!.manager;
  const rec = recordingLogger();
  const routes: Record<string, Handler> = { '/': (_req, res) => void res.end('untouched') };
  const d = await serve([m], { logger: rec.logger }, routes);
  const off = await serve([m], { resave: false, saveUninitialized: false, logger: recordingLogger().logger }, routes);
  try {
    assert.deepEqual(rec.warnings.map((w) => [w.code, w.msg]), [
      ['COHORT_SESSION_OPTION_DEFAULTED', 'undefined resave option; provide resave option'],
      ['COHORT_SESSION_OPTION_DEFAULTED', 'undefined saveUninitialized option; provide saveUninitialized option'],
    ], 'express-session\'s deprecation notices, once per middleware');
    const r = await get(`${d.url(0)}/`);
    const jar = cookieFrom(r.setCookie);
    assert.ok(jar, 'saveUninitialized (default): the cookie of an untouched new session');
    const id = jar.split('=')[1]!;
    assert.equal(m.peek(id)?.version, 1, 'and the session is stored');
    await get(`${d.url(0)}/`, jar);
    assert.equal(m.peek(id)?.version, 2, 'resave (default): stored again although unchanged');
    // explicit false: express-session's recommended settings
    const before = m.getStats().owned;
    const n = await get(`${off.url(0)}/`);
    assert.deepEqual(n.setCookie, [], 'saveUninitialized: false — no cookie');
    assert.equal(m.getStats().owned, before, 'and no session');
    await get(`${off.url(0)}/`, jar);
    assert.equal(m.peek(id)?.version, 2, 'resave: false — an unchanged session is not stored again');
  } finally {
    await d.close();
    await off.close();
    stopAll(nodes);
  }
});

/** The reload routes shared by the replicated and the Redis runs; `other` is the second node's manager. */
function reloadRoutes(other: () => SessionManager): Record<string, Handler> {
  return {
    '/login': (req, res) => {
      req.session.user = 'bob';
      req.session.n = 1;
      req.session.cart = { items: ['a'] };
      res.end();
    },
    '/edit': async (req, res) => {
      req.session.n = 99;
      req.session.extra = 'x';
      delete req.session.user;
      (req.session.cart as { items: string[] }).items.push('b');
      req.session.cookie.maxAge = 1234;
      await req.session.reload();
      res.end(JSON.stringify({ n: req.session.n, extra: req.session.extra ?? null, user: req.session.user, cart: req.session.cart, maxAge: req.session.cookie.originalMaxAge }));
    },
    '/race': async (req, res) => {
      req.session.n = 50;
      // meanwhile, a request on the other node commits n = 7
      const s = await other().load(req.sessionID);
      (s!.attributes as Record<string, unknown>).n = 7;
      await other().commit(s!, { sync: true });
      await new Promise((r) => void req.session.reload(r));
      res.end(String(req.session.n));
    },
    '/saved-then-reload': async (req, res) => {
      req.session.fresh = 1;
      await req.session.save();
      req.session.fresh = 2;
      await req.session.reload();
      res.end(String(req.session.fresh));
    },
    '/read': (req, res) => void res.end(JSON.stringify({ n: req.session.n, user: req.session.user, extra: req.session.extra ?? null, cart: req.session.cart })),
  };
}

async function reloadScenario(managers: readonly SessionManager[]) {
  const s = await serve(managers, { resave: false, saveUninitialized: false }, reloadRoutes(() => managers[0]!));
  try {
    const jar = cookieFrom((await get(`${s.url(0)}/login`)).setCookie)!;
    const e = await get(`${s.url(1)}/edit`, jar);
    assert.equal(e.status, 200, e.body);
    assert.deepEqual(JSON.parse(e.body), { n: 1, extra: null, user: 'bob', cart: { items: ['a'] }, maxAge: null }, 'req.session is the stored copy: the unsaved changes (the cookie\'s lifetime too) are gone');
    const jar2 = cookieFrom(e.setCookie) ?? jar; // the take-over may have rewritten the route
    assert.deepEqual(JSON.parse((await get(`${s.url(0)}/read`, jar2)).body), { n: 1, user: 'bob', extra: null, cart: { items: ['a'] } }, 'nothing of the discarded changes was committed at the end of the request');
    const r = await get(`${s.url(1)}/race`, jar2);
    assert.equal(r.body, '7', 'reload sees the other node\'s commit, not this request\'s unsaved write');
    assert.equal((await get(`${s.url(0)}/saved-then-reload`)).body, '1', 'a new session saved in this request: reload goes back to what was saved');
  } finally {
    await s.close();
  }
}

test('reload() on the replicated manager, two nodes: req.session becomes the stored copy (express-session)', async () => {
  const { nodes } = await startCluster(2, { consistency: 'sync' });
  try {
    await reloadScenario(nodes.map((n) => n.manager));
  } finally {
    stopAll(nodes);
  }
});

const noRedis = redisUnavailableReason();
test('reload() on the Redis manager, two nodes: req.session becomes the stored copy (express-session)', { skip: noRedis }, async () => {
  const redis = (await startRedis())!;
  const managers = ['r1', 'r2'].map((route) => redisManagerFromConfig({ redis: { url: redis.url, prefix: 'reload:' }, route }));
  try {
    for (const m of managers) await m.start();
    await reloadScenario(managers);
  } finally {
    for (const m of managers) await m.close();
    await redis.stop();
  }
});

test('a malformed Cohort session cookie gives a new session and is counted (cohort_session_cookies_rejected_total), never an error page', async () => {
  const { nodes } = await startCluster(1, { consistency: 'sync' });
  const counts = newSessionCookieCounts();
  const registry = new Registry();
  registerSessionCookieMetric(registry, counts);
  const s = await serve([nodes[0]!.manager], { resave: false, saveUninitialized: false, cookieCounts: counts }, {
    '/': (req, res) => {
      req.session.n = ((req.session.n as number | undefined) ?? 0) + 1;
      res.end(String(req.session.n));
    },
  });
  try {
    const bad = ['JSESSIONID=%E0%A4%A', 'JSESSIONID=not a cohort id', `JSESSIONID=${'A'.repeat(5000)}.n1`, 'JSESSIONID=AAAAAAAAAAAAAAAAAAAAAAAA.bad/route', 'JSESSIONID=""'];
    for (const c of bad) {
      const r = await get(`${s.url(0)}/`, c);
      assert.deepEqual([r.status, r.body], [200, '1'], `a new session for ${c.slice(0, 40)}`);
      const fresh = cookieFrom(r.setCookie);
      assert.match(fresh ?? '', /^JSESSIONID=[A-Za-z0-9_-]{22,}\.n1$/, 'a new routed cookie replaces the bad one');
    }
    const unknown = await get(`${s.url(0)}/`, 'JSESSIONID=AAAAAAAAAAAAAAAAAAAAAAAA.n1');
    assert.equal(unknown.body, '1');
    const p = await get(`${s.url(0)}/;jsessionid=%%%`);
    assert.deepEqual([p.status, p.body], [200, '1'], 'a malformed ;jsessionid= parameter too');
    // the empty quoted value is no id at all: not counted
    assert.deepEqual(counts, { malformed: 5, unknown: 1 });
    const text = await registry.metrics();
    assert.match(text, /cohort_session_cookies_rejected_total\{reason="malformed"\} 5/);
    assert.match(text, /cohort_session_cookies_rejected_total\{reason="unknown"\} 1/);
  } finally {
    await s.close();
    stopAll(nodes);
  }
});
