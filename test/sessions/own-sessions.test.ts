/**
 * `cohort node` with an app that brings its own sessions: an unchanged Express app using express-session and
 * an unchanged Fastify app using @fastify/session, each on two real node processes. Cohort supplies the
 * store (replicated); the app's cookie name and options apply; the startup message says which layer serves.
 * A counter written on n1 continues on n2 after n1 is killed; with express-session, sessions are written on
 * one process and read, touched, expired and cleared through the other.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { request } from 'undici';
import { TestCluster, ROOT, waitFor, health } from '../helpers/cluster-procs.js';
import { extractRoute, parseStickyNames } from '../../src/balancer/sticky.js';

async function counter(url: string, cookie: string | undefined): Promise<{ body: { node: string; count: number; store: string }; cookie: string | undefined }> {
  const r = await request(`${url}/examples/counter`, { headers: cookie ? { cookie } : {} });
  const text = await r.body.text();
  assert.equal(r.statusCode, 200, text);
  const sc = ([] as string[]).concat((r.headers['set-cookie'] as string | string[] | undefined) ?? []);
  const fresh = sc.find((c) => c.startsWith('app.sid='))?.split(';')[0];
  return { body: JSON.parse(text) as never, cookie: fresh ?? cookie };
}

for (const kind of ['express-session', 'fastify-session'] as const) {
  test(`cohort node runs an unchanged ${kind} app: Cohort supplies the store, sessions replicate`, { timeout: 60_000 }, async (t) => {
    const cluster = new TestCluster();
    t.after(() => cluster.stopAll());
    await cluster.define(['n1', 'n2']);
    const app = join(ROOT, 'test', 'sessions', 'fixtures', `${kind}-app.mjs`);
    const [n1, n2] = await Promise.all([cluster.start('n1', app, ['--log-level', 'info']), cluster.start('n2', app, ['--log-level', 'info'])]);
    assert.match(n1.stderr, /Cohort supplies its store \(replicated\)/, 'the startup message says which layer serves');
    let cookie: string | undefined;
    for (let i = 1; i <= 3; i++) {
      const r = await counter(n1.url, cookie);
      cookie = r.cookie;
      assert.equal(r.body.count, i);
      assert.equal(r.body.node, 'n1');
    }
    assert.ok(cookie, 'the app\'s own cookie name');
    // the id carries the node's route (sticky through the signed cookie)
    assert.match(decodeURIComponent(cookie), kind === 'express-session' ? /^app\.sid=s:[A-Za-z0-9_-]{24}\.n1\./ : /^app\.sid=[A-Za-z0-9_-]{24}\.n1\./);
    assert.equal(extractRoute(cookie, '/', parseStickyNames('app.sid', '.'))?.route, 'n1', 'the balancer reads it');
    await waitFor(async () => ((await health(n2.url))?.sessions ?? 0) >= 1, 5000, 'the copy on n2');
    await cluster.kill('n1');
    const r = await counter(n2.url, cookie);
    assert.equal(r.body.node, 'n2');
    assert.equal(r.body.count, 4, 'the count continues on the other node');
    assert.match(r.body.store, /^Cohort/);
  });
}

test('express-session under cohort node, two real processes: write on one, read, touch, expire and clear through the other', { timeout: 60_000 }, async (t) => {
  const cluster = new TestCluster();
  t.after(() => cluster.stopAll());
  await cluster.define(['n1', 'n2']);
  const app = join(ROOT, 'test', 'sessions', 'fixtures', 'express-session-app.mjs');
  const [n1, n2] = await Promise.all([cluster.start('n1', app), cluster.start('n2', app)]);
  const call = async (url: string, path: string, cookie?: string) => {
    const r = await request(`${url}/examples/${path}`, { headers: cookie ? { cookie } : {} });
    const sc = ([] as string[]).concat((r.headers['set-cookie'] as string | string[] | undefined) ?? []);
    return { body: (await r.body.json()) as { node: string; count: number; n: number }, cookie: sc.find((c) => c.startsWith('app.sid='))?.split(';')[0] ?? cookie };
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // write on n1, read and write through n2
  const c = (await call(n1.url, 'counter')).cookie;
  assert.equal((await call(n2.url, 'counter', c)).body.count, 2);
  assert.equal((await call(n1.url, 'peek', c)).body.count, 2);
  // a session that lives 2 s idle: touched through n2 it outlives its first expiry on n1, then expires everywhere
  const s = await call(n1.url, 'short?ms=2000');
  await sleep(1200);
  assert.equal((await call(n2.url, 'peek', s.cookie)).body.count, 1, 'read (and touched) through n2');
  await sleep(1200); // 2.4 s after it was written, 1.2 s after the touch
  assert.equal((await call(n1.url, 'peek', s.cookie)).body.count, 1, 'the touch moved the expiry on n1 too');
  await sleep(2300);
  assert.equal((await call(n2.url, 'peek', s.cookie)).body.count, 0, 'expired on n2');
  assert.equal((await call(n1.url, 'peek', s.cookie)).body.count, 0, 'and on n1');
  // clear through n2: gone on n1
  assert.ok((await call(n1.url, 'length')).body.n >= 1);
  await call(n2.url, 'clear');
  assert.equal((await call(n1.url, 'length')).body.n, 0);
  assert.equal((await call(n1.url, 'peek', c)).body.count, 0);
});
