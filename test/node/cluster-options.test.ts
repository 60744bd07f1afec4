/**
 * The cluster options the products expose, end to end: `cohort node`
 * (NodeRuntime, and the real command for the TLS flags) and the balancer's
 * `cluster` section joining over DNS (a fake resolver) and mutual TLS
 * (certificates made here by openssl).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodeRuntime } from '../../src/node/runtime.js';
import { parseNodeConfig } from '../../src/node/config.js';
import { parseBalancerConfig } from '../../src/config/load.js';
import { BalancerServer } from '../../src/proxy/balancer-server.js';
import { createClusterNode, type ClusterNode, type ClusterNodeDeps, type DnsRecordType, type DnsResolver } from '../../src/cluster/index.js';
import { silentLogger } from '../../src/util/logger.js';
import { hasOpenssl, makePki, tlsFiles } from '../helpers/certs.js';
import { BIN, DEMO_APP, freePort } from '../helpers/cluster-procs.js';
import { until } from '../cluster/helpers.js';
import { nodeRuntimeDeps } from '../../src/cli/node-command.js';
import { ReloadableStaticMembers } from '../../src/node/static-members.js';

const SECRET = 'node-options-secret-0123456789';
const noOpenssl = hasOpenssl() ? false : 'openssl not installed';

async function startNode(route: string, cluster: Record<string, unknown>, deps: Omit<ClusterNodeDeps, 'configFile'> = {}): Promise<NodeRuntime> {
  const cfg = parseNodeConfig({ route, app: DEMO_APP, listen: '127.0.0.1:0', shutdownTimeout: 1, loglevel: 'silent', cluster: { listen: '127.0.0.1:0', ...cluster } });
  const n = new NodeRuntime(cfg, silentLogger(), undefined, { cluster: { env: {}, ...deps } });
  try {
    await n.start();
  } catch (err) {
    n.destroy();
    throw err;
  }
  return n;
}

const channelPort = (n: NodeRuntime): number => n.cluster!.self.channelAddress.port;
const routes = (n: { members(): readonly { route: string }[] }): string[] => n.members().map((m) => m.route).sort();
const noData = (): Error => Object.assign(new Error('queryAaaa ENODATA cohort.svc'), { code: 'ENODATA' });

test('cohort node: `dns: NAME` resolves A and AAAA, `{name, type: SRV}` only SRV; the addresses found become members after the channel verified them', async () => {
  const nodes: NodeRuntime[] = [];
  try {
    const a = await startNode('a', { secret: SECRET });
    nodes.push(a);
    const asked: DnsRecordType[] = [];
    const defaults: number[] = [];
    const resolver: DnsResolver = async (name, t, port) => {
      assert.equal(name, 'cohort.svc');
      asked.push(t);
      if (t === 'AAAA') throw noData();
      // A answers carry no port: the default offered is the node's own channel port (checked below); a's port stands in
      defaults.push(port);
      return [{ host: '127.0.0.1', port: channelPort(a) }];
    };
    const b = await startNode('b', { secret: SECRET, dns: 'cohort.svc' }, { dnsResolver: resolver });
    nodes.push(b);
    await until(() => routes(b.cluster!).includes('a') && routes(a.cluster!).includes('b'), 5000, 'b finds a by DNS');
    assert.deepEqual([...new Set(asked)].sort(), ['A', 'AAAA']);
    assert.deepEqual([...new Set(defaults)], [channelPort(b)]);
    asked.length = 0;
    const c = await startNode('c', { secret: SECRET, dns: { name: 'cohort.svc', type: 'SRV', intervalMs: 200 } }, { dnsResolver: resolver });
    nodes.push(c);
    await until(() => routes(c.cluster!).includes('a'), 5000, 'c finds a by SRV');
    assert.deepEqual([...new Set(asked)], ['SRV']);
  } finally {
    for (const n of nodes) n.destroy();
  }
});

test('cohort node\'s reloadable registry keeps the injected DNS resolver: `cluster.dns` under `cohort node` asks the fake', async () => {
  const nodes: NodeRuntime[] = [];
  try {
    const a = await startNode('a', { secret: SECRET });
    nodes.push(a);
    const asked: string[] = [];
    const resolver: DnsResolver = async (name, t) => {
      asked.push(`${name}/${t}`);
      if (t === 'AAAA') throw noData();
      return [{ host: '127.0.0.1', port: channelPort(a) }];
    };
    const members = new ReloadableStaticMembers([]);
    const deps = nodeRuntimeDeps(members, { cluster: { env: {}, dnsResolver: resolver } });
    assert.equal(deps.cluster?.dnsResolver, resolver);
    const cfg = parseNodeConfig({ route: 'b', app: DEMO_APP, listen: '127.0.0.1:0', shutdownTimeout: 1, loglevel: 'silent', cluster: { listen: '127.0.0.1:0', secret: SECRET, dns: 'cohort.svc' } });
    const b = new NodeRuntime(cfg, silentLogger(), undefined, deps);
    nodes.push(b);
    await b.start();
    await until(() => routes(b.cluster!).includes('a') && routes(a.cluster!).includes('b'), 5000, 'b finds a through the injected resolver');
    assert.deepEqual([...new Set(asked)].sort(), ['cohort.svc/A', 'cohort.svc/AAAA']);
  } finally {
    for (const n of nodes) n.destroy();
  }
});

test('cohort node: two nodes form a cluster over mutual TLS without a secret; a node with a certificate from another CA is refused', { skip: noOpenssl }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-node-tls-'));
  const nodes: NodeRuntime[] = [];
  try {
    makePki(dir, { ca: ['n1', 'n2'], evil: ['x'] });
    const a = await startNode('a', { tls: tlsFiles(dir, 'n1') });
    nodes.push(a);
    const b = await startNode('b', { tls: tlsFiles(dir, 'n2'), members: [`127.0.0.1:${channelPort(a)}`] });
    nodes.push(b);
    await until(() => routes(a.cluster!).includes('b') && routes(b.cluster!).includes('a'), 5000, 'a and b over mTLS');
    assert.equal(a.cluster!.snapshot().self.route, 'a');
    // sessions replicate over it: a request on a is answered by b with the same session
    const r1 = await fetch(`${a.httpUrl}/examples/counter`);
    const cookie = r1.headers.get('set-cookie')!.split(';')[0]!;
    await until(() => (b.sessions as unknown as { getStats(): { sessions: number } }).getStats().sessions >= 1, 5000, 'session replicated to b');
    const r2 = await fetch(`${b.httpUrl}/examples/counter`, { headers: { cookie, accept: 'application/json' } });
    // (both nodes share one app module in this process, so its `node` field can't tell them apart: the count can)
    assert.equal(((await r2.json()) as { count: number }).count, 2);
    // an outsider: certificate from another CA (it trusts ours, even)
    const before = a.cluster!.stats().authFailures;
    const x = await startNode('x', { tls: { ...tlsFiles(dir, 'x', 'evil'), ca: join(dir, 'ca.crt') }, members: [`127.0.0.1:${channelPort(a)}`] });
    nodes.push(x);
    await until(() => a.cluster!.stats().authFailures > before, 5000, 'the outsider\'s TLS handshake counted as an authentication failure');
    assert.deepEqual(routes(a.cluster!), ['b']);
    assert.deepEqual(routes(x.cluster!), []);
  } finally {
    for (const n of nodes) n.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cohort node --cluster-tls-ca/--cluster-tls-cert/--cluster-tls-key: two processes form a cluster over mutual TLS, no secret anywhere', { skip: noOpenssl, timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-node-tls-cli-'));
  const children: ChildProcess[] = [];
  try {
    makePki(dir, { ca: ['n1', 'n2'] });
    const ports = { h1: await freePort(), c1: await freePort(), h2: await freePort(), c2: await freePort() };
    const env = { ...process.env };
    delete env.COHORT_CLUSTER_SECRET;
    const start = (route: string, http: number, ch: number, other: number, leaf: string) => {
      const f = tlsFiles(dir, leaf);
      const child = spawn(process.execPath, [BIN, 'node', '--route', route, '--listen', `127.0.0.1:${http}`, '--app', DEMO_APP, '--cluster-listen', `127.0.0.1:${ch}`,
        '--member', `127.0.0.1:${other}`, '--cluster-tls-ca', f.ca, '--cluster-tls-cert', f.cert, '--cluster-tls-key', f.key, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'], env });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      children.push(child);
      return () => stderr;
    };
    const err1 = start('tc1', ports.h1, ports.c1, ports.c2, 'n1');
    const err2 = start('tc2', ports.h2, ports.c2, ports.c1, 'n2');
    const members = async (port: number): Promise<string[]> => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/.cohort/health`);
        return ((await res.json()) as { members: { route: string }[] }).members.map((m) => m.route);
      } catch {
        return [];
      }
    };
    let m1: string[] = [];
    let m2: string[] = [];
    const deadline = Date.now() + 20_000;
    while (!(m1.includes('tc2') && m2.includes('tc1'))) {
      if (Date.now() > deadline) assert.fail(`no cluster over mTLS: tc1 sees ${m1}, tc2 sees ${m2}\ntc1: ${err1().slice(-800)}\ntc2: ${err2().slice(-800)}`);
      await new Promise((r) => setTimeout(r, 100));
      [m1, m2] = [await members(ports.h1), await members(ports.h2)];
    }
  } finally {
    for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A cluster member that looks like a ready node to the balancer. */
async function fakeAppNode(route: string, config: Record<string, unknown>): Promise<ClusterNode> {
  const n = createClusterNode({ route, listen: { host: '127.0.0.1', port: 0 }, meta: { role: 'node', http: 'http://127.0.0.1:9', ready: 'true' }, ...config }, { env: {} });
  await n.start();
  return n;
}

async function startBalancer(cluster: Record<string, unknown>, deps: ClusterNodeDeps = {}): Promise<BalancerServer> {
  const lb = new BalancerServer(parseBalancerConfig({ listen: '127.0.0.1:0', balancers: [{ name: 'b', members: [] }], cluster }), { clusterDeps: { env: {}, ...deps } });
  await lb.start();
  return lb;
}

test('balancer cluster.tls: the balancer joins a mutual-TLS cluster and learns its nodes; with a certificate from another CA it learns nothing', { skip: noOpenssl }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-lb-tls-'));
  const closers: (() => unknown)[] = [];
  try {
    makePki(dir, { ca: ['n1', 'lb'], evil: ['x'] });
    const n1 = await fakeAppNode('tc1', { tls: tlsFiles(dir, 'n1') });
    closers.push(() => n1.destroy());
    const addr = `127.0.0.1:${n1.self.channelAddress.port}`;
    const lb = await startBalancer({ tls: tlsFiles(dir, 'lb'), members: [addr] });
    closers.push(() => lb.destroy());
    await until(() => lb.balancers.get('b')!.members.some((m) => m.route === 'tc1'), 5000, 'the balancer learns tc1 over mTLS');
    const evil = await startBalancer({ tls: { ...tlsFiles(dir, 'x', 'evil'), ca: join(dir, 'ca.crt') }, members: [addr] });
    closers.push(() => evil.destroy());
    const before = n1.stats().authFailures;
    await until(() => n1.stats().authFailures > before, 5000, 'the other CA\'s balancer refused');
    assert.equal(evil.balancers.get('b')!.members.length, 0);
    assert.equal(routes(n1).filter((r) => r.startsWith('lb-')).length, 1);
  } finally {
    for (const c of closers.reverse()) await c();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('balancer cluster.dns: A and AAAA for a bare name, dialed on 4000 when the balancer\'s own channel port is ephemeral, on its own port otherwise, on `port` if set', async () => {
  const closers: (() => unknown)[] = [];
  try {
    const n1 = await fakeAppNode('tc1', { secret: SECRET });
    closers.push(() => n1.destroy());
    const calls: { t: DnsRecordType; port: number }[] = [];
    const resolver: DnsResolver = async (_name, t, port) => {
      calls.push({ t, port });
      if (t === 'AAAA') throw noData();
      return [{ host: '127.0.0.1', port }];
    };
    const lb1 = await startBalancer({ secret: SECRET, dns: 'cohort.svc' }, { dnsResolver: resolver });
    closers.push(() => lb1.destroy());
    await until(() => calls.length >= 2, 2000, 'a first resolution');
    assert.deepEqual(calls.map((c) => c.t).sort(), ['A', 'AAAA']);
    assert.ok(calls.every((c) => c.port === 4000), JSON.stringify(calls));
    calls.length = 0;
    const own = await freePort();
    const lb2 = await startBalancer({ secret: SECRET, listen: `127.0.0.1:${own}`, dns: { name: 'cohort.svc', type: 'A' } }, { dnsResolver: resolver });
    closers.push(() => lb2.destroy());
    await until(() => calls.length >= 1, 2000, 'a first resolution');
    assert.deepEqual(calls, [{ t: 'A', port: own }]);
    const lb3 = await startBalancer({ secret: SECRET, dns: { name: 'cohort.svc', port: n1.self.channelAddress.port, intervalMs: 200 } }, { dnsResolver: resolver });
    closers.push(() => lb3.destroy());
    await until(() => lb3.balancers.get('b')!.members.some((m) => m.route === 'tc1'), 5000, 'the balancer learns tc1 by DNS');
  } finally {
    for (const c of closers.reverse()) await c();
  }
});
