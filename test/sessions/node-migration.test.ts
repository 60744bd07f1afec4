/**
 * `sessions.migrate` from `cohort node`'s config, in a real `cohort node` process: the connect-redis case
 * (express-session + connect-redis wrote the session in a real redis-server; `connect.sid` signed with the
 * secret read from `secretFile`) and the Tomcat-style `JSESSIONID` (unsigned, `;jsessionid=`, sessions in a
 * Redis under a prefix). The outcomes appear on the node's /.cohort/metrics; the keys are validated by zod.
 * `sessions.resave` / `saveUninitialized` set in the config apply to Cohort's req.session.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import session from 'express-session';
import { RedisStore } from 'connect-redis';
import { createClient } from 'redis';
import { parseNodeConfig } from '../../src/node/config.js';
import { BIN } from '../helpers/cluster-procs.js';
import { spawnNode, type SpawnedNode } from './helpers/node-process.js';
import { redisUnavailableReason, startRedis, type RedisInstance } from './helpers/redis-server.js';
import { closeServer, cookieFrom, forgeSignature, get, listen } from './helpers/http.js';

const skip = redisUnavailableReason();
const SECRET = 'the old secret';
let redis: RedisInstance | undefined;
let client: ReturnType<typeof createClient>;
let dir: string;

const APP = `
export default function app(req, res) {
  if (req.url === '/touch') { req.session.n = (req.session.n ?? 0) + 1; }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ user: req.session.user ?? null, cart: req.session.cart ?? null, url: req.url }));
}
`;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-node-migration-'));
  writeFileSync(join(dir, 'app.mjs'), APP);
});
before(async () => {
  if (skip) return;
  redis = await startRedis();
  client = createClient({ url: redis!.url });
  await client.connect();
});
after(async () => {
  if (!skip) {
    await client.quit();
    await redis?.stop();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function startNode(name: string, sessions: Record<string, unknown>): Promise<SpawnedNode> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, JSON.stringify({ node: { route: name, app: join(dir, 'app.mjs'), listen: '127.0.0.1:0', shutdownTimeout: 1, sessions: { store: 'redis', redis: { url: redis!.url, prefix: `cohort-${name}:` }, ...sessions } } }));
  return spawnNode(process.execPath, [BIN, 'node', '--config', file, '--log-level', 'warn'], { route: name, readyPattern: /ready on (http:\/\/[\d.:]+)/, timeoutMs: 20_000 });
}

const metric = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);

test('sessions.migrate keys are validated by zod with the node config (file, key, expected)', () => {
  const base = { route: 'n1', app: 'app.mjs' };
  const ok = parseNodeConfig({ ...base, sessions: { migrate: { cookie: 'connect.sid', secret: 'k', store: { redis: 'redis://10.0.0.5:6379' } } } });
  assert.deepEqual(ok.sessions.migrate?.store.redis, { url: 'redis://10.0.0.5:6379', prefix: 'sess:', client: 'node-redis', db: 0, commandTimeoutMs: 2000 }, 'connect-redis\'s prefix by default');
  assert.equal(ok.sessions.migrate?.clearOldCookie, true);
  assert.throws(() => parseNodeConfig({ ...base, sessions: { migrate: { cookie: 'connect.sid', secret: 'k', secretFile: '/x', store: { redis: 'redis://h:1' } } } }), /node\.sessions\.migrate\.secretFile: expected secret or secretFile, not both/);
  assert.throws(() => parseNodeConfig({ ...base, sessions: { migrate: { cookie: 'JSESSIONID', store: {} } } }), /node\.sessions\.migrate\.store: expected exactly one of redis/);
  assert.throws(() => parseNodeConfig({ ...base, sessions: { migrate: { cookie: 'JSESSIONID', store: { redis: 'http://h:1' } } } }), /node\.sessions\.migrate\.store\.redis\.url: expected redis:\/\/host:port/);
  assert.throws(() => parseNodeConfig({ ...base, sessions: { migrate: { cookie: 'bad name', store: { module: './s.js' } } } }), /node\.sessions\.migrate\.cookie: expected a cookie name/);
  assert.throws(() => parseNodeConfig({ ...base, sessions: { saveUninitialized: 'no' } }), /node\.sessions\.saveUninitialized/);
});

test('cohort node, connect-redis case: the connect.sid user keeps their session (imported from the real Redis connect-redis wrote), counted on /.cohort/metrics', { skip, timeout: 60_000 }, async () => {
  // The old app: express-session + connect-redis.
  const old = express();
  old.use(session({ store: new RedisStore({ client }), secret: SECRET, resave: false, saveUninitialized: false }));
  old.get('/login', (req, res) => {
    Object.assign(req.session, { user: 'alice', cart: ['book'] });
    res.end('ok');
  });
  const l = await listen(old);
  let connectSid: string;
  try {
    connectSid = cookieFrom((await get(`${l.url}/login`)).setCookie, 'connect.sid')!;
  } finally {
    await closeServer(l.server);
  }
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `another secret\n${SECRET}\n`);
  const n = await startNode('m1', { saveUninitialized: false, resave: false, migrate: { cookie: 'connect.sid', secretFile, store: { redis: redis!.url } } });
  try {
    const r = await get(`${n.url}/`, connectSid);
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { user: 'alice', cart: ['book'], url: '/' }, 'logged in, data kept');
    const jsid = cookieFrom(r.setCookie)!;
    assert.match(jsid, /^JSESSIONID=[A-Za-z0-9_-]{22,}\.m1$/, 'a new routed Cohort id');
    assert.match(r.setCookie.find((c) => c.startsWith('connect.sid='))!, /Expires=Thu, 01 Jan 1970/, 'the old cookie is cleared');
    assert.deepEqual(JSON.parse((await get(`${n.url}/`, jsid)).body).user, 'alice', 'served from Cohort from now on');
    // bad input: a new session, counted, no error page
    const forged = forgeSignature(connectSid);
    const f = await get(`${n.url}/`, forged);
    assert.deepEqual([f.status, JSON.parse(f.body).user], [200, null]);
    const bad = await get(`${n.url}/touch`, 'JSESSIONID=%%%not-an-id');
    assert.deepEqual([bad.status, JSON.parse(bad.body).user], [200, null]);
    assert.ok(cookieFrom(bad.setCookie), 'a malformed Cohort cookie: a new session');
    const untouched = await get(`${n.url}/`);
    assert.deepEqual(untouched.setCookie, [], 'sessions.saveUninitialized: false from the config: no session for an untouched request');
    const text = await (await fetch(`${n.url}/.cohort/metrics`)).text();
    assert.equal(metric(text, /cohort_session_migrations_total\{outcome="imported"[^}]*\} (\d+)/), 1, text);
    assert.equal(metric(text, /cohort_session_migrations_total\{outcome="bad-signature"[^}]*\} (\d+)/), 1);
    assert.equal(metric(text, /cohort_session_cookies_rejected_total\{reason="malformed"[^}]*\} (\d+)/), 1);
  } finally {
    await n.kill('SIGTERM');
  }
});

test('cohort node, Tomcat-style JSESSIONID: an unsigned id (cookie or ;jsessionid=) found in the old store is imported under a new id on this node; defaults store untouched sessions', { skip, timeout: 60_000 }, async () => {
  const tomcatId = 'C0FFEE0123456789ABCDEF0123456789.tc1';
  const other = 'DEADBEEF0123456789ABCDEF01234567.tc1';
  await client.set(`tomcat:${tomcatId}`, JSON.stringify({ user: 'carol', cart: ['tea'] }));
  await client.set(`tomcat:${other}`, JSON.stringify({ user: 'dave' }));
  const n = await startNode('tc1', { migrate: { cookie: 'JSESSIONID', pathParameter: 'jsessionid', store: { redis: { url: redis!.url, prefix: 'tomcat:' } } } });
  try {
    assert.ok(n.output.some((l) => /undefined saveUninitialized option; provide saveUninitialized option/.test(l)), `express-session's notice when left unset:\n${n.output.join('\n')}`);
    const r = await get(`${n.url}/cart`, `JSESSIONID=${tomcatId}`);
    assert.deepEqual(JSON.parse(r.body), { user: 'carol', cart: ['tea'], url: '/cart' });
    const jsid = cookieFrom(r.setCookie)!;
    assert.match(jsid, /^JSESSIONID=[A-Za-z0-9_-]{22,}\.tc1$/);
    assert.notEqual(jsid, `JSESSIONID=${tomcatId}`, 'the old id is not adopted');
    const p = await get(`${n.url}/x;jsessionid=${other}`);
    assert.deepEqual(JSON.parse(p.body), { user: 'dave', cart: null, url: '/x' }, 'URL rewriting: ;jsessionid= imported and stripped');
    // express-session's defaults (config leaves them unset): an untouched request gets a stored session
    const u = await get(`${n.url}/`);
    assert.ok(cookieFrom(u.setCookie), 'saveUninitialized (default true)');
    const text = await (await fetch(`${n.url}/.cohort/metrics`)).text();
    assert.equal(metric(text, /cohort_session_migrations_total\{outcome="imported"[^}]*\} (\d+)/), 2, text);
  } finally {
    await n.kill('SIGTERM');
  }
});

test('cohort node, sessions.migrate.store.module: a module exporting a Store; an unreachable old Redis: the node starts, the user gets a new session, store-failed is counted', { skip, timeout: 60_000 }, async () => {
  writeFileSync(join(dir, 'old-store.mjs'), `
const sessions = new Map([['OLDSESSION0123456789abcdef', { user: 'erin' }]]);
export default () => ({ get(sid, cb) { setImmediate(cb, null, sessions.get(sid) ?? null); } });
`);
  const n = await startNode('s1', { saveUninitialized: false, resave: false, migrate: { cookie: 'legacy.sid', store: { module: join(dir, 'old-store.mjs') } } });
  try {
    const r = await get(`${n.url}/`, 'legacy.sid=OLDSESSION0123456789abcdef');
    assert.deepEqual(JSON.parse(r.body).user, 'erin');
    assert.ok(cookieFrom(r.setCookie), 'the imported session gets its Cohort cookie');
    const none = await get(`${n.url}/`, 'legacy.sid=nobody');
    assert.deepEqual([none.status, JSON.parse(none.body).user], [200, null]);
    const text = await (await fetch(`${n.url}/.cohort/metrics`)).text();
    assert.equal(metric(text, /cohort_session_migrations_total\{outcome="imported"[^}]*\} (\d+)/), 1, text);
    assert.equal(metric(text, /cohort_session_migrations_total\{outcome="not-found"[^}]*\} (\d+)/), 1);
  } finally {
    await n.kill('SIGTERM');
  }
  // a port nothing listens on: a fresh redis-server, stopped
  const gone = (await startRedis())!;
  const url = gone.url;
  await gone.stop();
  const d = await startNode('s2', { saveUninitialized: false, resave: false, migrate: { cookie: 'connect.sid', secret: SECRET, store: { redis: { url, commandTimeoutMs: 300 } } } });
  try {
    const sid = 's:abc.' + (await import('node:crypto')).createHmac('sha256', SECRET).update('abc').digest('base64').replace(/=+$/, '');
    const r = await get(`${d.url}/touch`, `connect.sid=${encodeURIComponent(sid)}`);
    assert.deepEqual([r.status, JSON.parse(r.body).user], [200, null], 'a new session, no error page');
    assert.ok(cookieFrom(r.setCookie));
    const text = await (await fetch(`${d.url}/.cohort/metrics`)).text();
    assert.equal(metric(text, /cohort_session_migrations_total\{outcome="store-failed"[^}]*\} (\d+)/), 1, text);
    assert.ok(d.output.some((l) => /COHORT_SESSION_MIGRATION_STORE_FAILED/.test(l)), d.output.join('\n'));
  } finally {
    await d.kill('SIGTERM');
  }
});
