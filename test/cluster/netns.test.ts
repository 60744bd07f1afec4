/**
 * Network namespaces: three hosts on a bridge, each its own address, multicast
 * discovery across them; one host's link cut → the others remove it; link
 * restored → it is back; a host with the wrong secret never joins.
 * Needs root and `ip netns` (CI is root); skipped otherwise, with the reason.
 * Everything lives in namespaces of its own (the bridge too): the host's
 * network is not touched, and deleting the namespaces removes every link.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { Proc } from './procs.js';
import { ip, netnsUnavailable } from '../helpers/netns.js';

const SECRET = 'netns-secret-0123456789abcdef';
const tag = `coh${process.pid % 100000}`;
const sw = `${tag}-sw`;
const hosts = [1, 2, 3, 4].map((i) => `${tag}-h${i}`);
const net3 = 100 + Math.floor(Math.random() * 150);
const ipOf = (i: number) => `10.213.${net3}.${i}`;

function unavailable(): string | undefined {
  return netnsUnavailable(tag);
}

function setup(): void {
  ip('netns', 'add', sw);
  ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0');
  ip('-n', sw, 'link', 'set', 'br0', 'up');
  hosts.forEach((h, k) => {
    const i = k + 1;
    ip('netns', 'add', h);
    ip('-n', sw, 'link', 'add', `vs${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h);
    ip('-n', sw, 'link', 'set', `vs${i}`, 'master', 'br0', 'up');
    ip('-n', h, 'addr', 'add', `${ipOf(i)}/24`, 'dev', 'eth0');
    ip('-n', h, 'link', 'set', 'eth0', 'up');
    ip('-n', h, 'link', 'set', 'lo', 'up');
  });
}

function teardown(): void {
  for (const n of [sw, ...hosts]) {
    try {
      ip('netns', 'del', n);
    } catch {
      // not created
    }
  }
}

const why = unavailable();

test('netns: multicast discovery across a bridge, link cut → removed, restored → back, wrong secret never joins', { skip: why ?? false }, async () => {
  const procs: Proc[] = [];
  try {
    setup();
    const cfg = (route: string, i: number) => ({
      route,
      listen: { host: ipOf(i), port: 4000 },
      membership: { type: 'multicast', interface: ipOf(i), intervalMs: 250 },
    });
    const routes = ['a', 'b', 'c'];
    const ps = routes.map((r, k) => new Proc(r, cfg(r, k + 1), SECRET, ['ip', 'netns', 'exec', hosts[k]!]));
    procs.push(...ps);
    const x = new Proc('x', cfg('x', 4), 'wrong-secret-0123456789abcdef', ['ip', 'netns', 'exec', hosts[3]!]);
    procs.push(x);
    for (const [k, p] of ps.entries()) {
      for (const r of routes) if (r !== routes[k]) await p.wait((l) => l.ev === 'added' && l['route'] === r, 10_000, `${p.name} sees ${r}`);
    }
    const [a, b, c] = ps as [Proc, Proc, Proc];
    // cut c's link
    await new Promise((r) => setTimeout(r, 500));
    const cutAt = Date.now();
    ip('-n', sw, 'link', 'set', 'vs3', 'down');
    const ga = await a.wait((l) => l.ev === 'gone' && l['route'] === 'c' && (l['at'] as number) >= cutAt, 8000, 'a removes c');
    const gb = await b.wait((l) => l.ev === 'gone' && l['route'] === 'c' && (l['at'] as number) >= cutAt, 8000, 'b removes c');
    console.log(`netns link cut: c removed by a after ${(ga['at'] as number) - cutAt} ms (${ga['reason']}), by b after ${(gb['at'] as number) - cutAt} ms`);
    // restore
    const upAt = Date.now();
    ip('-n', sw, 'link', 'set', 'vs3', 'up');
    const backA = await a.wait((l) => (l.ev === 'back' || l.ev === 'added') && l['route'] === 'c' && (l['at'] as number) >= upAt, 10_000, 'a sees c back');
    await b.wait((l) => (l.ev === 'back' || l.ev === 'added') && l['route'] === 'c' && (l['at'] as number) >= upAt, 10_000, 'b sees c back');
    await c.wait((l) => (l.ev === 'back' || l.ev === 'added') && l['route'] === 'a' && (l['at'] as number) >= upAt, 10_000, 'c sees a back');
    console.log(`netns link restored: c back in a's view after ${(backA['at'] as number) - upAt} ms (${backA.ev})`);
    // the wrong-secret host never joined anyone, and nobody added it
    assert.ok(!x.lines.some((l) => l.ev === 'added'), 'wrong-secret host sees no member');
    for (const p of ps) assert.ok(!p.lines.some((l) => l.ev === 'added' && l['route'] === 'x'), `${p.name} never added the wrong-secret host`);
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited()));
    teardown();
  }
});
