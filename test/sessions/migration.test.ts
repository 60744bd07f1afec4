/**
 * Migration with no user logged out: an app on express-session + connect-redis (real redis-server, cookie
 * `connect.sid`) with passport logins switches to Cohort. A user arriving with the old cookie keeps their
 * session — imported from Redis on first use, given a routed Cohort id, replicated to the other node; the
 * old cookie is cleared. The same for an app that keeps express-session and only swaps the store. Bad
 * input (forged signature, unknown id, oversized value, failing old store): a new session, a counted
 * outcome, no error page.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import express from 'express';
import session from 'express-session';
import passport from 'passport';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { sessionMiddleware } from '../../src/sessions/http/middleware.js';
import { cohortStore } from '../../src/sessions/http/express-store.js';
import { newMigrationCounts, unsign } from '../../src/sessions/http/migration.js';
import { registerMigrationMetric } from '../../src/sessions/http/migration-metrics.js';
import { Registry } from 'prom-client';
import { redisUnavailableReason, startRedis, type RedisInstance } from './helpers/redis-server.js';
import { startCluster, stopAll, type TestNode } from './helpers/fixture.js';
import { closeServer, forgeSignature, get, listen } from './helpers/http.js';

const skip = redisUnavailableReason();
const SECRET = 'old secret';
let redis: RedisInstance | undefined;
let client: ReturnType<typeof createClient>;
let oldStore: RedisStore;

before(async () => {
  if (skip) return;
  redis = await startRedis();
  client = createClient({ url: redis!.url });
  await client.connect();
  oldStore = new RedisStore({ client });
});
after(async () => {
  if (skip) return;
  await client.quit();
  await redis?.stop();
});

/** passport with a one-line strategy: `?user=NAME` logs NAME in. */
function makePassport() {
  const p = new passport.Passport();
  class Token extends passport.Strategy {
    override name = 'token';
    override authenticate(req: express.Request) {
      const u = req.query.user;
      if (typeof u === 'string') this.success({ id: u });
      else this.fail(401);
    }
  }
  p.use(new Token());
  p.serializeUser((u: Express.User, done) => done(null, (u as { id: string }).id));
  p.deserializeUser((id: string, done) => done(null, { id }));
  return p;
}

function routes(app: express.Express, p: ReturnType<typeof makePassport>) {
  app.use(p.session());
  app.get('/login', p.authenticate('token'), (_req, res) => void res.end('ok'));
  app.get('/me', (req, res) => {
    const s = req.session as unknown as { cart?: string[] };
    res.end(`${(req.user as { id?: string } | undefined)?.id ?? 'anonymous'} ${JSON.stringify(s.cart ?? null)}`);
  });
  app.get('/add', (req, res) => {
    const s = req.session as unknown as { cart?: string[] };
    s.cart = [...(s.cart ?? []), String(req.query.item)];
    res.end('added');
  });
}

/** The old app: express-session + connect-redis + passport. Returns the logged-in user's connect.sid cookie. */
async function oldLogin(user: string): Promise<string> {
  const app = express();
  app.use(session({ store: oldStore, secret: SECRET, resave: false, saveUninitialized: false }));
  routes(app, makePassport());
  const l = await listen(app);
  try {
    const r = await get(`${l.url}/login?user=${user}`);
    const cookie = r.setCookie.find((c) => c.startsWith('connect.sid='))!.split(';')[0]!;
    assert.equal((await get(`${l.url}/add?item=book`, cookie)).body, 'added');
    assert.equal((await get(`${l.url}/me`, cookie)).body, `${user} ["book"]`);
    return cookie;
  } finally {
    await closeServer(l.server);
  }
}

const sign = (v: string, secret: string) => `s:${v}.${createHmac('sha256', secret).update(v).digest('base64').replace(/=+$/, '')}`;
const cookieNamed = (list: string[], name: string) => list.find((c) => c.startsWith(`${name}=`));

test('unsign follows cookie-signature: every secret of a list is tried; a changed id or signature is refused', () => {
  assert.equal(unsign(sign('abc', 'k2'), ['k1', 'k2']), 'abc');
  assert.equal(unsign(sign('abc', 'k2'), ['k1']), undefined);
  assert.equal(unsign(sign('abc', 'k').replace('abc', 'abd'), ['k']), undefined);
  assert.equal(unsign('abc', ['k']), undefined);
});

test('switching to Cohort\'s req.session: the connect.sid user keeps their passport login and data, gets a routed id, replicated; bad input gets a new session', { skip, timeout: 30_000 }, async () => {
  const cookie = await oldLogin('alice');
  const { nodes } = await startCluster(2, { consistency: 'sync' });
  const counts = newMigrationCounts();
  const servers: Array<Awaited<ReturnType<typeof listen>>> = [];
  try {
    for (const n of nodes as TestNode[]) {
      const app = express();
      app.use(sessionMiddleware(n.manager, { migrate: { cookieName: 'connect.sid', secret: SECRET, store: oldStore, counts } }) as never);
      routes(app, makePassport());
      servers.push(await listen(app));
    }
    const [a, b] = servers.map((s) => s.url) as [string, string];
    const r = await get(`${a}/me`, cookie);
    assert.equal(r.body, 'alice ["book"]', 'logged in, data kept');
    const jsid = cookieNamed(r.setCookie, 'JSESSIONID')!.split(';')[0]!;
    assert.match(jsid, /^JSESSIONID=[A-Za-z0-9_-]{24}\.n1$/, 'a new routed Cohort id (the old id is not adopted)');
    assert.match(cookieNamed(r.setCookie, 'connect.sid')!, /^connect\.sid=; .*Expires=Thu, 01 Jan 1970/, 'the old cookie is cleared');
    assert.equal(counts.imported, 1);
    assert.equal((await get(`${b}/me`, jsid)).body, 'alice ["book"]', 'replicated: the other node serves it');
    // the browser sends both cookies for a while: Cohort's wins, nothing is imported twice
    assert.equal((await get(`${b}/add?item=pen`, `${jsid}; ${cookie}`)).body, 'added');
    assert.equal((await get(`${a}/me`, jsid)).body, 'alice ["book","pen"]');
    assert.equal(counts.imported, 1);
    // a login on Cohort (passport regenerates the session) works as before
    const l = await get(`${a}/login?user=bob`);
    assert.equal((await get(`${b}/me`, cookieNamed(l.setCookie, 'JSESSIONID')!.split(';')[0])).body, 'bob null');

    const forged = forgeSignature(cookie);
    const unknown = `connect.sid=${encodeURIComponent(sign('no-such-session', SECRET))}`;
    const cases: Array<[string, keyof typeof counts]> = [
      [forged, 'bad-signature'],
      [unknown, 'not-found'],
      [`connect.sid=${'x'.repeat(8000)}`, 'malformed'],
      ['connect.sid=%E0%A4%A', 'malformed'],
    ];
    for (const [c, outcome] of cases) {
      const before = counts[outcome];
      const x = await get(`${a}/me`, c);
      assert.deepEqual([x.status, x.body], [200, 'anonymous null'], `${outcome}: a new session, no error page`);
      assert.equal(counts[outcome], before + 1, outcome);
    }
    const registry = new Registry();
    registerMigrationMetric(registry, counts);
    const text = await registry.metrics();
    assert.match(text, /cohort_session_migrations_total\{outcome="imported"\} 1/);
    assert.match(text, /cohort_session_migrations_total\{outcome="malformed"\} 2/);
  } finally {
    for (const s of servers) await closeServer(s.server);
    stopAll(nodes);
  }
});

test('keeping express-session and swapping the store: the old store\'s sessions are imported on first use (importFrom) and replicated', { skip, timeout: 30_000 }, async () => {
  const cookie = await oldLogin('carol');
  const { nodes } = await startCluster(2, { consistency: 'sync' });
  const counts = newMigrationCounts();
  const Store = cohortStore(session.Store);
  const servers: Array<Awaited<ReturnType<typeof listen>>> = [];
  try {
    for (const n of nodes as TestNode[]) {
      const app = express();
      app.use(session({ store: new Store(n.manager, { importFrom: oldStore, importCounts: counts }), secret: SECRET, resave: false, saveUninitialized: false }));
      routes(app, makePassport());
      servers.push(await listen(app));
    }
    const [a, b] = servers.map((s) => s.url) as [string, string];
    assert.equal((await get(`${a}/me`, cookie)).body, 'carol ["book"]');
    assert.equal(counts.imported, 1);
    assert.equal((await get(`${b}/add?item=cup`, cookie)).body, 'added', 'served by the other node from the replicated copy');
    assert.equal((await get(`${a}/me`, cookie)).body, 'carol ["book","cup"]');
    assert.equal(counts.imported, 1, 'imported once');
    const unknown = `connect.sid=${encodeURIComponent(sign('nobody-here', SECRET))}`;
    assert.equal((await get(`${a}/me`, unknown)).body, 'anonymous null');
    assert.equal(counts['not-found'], 1);
  } finally {
    for (const s of servers) await closeServer(s.server);
    stopAll(nodes);
  }
});

test('a failing old store: counted, the request gets a new session (nothing lost for others)', async () => {
  const { nodes } = await startCluster(1);
  const counts = newMigrationCounts();
  const broken = { get: (_sid: string, cb: (e: unknown) => void) => cb(new Error('connection refused')) };
  const errors: unknown[] = [];
  const app = express();
  app.use(sessionMiddleware(nodes[0]!.manager, { migrate: { cookieName: 'connect.sid', store: broken, counts, onError: (e) => errors.push(e) } }) as never);
  app.get('/', (req, res) => void res.end(String((req.session as unknown as { n?: number }).n)));
  const l = await listen(app);
  try {
    const r = await get(`${l.url}/`, 'connect.sid=someid');
    assert.deepEqual([r.status, r.body], [200, 'undefined']);
    assert.equal(counts['store-failed'], 1);
    assert.equal(errors.length, 1);
  } finally {
    await closeServer(l.server);
    stopAll(nodes);
  }
});

test('from Tomcat behind httpd: a JSESSIONID=<id>.<jvmRoute> cookie (or ;jsessionid=) is imported from the old store, gets a new routed Cohort id under the same cookie name', async () => {
  const { nodes } = await startCluster(2, { consistency: 'sync' });
  const tomcatId = 'C0FFEE0123456789ABCDEF0123456789.tc1';
  const old = new Map<string, Record<string, unknown>>([[tomcatId, { user: 'dave', cookie: { originalMaxAge: null } }], ['D00D0123456789ABCDEF0123456789AB.tc2', { user: 'erin' }]]);
  const oldStore = { get: (sid: string, cb: (e: unknown, s?: Record<string, unknown> | null) => void) => setImmediate(cb, null, old.get(sid) ?? null) };
  const counts = newMigrationCounts();
  const servers: Array<Awaited<ReturnType<typeof listen>>> = [];
  try {
    for (const n of nodes as TestNode[]) {
      const app = express();
      app.use(sessionMiddleware(n.manager, { migrate: { cookieName: 'JSESSIONID', pathParameter: 'jsessionid', store: oldStore, counts } }) as never);
      app.get('/examples/who', (req, res) => void res.end(`${String((req.session as unknown as { user?: string }).user)} ${req.url}`));
      servers.push(await listen(app));
    }
    const [a, b] = servers.map((s) => s.url) as [string, string];
    const r = await get(`${a}/examples/who`, `JSESSIONID=${tomcatId}`);
    assert.equal(r.body, 'dave /examples/who');
    const jsid = cookieNamed(r.setCookie, 'JSESSIONID')!.split(';')[0]!;
    assert.match(jsid, /^JSESSIONID=[A-Za-z0-9_-]{24}\.n1$/, 'a new Cohort id, same cookie name');
    assert.equal(r.setCookie.length, 1, 'the same cookie is overwritten, not cleared');
    assert.equal((await get(`${b}/examples/who`, jsid)).body, 'dave /examples/who', 'replicated');
    const p = await get(`${b}/examples/who;jsessionid=D00D0123456789ABCDEF0123456789AB.tc2`);
    assert.equal(p.body, 'erin /examples/who', 'URL rewriting: the path parameter is read, and stripped for the app');
    assert.equal(counts.imported, 2);
  } finally {
    for (const s of servers) await closeServer(s.server);
    stopAll(nodes);
  }
});
