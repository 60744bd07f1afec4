/**
 * `cohort node` runs Express apps and Fastify instances as well as plain
 * listeners: a two-node cluster per kind, a session counter that continues
 * on the other node after SIGKILL; a graceful SIGTERM leaves the cluster and
 * keeps the sessions; node metrics are served to loopback.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { request } from 'undici';
import { TestCluster, CookieJar, ROOT, DEMO_APP, waitFor, health } from '../helpers/cluster-procs.js';

async function counter(url: string, jar: CookieJar): Promise<{ node: string; count: number; kind?: string }> {
  const r = await request(`${url}/examples/counter`, { headers: { accept: 'application/json', ...(jar.cookie ? { cookie: jar.cookie } : {}) } });
  const text = await r.body.text();
  assert.equal(r.statusCode, 200, text);
  jar.update(r.headers['set-cookie'] as never);
  return JSON.parse(text) as never;
}

for (const kind of ['express', 'fastify'] as const) {
  test(`cohort node runs a ${kind} app with replicated sessions`, { timeout: 60_000 }, async (t) => {
    const cluster = new TestCluster();
    t.after(() => cluster.stopAll());
    await cluster.define(['n1', 'n2']);
    const app = join(ROOT, 'test', 'e2e', 'fixtures', `${kind}-app.mjs`);
    const [n1, n2] = await Promise.all([cluster.start('n1', app), cluster.start('n2', app)]);
    const jar = new CookieJar();
    for (let i = 1; i <= 3; i++) {
      const r = await counter(n1.url, jar);
      assert.equal(r.kind, kind);
      assert.equal(r.count, i);
      assert.equal(jar.route, 'n1');
    }
    await waitFor(async () => ((await health(n2.url))?.sessions ?? 0) >= 1, 5000, 'the copy on n2');
    await cluster.kill('n1');
    const r = await counter(n2.url, jar);
    assert.equal(r.count, 4, 'the count continues on the other node');
    assert.equal(jar.route, 'n2', 'the route was rewritten (take-over)');
  });
}

test('SIGTERM: the node leaves gracefully (exit 0, peers see it gone at once) and its sessions live on', { timeout: 60_000 }, async (t) => {
  const cluster = new TestCluster();
  t.after(() => cluster.stopAll());
  await cluster.define(['g1', 'g2']);
  const [g1, g2] = await Promise.all([cluster.start('g1'), cluster.start('g2')]);
  const jar = new CookieJar();
  await counter(g1.url, jar);
  await counter(g1.url, jar);
  await waitFor(async () => ((await health(g2.url))?.sessions ?? 0) >= 1, 5000, 'the copy on g2');
  const exited = new Promise<number | null>((r) => g1.child.once('exit', (code) => r(code)));
  const t0 = Date.now();
  process.kill(g1.child.pid!, 'SIGTERM');
  assert.equal(await exited, 0);
  await waitFor(async () => !(await health(g2.url))?.members.some((m) => m.route === 'g1'), 3000, 'g2 to see g1 gone');
  t.diagnostic(`graceful leave seen by the peer ${Date.now() - t0} ms after SIGTERM`);
  const r = await counter(g2.url, jar);
  assert.equal(r.count, 3);
});

test('node metrics: Prometheus text on /.cohort/metrics (and a configured --metrics-path) for loopback clients, not for clients relayed by a proxy', { timeout: 60_000 }, async (t) => {
  const cluster = new TestCluster();
  t.after(() => cluster.stopAll());
  await cluster.define(['m1', 'm2']);
  const [m1] = await Promise.all([cluster.start('m1', DEMO_APP, ['--metrics-path', '/metrics']), cluster.start('m2')]);
  await counter(m1.url, new CookieJar());
  const r = await request(`${m1.url}/.cohort/metrics`);
  const text = await r.body.text();
  assert.equal(r.statusCode, 200);
  assert.match(text, /cohort_node_ready\{node="m1"\} 1/);
  assert.match(text, /cohort_node_members\{state="alive",node="m1"\} 1/);
  assert.match(text, /cohort_node_sessions\{node="m1"\} 1/);
  assert.match(text, /cohort_node_peer_queue_depth\{peer="m2",node="m1"\} 0/);
  assert.match(text, /# TYPE cohort_node_peer_rtt_seconds gauge/);
  assert.match(text, /# TYPE cohort_node_replication_lag_seconds gauge/);
  const plain = await request(`${m1.url}/metrics`);
  assert.equal(plain.statusCode, 200);
  assert.match(await plain.body.text(), /cohort_node_ready\{node="m1"\} 1/);
  // a balancer on this host relays outside clients from loopback: they are judged by who they are
  for (const headers of [{ 'x-forwarded-for': '203.0.113.9' }, { forwarded: 'for=203.0.113.9;proto=http' }]) {
    for (const path of ['/metrics', '/.cohort/metrics', '/.cohort/members']) {
      const relayed = await request(`${m1.url}${path}`, { headers });
      await relayed.body.dump();
      assert.equal(relayed.statusCode, 403, `${path} ${JSON.stringify(headers)}`);
    }
  }
});
