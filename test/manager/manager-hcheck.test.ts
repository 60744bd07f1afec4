import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startStack, basic, type Backend } from './helpers.js';

/** A backend whose /health answers `healthy ? 200 : 503`. */
async function healthBackend(route: string): Promise<Backend & { healthy: boolean }> {
  const b = { route, url: '', hits: 0, healthy: true, close: async () => {} };
  const server = http.createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(b.healthy ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(b.healthy ? 'ok' : '<b>down</b>');
      return;
    }
    b.hits++;
    res.end(`${route}\n`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  b.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  b.close = () => new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  });
  return b;
}

test('health-check results are shown on the page, in the API, the event history and /metrics', { timeout: 30_000 }, async () => {
  const b1 = await healthBackend('tc1');
  const b2 = await healthBackend('tc2');
  b2.healthy = false;
  const s = await startStack({ backends: [b1, b2], balancerExtra: { hcheck: { path: '/health', interval: 0.1, timeout: 1, rise: 1, fall: 1 } } });
  const bal = s.balancer.balancers.get('tc')!;
  try {
    const m2 = bal.findMember('tc2')!;
    const deadline = Date.now() + 10_000;
    while (m2.health !== 'check-failed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(m2.health, 'check-failed');
    const html = await (await fetch(`${s.origin}${s.base}/`, { headers: { authorization: basic() } })).text();
    const row = /<tr data-balancer="tc" data-member="tc2">[\s\S]*?<\/tr>/.exec(html)![0];
    assert.match(row, /data-flags="C"/);
    assert.match(row, /FAIL: GET \/health → 503/);
    assert.match(row, /check-failed/);
    const api = (await (await fetch(`${s.origin}${s.base}/api/balancers/tc/members/tc2`, { headers: { authorization: basic() } })).json()) as { health: string; lastCheck: { ok: boolean; detail: string } };
    assert.equal(api.health, 'check-failed');
    assert.equal(api.lastCheck.ok, false);
    const hist = (await (await fetch(`${s.origin}${s.base}/api/history`, { headers: { authorization: basic() } })).json()) as { history: Array<{ kind: string; member?: string; to?: string }> };
    assert.ok(hist.history.some((e) => e.kind === 'transition' && e.member === 'tc2' && e.to === 'check-failed'));
    const metrics = await (await fetch(`${s.origin}/metrics`, { headers: { authorization: basic() } })).text();
    assert.match(metrics, /cohort_balancer_member_health\{balancer="tc",member="tc2",state="check-failed"\} 1/);
    assert.match(metrics, /cohort_balancer_member_usable\{balancer="tc",member="tc2"\} 0/);
    // It recovers by passing checks.
    b2.healthy = true;
    const d2 = Date.now() + 10_000;
    while (String(m2.health) !== 'ok' && Date.now() < d2) await new Promise((r) => setTimeout(r, 50));
    assert.equal(String(m2.health), 'ok');
  } finally {
    await s.close();
    await b1.close();
    await b2.close();
  }
});
