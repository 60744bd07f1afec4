/**
 * Two real balancer processes that learn the same two real `cohort node` processes from the cluster
 * (discovery, no static members) form a fleet: a discovered node disabled on one balancer stops getting
 * traffic from both; the members are matched by the URL the nodes publish.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TestCluster, freePort, waitFor, type RunningBalancer } from '../helpers/cluster-procs.js';

test('a fleet of two discovering balancers agrees on a discovered node\'s flags', { timeout: 90_000 }, async () => {
  const cluster = new TestCluster();
  try {
    await cluster.define(['tc1', 'tc2']);
    await Promise.all(['tc1', 'tc2'].map((r) => cluster.start(r)));
    const token = randomBytes(24).toString('hex');
    const lbPorts = [await freePort(), await freePort()];
    const nodes = cluster.specs.map((s) => `127.0.0.1:${s.clusterPort}`);
    const lbs: RunningBalancer[] = [];
    for (const port of lbPorts) {
      lbs.push(await cluster.startBalancer({
        listen: '127.0.0.1:0',
        accesslog: false,
        loglevel: 'warn',
        persist: false,
        balancers: [{ name: 'tc', slowstart: 0, members: [] }],
        mounts: [{ path: '/examples', balancer: 'tc' }],
        cluster: { listen: `127.0.0.1:${port}`, secretFile: cluster.secretFile, members: [...nodes, ...lbPorts.filter((p) => p !== port).map((p) => `127.0.0.1:${p}`)] },
        manager: { listen: '127.0.0.1:0', token },
      }));
    }
    const api = async (lb: RunningBalancer, path: string, init: RequestInit = {}) => {
      const r = await fetch(`${lb.manager}/balancer-manager/api${path}`, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, signal: AbortSignal.timeout(5000) });
      return { status: r.status, body: (await r.json()) as any };
    };
    for (const lb of lbs) {
      await waitFor(async () => (await api(lb, '/balancers/tc')).body.members.length === 2, 15_000, 'the balancer to learn tc1 and tc2');
      await waitFor(async () => (await api(lb, '/sources/fleet')).body.peers.length === 1, 15_000, 'the balancer to see its peer');
    }
    assert.equal((await api(lbs[0]!, '/balancers/tc/members/tc1', { method: 'POST', body: JSON.stringify({ status: { disabled: true } }) })).status, 200);
    await waitFor(async () => (await api(lbs[1]!, '/balancers/tc/members/tc1')).body.status.includes('disabled'), 5000, 'the peer to disable tc1');
    for (const lb of lbs) {
      for (let i = 0; i < 6; i++) {
        const r = await fetch(`${lb.url}/examples/instance.txt`, { signal: AbortSignal.timeout(5000) });
        assert.equal(r.status, 200);
        assert.match(await r.text(), /tc2/, 'only tc2 serves');
      }
    }
  } finally {
    await cluster.stopAll();
  }
});
