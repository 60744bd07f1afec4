/**
 * The Kubernetes recipe run for real (issue 12, item 2), without Kubernetes:
 * each "pod" is a network namespace with its own address on a bridge, running
 * `cohort node` with deploy/kubernetes/nodes.yaml's node.yaml (POD_NAME and
 * POD_IP set as the downward API would). A dnsmasq started by this test
 * answers for the headless Service's name, one A record per pod, as CoreDNS
 * does; `ip netns exec` points each pod's /etc/resolv.conf at it. Scaling 3 → 4
 * records adds the node; scaling down (its record removed, the pod terminated)
 * makes it leave, and nobody adds it again.
 *
 * Needs root, `ip netns` and dnsmasq (Debian package dnsmasq); skipped otherwise,
 * with the reason. Everything lives in namespaces of its own and in a temp dir;
 * /etc/netns/<ns>/ (the per-namespace resolv.conf) is removed at the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import { ROOT, BIN } from '../helpers/cluster-procs.js';
import { until } from '../helpers/backends.js';
import { ip, netnsUnavailable } from '../helpers/netns.js';

const tag = `cohd${process.pid % 100000}`;
const sw = `${tag}-sw`;
/** Four node pods and (the fifth) the balancer's pod. */
const pods = [0, 1, 2, 3, 4].map((i) => `${tag}-p${i}`);
const net3 = 100 + Math.floor(Math.random() * 150);
const ipOf = (i: number) => `10.214.${net3}.${i + 1}`;
const DNS_IP = `10.214.${net3}.250`;
const NAME = 'cohort-nodes.default.svc.cluster.local';

function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for ip netns';
  if (spawnSync('dnsmasq', ['--version'], { stdio: 'ignore' }).error) return 'dnsmasq is not installed (Debian package dnsmasq; CI: apt-get install -y dnsmasq)';
  return netnsUnavailable(tag);
}

function setup(): void {
  ip('netns', 'add', sw);
  ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', sw, 'addr', 'add', `${DNS_IP}/24`, 'dev', 'br0');
  ip('-n', sw, 'link', 'set', 'br0', 'up');
  ip('-n', sw, 'link', 'set', 'lo', 'up');
  pods.forEach((p, i) => {
    ip('netns', 'add', p);
    ip('-n', sw, 'link', 'add', `vp${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p);
    ip('-n', sw, 'link', 'set', `vp${i}`, 'master', 'br0', 'up');
    ip('-n', p, 'addr', 'add', `${ipOf(i)}/24`, 'dev', 'eth0');
    ip('-n', p, 'link', 'set', 'eth0', 'up');
    ip('-n', p, 'link', 'set', 'lo', 'up');
    // `ip netns exec` bind-mounts this over /etc/resolv.conf: the pod's DNS server is our dnsmasq.
    mkdirSync(`/etc/netns/${p}`, { recursive: true });
    writeFileSync(`/etc/netns/${p}/resolv.conf`, `nameserver ${DNS_IP}\noptions timeout:1 attempts:2\n`);
  });
}

function teardown(): void {
  for (const n of [sw, ...pods]) {
    try {
      ip('netns', 'del', n);
    } catch {
      // not created
    }
    rmSync(`/etc/netns/${n}`, { recursive: true, force: true });
  }
}

/** A child's JSON log lines (stdout and stderr). */
class Child {
  readonly lines: Record<string, unknown>[] = [];
  text = '';
  constructor(readonly name: string, readonly child: ChildProcess) {
    const onData = (d: Buffer) => {
      this.text += d;
      for (const l of d.toString().split('\n')) {
        if (!l.startsWith('{')) continue;
        try {
          this.lines.push(JSON.parse(l) as Record<string, unknown>);
        } catch {
          // a line split across chunks: the text keeps it
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  }
  saw(re: RegExp): boolean {
    return this.lines.some((l) => re.test(String(l.msg)));
  }
  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  kill(sig: NodeJS.Signals): void {
    if (this.alive()) process.kill(this.child.pid!, sig);
  }
}

const why = unavailable();

test('Kubernetes recipe: nodes discover each other through DNS records of the headless Service; 3 → 4 adds, removing one makes it leave; the balancer finds them the same way and serves', { skip: why ?? false, timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-k8s-'));
  const children: Child[] = [];
  t.after(() => {
    for (const c of children) c.kill('SIGKILL');
    teardown();
    rmSync(dir, { recursive: true, force: true });
  });
  setup();
  // The node.yaml of the manifests, as the ConfigMap mounts it.
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy', 'kubernetes', 'nodes.yaml'), 'utf8')).map((d) => d.toJS() as { kind: string; data?: Record<string, string> });
  const nodeYaml = join(dir, 'node.yaml');
  writeFileSync(nodeYaml, docs.find((d) => d.kind === 'ConfigMap')!.data!['node.yaml']!);
  const app = join(dir, 'server.mjs');
  writeFileSync(app, "export default (req, res) => res.end(process.env.COHORT_ROUTE);\n");
  const secret = join(dir, 'cluster.secret');
  writeFileSync(secret, randomBytes(32).toString('base64'), { mode: 0o600 });

  // The headless Service's records: one A record per pod.
  const hosts = join(dir, 'service.hosts');
  const publish = (indices: number[]) => {
    writeFileSync(hosts, indices.map((i) => `${ipOf(i)} ${NAME}`).join('\n') + '\n', { mode: 0o644 });
    dnsmasq.kill('SIGHUP'); // dnsmasq re-reads its hosts files and clears its cache on SIGHUP
  };
  writeFileSync(hosts, [0, 1, 2].map((i) => `${ipOf(i)} ${NAME}`).join('\n') + '\n', { mode: 0o644 });
  const dnsmasq = new Child('dnsmasq', spawn('ip', ['netns', 'exec', sw, 'dnsmasq', '--keep-in-foreground', '--log-facility=-', '--conf-file=/dev/null', '--no-resolv', '--no-hosts',
    `--addn-hosts=${hosts}`, `--listen-address=${DNS_IP}`, '--bind-interfaces', '--port=53', '--local-ttl=1', '--pid-file=', '--user=root'], { stdio: ['ignore', 'pipe', 'pipe'] }));
  children.push(dnsmasq);
  const resolve = (pod: string) => {
    const r = spawnSync('ip', ['netns', 'exec', pod, process.execPath, '-e', `require('node:dns').promises.resolve4(${JSON.stringify(NAME)}).then((a) => console.log(a.sort().join(',')), (e) => console.log('ERR ' + e.code))`], { encoding: 'utf8', timeout: 10_000 });
    return r.stdout.trim();
  };
  await until(() => resolve(pods[0]!) === [0, 1, 2].map(ipOf).sort().join(','), 10_000, `dnsmasq to answer for ${NAME} (${dnsmasq.text})`);

  const start = (i: number) => {
    const c = new Child(`cohort-node-${i}`, spawn('ip', ['netns', 'exec', pods[i]!, process.execPath, BIN, 'node', '--config', nodeYaml], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, POD_NAME: `cohort-node-${i}`, POD_IP: ipOf(i), COHORT_APP: app, COHORT_SECRET_FILE: secret },
    }));
    children.push(c);
    return c;
  };
  const sees = (c: Child, route: string) => c.saw(new RegExp(`^member ${route} added$`));
  const nodes = [0, 1, 2].map(start);
  for (const c of nodes) {
    for (const o of nodes) if (o !== c) await until(() => sees(c, o.name) || !c.alive(), 20_000, `${c.name} to find ${o.name} through DNS: ${c.text}`);
    assert.ok(c.alive(), c.text);
    await until(() => /ready on http:\/\/10\.214\./.test(c.text), 20_000, `${c.name} ready`);
  }

  // The balancer pod, with the manifests' balancer.yaml: it learns the nodes by the same DNS name and serves.
  const balDocs = parseAllDocuments(readFileSync(join(ROOT, 'deploy', 'kubernetes', 'balancer.yaml'), 'utf8')).map((x) => x.toJS() as { kind: string; data?: Record<string, string> });
  const balYaml = join(dir, 'balancer.yaml');
  writeFileSync(balYaml, balDocs.find((x) => x.kind === 'ConfigMap')!.data!['balancer.yaml']!);
  const bal = new Child('balancer', spawn('ip', ['netns', 'exec', pods[4]!, process.execPath, BIN, 'balancer', '--config', balYaml, '--no-access-log'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, POD_IP: ipOf(4), COHORT_SECRET_FILE: secret },
  }));
  children.push(bal);
  const fetchIn = (pod: string, url: string) => {
    const r = spawnSync('ip', ['netns', 'exec', pod, process.execPath, '-e', `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(3000) }).then(async (r) => console.log(r.status + ' ' + (await r.text())), (e) => console.log('ERR ' + e.message))`], { encoding: 'utf8', timeout: 10_000 });
    return r.stdout.trim();
  };
  await until(() => /listening on http/.test(bal.text) || !bal.alive(), 20_000, `the balancer: ${bal.text}`);
  await until(() => /^200 \{"state":"serving"[^]*"app":\{"members":3,"usable":3\}/.test(fetchIn(pods[0]!, `http://${ipOf(4)}:9100/health`)), 30_000, `the balancer to learn the 3 nodes: ${bal.text}`);
  const answered = new Set<string>();
  for (let k = 0; k < 6; k++) answered.add(fetchIn(pods[0]!, `http://${ipOf(4)}:8080/whoami`));
  assert.deepEqual([...answered].sort(), ['200 cohort-node-0', '200 cohort-node-1', '200 cohort-node-2'], 'balanced over the three nodes');

  // Scale to 4: the fourth record appears with the pod.
  publish([0, 1, 2, 3]);
  await until(() => resolve(pods[0]!).split(',').length === 4, 10_000, 'the fourth record');
  const d = start(3);
  nodes.push(d);
  for (const o of nodes.slice(0, 3)) await until(() => sees(d, o.name) && sees(o, d.name), 20_000, `${d.name} and ${o.name} to see each other`);

  // Scale down: cohort-node-1's record goes and the pod is terminated (SIGTERM: hand over, leave).
  publish([0, 2, 3]);
  await until(() => !resolve(pods[0]!).includes(ipOf(1)), 10_000, 'the record removed');
  const gone = nodes[1]!;
  gone.kill('SIGTERM');
  await until(() => !gone.alive(), 20_000, `${gone.name} to stop`);
  assert.equal(gone.child.exitCode, 0, gone.text);
  const survivors = [nodes[0]!, nodes[2]!, nodes[3]!];
  for (const s of survivors) await until(() => s.saw(/^member cohort-node-1 gone$/), 10_000, `${s.name} to see cohort-node-1 leave`);
  for (const s of survivors) assert.equal(s.lines.find((l) => l.msg === 'member cohort-node-1 gone')?.reason, 'left', `${s.name}: a graceful leave`);
  // Two DNS rounds later nobody has added it again (its record is gone).
  const addedBefore = survivors.map((s) => s.lines.filter((l) => l.msg === 'member cohort-node-1 added').length);
  await new Promise((r) => setTimeout(r, 4_500));
  assert.deepEqual(survivors.map((s) => s.lines.filter((l) => l.msg === 'member cohort-node-1 added').length), addedBefore);
  for (const s of survivors) assert.ok(s.alive(), s.text);
  // The balancer followed: the node that left is out, the fourth is in.
  await until(() => /"app":\{"members":3,"usable":3\}/.test(fetchIn(pods[0]!, `http://${ipOf(4)}:9100/health`)), 20_000, 'the balancer to follow the scaling');
  const after = new Set<string>();
  for (let k = 0; k < 6; k++) after.add(fetchIn(pods[0]!, `http://${ipOf(4)}:8080/whoami`));
  assert.deepEqual([...after].sort(), ['200 cohort-node-0', '200 cohort-node-2', '200 cohort-node-3']);
});
