/**
 * The httpd + Tomcat tutorial scenario with real processes: three `cohort
 * node` processes running the demo app behind a `cohort balancer --config`
 * process. Nothing runs in the test's own process but the HTTP client; what
 * the balancer knows is read over its HTTP surfaces (the manager's JSON API).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { TestCluster, CookieJar, waitFor, health, freePort } from '../helpers/cluster-procs.js';

async function get(url: string, jar?: CookieJar): Promise<{ status: number; body: string; setCookie: string | string[] | undefined }> {
  const r = await request(url, { headers: jar?.cookie ? { cookie: jar.cookie } : {} });
  const body = await r.body.text();
  const setCookie = r.headers['set-cookie'];
  jar?.update(setCookie as never);
  return { status: r.statusCode, body, setCookie: setCookie as never };
}

/** The routes of a balancer's members, from the manager's JSON API (bearer token). */
async function memberRoutes(manager: string, token: string, balancer: string): Promise<string[]> {
  const r = await request(`${manager}/balancer-manager/api/balancers/${balancer}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await r.body.json()) as { members?: { route: string }[] };
  assert.equal(r.statusCode, 200, JSON.stringify(body));
  return (body.members ?? []).map((m) => m.route).sort();
}

test('tutorial: spread, stickiness, SIGKILL failover keeps the session, restart receives sessions', { timeout: 120_000 }, async () => {
  const cluster = new TestCluster();
  try {
    await cluster.define(['tc1', 'tc2', 'tc3']);
    await Promise.all(['tc1', 'tc2', 'tc3'].map((r) => cluster.start(r)));
    const lb = await cluster.startBalancer({
      listen: '127.0.0.1:0',
      accesslog: false,
      loglevel: 'warn',
      persist: false,
      balancers: [{
        name: 'tccluster',
        maxattempts: 2,
        members: cluster.specs.map((s) => ({ route: s.route, url: `http://127.0.0.1:${s.httpPort}`, retry: 5 })),
        hcheck: { path: '/.cohort/health', interval: 0.5, timeout: 1, rise: 1, fall: 2 },
      }],
      mounts: [{ path: '/examples', balancer: 'tccluster', upstream: '/examples' }],
    });
    const base = lb.url;

    // Without a cookie, instance.txt spreads over the nodes.
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const r = await get(`${base}/examples/instance.txt`);
      assert.equal(r.status, 200);
      seen.set(r.body.trim(), (seen.get(r.body.trim()) ?? 0) + 1);
    }
    assert.deepEqual([...seen.keys()].sort(), ['tc1', 'tc2', 'tc3']);
    assert.deepEqual([...seen.values()], [10, 10, 10]);

    // With a session cookie every request sticks.
    const jar = new CookieJar();
    let count = 0;
    for (let i = 0; i < 5; i++) {
      const r = await get(`${base}/examples/counter`, jar);
      const m = /node=(\S+) session=(\S+) count=(\d+)/.exec(r.body)!;
      assert.ok(m, r.body);
      count = Number(m[3]);
      assert.equal(count, i + 1);
      assert.equal(m[1], jar.route, 'served by the node named in the route');
    }
    const owner = jar.route!;

    // Wait until the replicas hold the session (async replication).
    await waitFor(async () => {
      const others = cluster.specs.filter((s) => s.route !== owner);
      const h = await Promise.all(others.map((s) => health(`http://127.0.0.1:${s.httpPort}`)));
      return h.every((x) => (x?.sessions ?? 0) >= 1);
    }, 5000, 'replicas to hold the session');

    // SIGKILL the session's owner: the next request is served by another node, the count continues, the route is rewritten.
    await cluster.kill(owner);
    const r = await get(`${base}/examples/counter`, jar);
    assert.equal(r.status, 200, r.body);
    const m = /node=(\S+) session=(\S+) count=(\d+)/.exec(r.body)!;
    assert.notEqual(m[1], owner);
    assert.equal(Number(m[3]), count + 1, 'the count continues (n+1, not 1)');
    assert.equal(jar.route, m[1], 'the cookie route was rewritten to the new owner');
    assert.ok(typeof r.setCookie !== 'undefined');

    // Restart the node: it receives the sessions, reports ready and takes traffic again.
    await cluster.start(owner);
    const h = await health(`http://127.0.0.1:${cluster.spec(owner).httpPort}`);
    assert.ok((h?.sessions ?? 0) >= 1, 'the restarted node received the sessions by state transfer');
    await waitFor(async () => {
      const routes = new Set<string>();
      for (let i = 0; i < 6; i++) routes.add((await get(`${base}/examples/instance.txt`)).body.trim());
      return routes.has(owner);
    }, 10_000, 'the restarted node to take traffic again');
    assert.equal(lb.child.exitCode, null, `the balancer process is still running (stderr: ${lb.stderr.slice(-1000)})`);
  } finally {
    await cluster.stopAll();
  }
});

test('a node added at runtime is picked up by the balancer with no config edit', { timeout: 60_000 }, async () => {
  const cluster = new TestCluster();
  try {
    await cluster.define(['tc1', 'tc2']);
    await Promise.all(['tc1', 'tc2'].map((r) => cluster.start(r)));
    // The balancer's channel port must be known before it starts: tc3 names it as a member.
    const lbClusterPort = await freePort();
    const token = randomBytes(24).toString('hex');
    const lb = await cluster.startBalancer({
      listen: '127.0.0.1:0',
      accesslog: false,
      loglevel: 'warn',
      persist: false,
      balancers: [{ name: 'tccluster', members: [] }],
      mounts: [{ path: '/examples', balancer: 'tccluster' }],
      cluster: { listen: `127.0.0.1:${lbClusterPort}`, secretFile: cluster.secretFile, members: cluster.specs.map((s) => `127.0.0.1:${s.clusterPort}`) },
      manager: { listen: '127.0.0.1:0', token },
    });
    const manager = lb.manager!;
    await waitFor(async () => (await memberRoutes(manager, token, 'tccluster')).length === 2, 10_000, 'the balancer to learn tc1 and tc2');
    assert.deepEqual(await memberRoutes(manager, token, 'tccluster'), ['tc1', 'tc2']);
    const configBefore = readFileSync(lb.configFile, 'utf8');
    // A third node joins with the static member list (tc1, tc2 and the balancer's channel):
    // nothing in the balancer's configuration changes.
    await cluster.define(['tc3']);
    await cluster.start('tc3', undefined, ['--member', `127.0.0.1:${lbClusterPort}`]);
    await waitFor(async () => (await memberRoutes(manager, token, 'tccluster')).includes('tc3'), 10_000, 'the balancer to learn tc3');
    const routes = new Set<string>();
    for (let i = 0; i < 9; i++) routes.add((await get(`${lb.url}/examples/instance.txt`)).body.trim());
    assert.deepEqual([...routes].sort(), ['tc1', 'tc2', 'tc3']);
    assert.equal(readFileSync(lb.configFile, 'utf8'), configBefore, 'the balancer config file was not edited');
    // It leaves (SIGKILL): the balancer removes it.
    await cluster.kill('tc3');
    await waitFor(async () => !(await memberRoutes(manager, token, 'tccluster')).includes('tc3'), 10_000, 'the balancer to drop tc3');
    assert.equal(lb.child.exitCode, null, `the balancer process is still running (stderr: ${lb.stderr.slice(-1000)})`);
  } finally {
    await cluster.stopAll();
  }
});
