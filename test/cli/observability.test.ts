/**
 * Observability (issue 12, item 4): prom-client's default metrics on the
 * balancer and the node; the balancer's /metrics, /health and /live on a
 * listener of their own without the manager; the node's metrics at
 * /.cohort/metrics only (the app's /metrics stays the app's), merged with the
 * app's default prom-client registry; /.cohort/live separate from /.cohort/health.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BIN, ROOT, freePort } from '../helpers/cluster-procs.js';
import { startBackend, startBalancer, request, until } from '../helpers/backends.js';
import { BalancerPhase, BalancerStatusServer } from '../../src/status/balancer-status.js';

let dir: string;
const children = new Set<ChildProcess>();
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-obs-'));
});
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function start(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return { child, stderr: () => err };
}
const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

test('`cohort balancer --status`: /metrics (balancer and process metrics), /health and /live without the manager', async (t) => {
  const backend = await startBackend('b1');
  t.after(() => backend.close());
  const p = start(['balancer', '--listen', '127.0.0.1:0', '--member', `tc1=${backend.url}`, '--status', '127.0.0.1:0', '--no-access-log']);
  await until(() => /listening on (http\S+)/.test(p.stderr()) || !alive(p.child), 15_000, 'the balancer');
  const front = /listening on (http\S+)/.exec(p.stderr())![1]!;
  const status = /status \(\/metrics, \/health, \/live\) on (http\S+)/.exec(p.stderr())![1]!;
  assert.doesNotMatch(p.stderr(), /manager on/);
  assert.equal((await request(`${front}/x`)).status, 200);
  const health = await request(`${status}/health`);
  assert.equal(health.status, 200);
  assert.deepEqual(JSON.parse(health.body), { state: 'serving', ready: true, balancers: { default: { members: 1, usable: 1 } } });
  assert.equal((await request(`${status}/live`)).status, 200);
  const m = await request(`${status}/metrics`);
  assert.equal(m.status, 200);
  assert.match(m.body, /cohort_balancer_member_requests_total\{balancer="default",member="tc1"\} 1/);
  assert.match(m.body, /cohort_balancer_responses_total\{balancer="default",member="tc1",code="2xx"\} 1/);
  assert.match(m.body, /^process_cpu_user_seconds_total \d/m);
  assert.match(m.body, /^nodejs_eventloop_lag_seconds \d/m);
  assert.equal((await request(`${status}/nope`)).status, 404);
  p.child.kill('SIGTERM');
  await until(() => !alive(p.child), 10_000, 'the balancer to stop');
});

test('BalancerStatusServer: /health is 503 while starting and stopping; /metrics refuses clients outside loopback and status.from', async (t) => {
  const b = await startBalancer({ balancers: [{ name: 'x', members: [{ route: 'a', url: 'http://127.0.0.1:9' }] }] });
  t.after(() => b.close());
  let phase = BalancerPhase.Starting;
  const s = new BalancerStatusServer({ listen: '127.0.0.1:0', from: [] }, { balancers: () => b.server.balancers.values(), phase: () => phase });
  const url = await s.start();
  t.after(() => s.close());
  const h1 = await request(`${url}/health`);
  assert.equal(h1.status, 503);
  assert.equal(h1.headers['retry-after'], '1');
  phase = BalancerPhase.Serving;
  assert.equal((await request(`${url}/health`)).status, 200);
  phase = BalancerPhase.Stopping;
  assert.equal((await request(`${url}/health`)).status, 503);
  assert.equal((await request(`${url}/live`)).status, 200);
  assert.equal((await request(`${url}/metrics`, { method: 'POST' })).status, 405);
});

test('the manager\'s /metrics has the process and Node.js metrics too', async (t) => {
  const { BalancerMetrics } = await import('../../src/manager/metrics.js');
  const body = (await new BalancerMetrics(() => []).render()).body;
  assert.match(body, /^process_resident_memory_bytes \d/m);
  assert.match(body, /^nodejs_heap_size_used_bytes \d/m);
  void t;
});

test('`cohort node`: /metrics is the app\'s; /.cohort/metrics merges the app\'s default registry; /.cohort/live answers while /.cohort/health is 503', { timeout: 60_000 }, async () => {
  // An app with its own prom-client registry (the default one) and /metrics route; prom-client resolves from the repo.
  const app = join(ROOT, 'dist', 'test', 'cli', `app-with-metrics-${process.pid}.mjs`);
  writeFileSync(app, [
    "import client from 'prom-client';",
    'client.collectDefaultMetrics();',
    "const hits = new client.Counter({ name: 'app_hits_total', help: 'hits' });",
    'export default async (req, res) => {',
    "  if (req.url === '/metrics') { res.setHeader('content-type', client.register.contentType); res.end(await client.register.metrics()); return; }",
    "  hits.inc(); res.end('ok');",
    '};',
  ].join('\n'));
  try {
    const [httpPort, clusterPort, peerPort] = [await freePort(), await freePort(), await freePort()];
    const p = start(['node', '--route', 'm1', '--app', app, '--listen', `127.0.0.1:${httpPort}`, '--cluster-listen', `127.0.0.1:${clusterPort}`, '--member', `127.0.0.1:${peerPort}`, '--log-level', 'warn'],
      { COHORT_CLUSTER_SECRET: randomBytes(32).toString('base64') });
    const base = `http://127.0.0.1:${httpPort}`;
    // While it waits for its (absent) peer: live but not ready.
    await until(async () => (await request(`${base}/.cohort/live`).catch(() => undefined))?.status === 200 || !alive(p.child), 15_000, 'live');
    const early = await request(`${base}/.cohort/health`);
    const live = JSON.parse((await request(`${base}/.cohort/live`)).body) as { live: boolean; state: string };
    assert.equal(early.status, 503, 'not ready while waiting for the first peer (1.5 s)');
    assert.equal(live.live, true);
    assert.notEqual(live.state, 'ready');
    await until(() => /ready on/.test(p.stderr()) || !alive(p.child), 15_000, 'ready');
    assert.equal((await request(`${base}/.cohort/health`)).status, 200);
    assert.equal((await request(`${base}/hello`)).body, 'ok');
    const appMetrics = await request(`${base}/metrics`);
    assert.equal(appMetrics.status, 200);
    assert.match(appMetrics.body, /app_hits_total 1/);
    assert.doesNotMatch(appMetrics.body, /cohort_node_ready/, 'the app\'s /metrics is not hidden by the node');
    const merged = (await request(`${base}/.cohort/metrics`)).body;
    assert.match(merged, /cohort_node_ready\{node="m1"\} 1/);
    assert.match(merged, /app_hits_total 1/);
    assert.equal(merged.match(/^# TYPE process_cpu_user_seconds_total/gm)?.length, 1, 'the process metrics once (the app\'s)');
    p.child.kill('SIGTERM');
    await until(() => !alive(p.child), 15_000, 'the node to stop');
  } finally {
    rmSync(app, { force: true });
  }
});

test('NodeMetrics: the process/Node.js defaults when the app has no registry of its own', async () => {
  const { NodeMetrics } = await import('../../src/node/metrics.js');
  const m = new NodeMetrics('n1', () => undefined, () => undefined, () => true);
  const body = (await m.render()).body;
  assert.match(body, /cohort_node_ready\{node="n1"\} 1/);
  assert.match(body, /^process_cpu_user_seconds_total\{node="n1"\} \d/m);
});
