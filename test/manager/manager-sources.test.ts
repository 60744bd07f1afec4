import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DashboardSource } from '../../src/manager/dashboard-source.js';
import { startBackend, startStack, basic } from './helpers.js';

/**
 * The dashboard is open to more panels: a second data source (here a stand-in
 * for the session cluster's nodes view) gets its own panel, its browser code
 * and its own SSE events, without any change to the dashboard or the server.
 */
class FakeClusterSource implements DashboardSource {
  readonly id = 'cluster';
  readonly title = 'Session cluster';
  readonly clientScript = "Cohort.panel('cluster', { init: function (el, s) { el.textContent = s.nodes.length + ' nodes'; }, event: function () {} });";
  private readonly listeners = new Set<(type: string, data: unknown) => void>();
  ticks = 0;
  snapshot() {
    return { nodes: [{ route: 'n1', sessions: 3, replicationLagMs: 2 }, { route: 'n2', sessions: 4, replicationLagMs: 5 }] };
  }
  subscribe(l: (type: string, data: unknown) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  tick() {
    this.ticks++;
    for (const l of this.listeners) l('sample', { transfer: { done: this.ticks, total: 10 } });
  }
  close() {
    this.listeners.clear();
  }
}

test('a second dashboard source gets its panel, script and events', { timeout: 20_000 }, async () => {
  const b1 = await startBackend('tc1');
  const src = new FakeClusterSource();
  const s = await startStack({ backends: [b1], sources: [src], sampleIntervalMs: 100 });
  try {
    const html = await (await fetch(`${s.origin}${s.base}/dashboard`, { headers: { authorization: basic() } })).text();
    assert.match(html, /<section class="panel" data-source="cluster"><h2>Session cluster<\/h2>/);
    assert.ok(html.includes("Cohort.panel('cluster'"));
    assert.match(html, /"sources":\["balancers","cluster"\]/);
    const ac = new AbortController();
    const r = await fetch(`${s.origin}${s.base}/api/events`, { headers: { authorization: basic() }, signal: ac.signal });
    const reader = r.body!.getReader();
    let buf = '';
    try {
      const deadline = Date.now() + 5000;
      while (!/event: cluster\ndata: \{"type":"sample","data":\{"transfer"/.test(buf)) {
        assert.ok(Date.now() < deadline, buf.slice(0, 300));
        const { value } = await reader.read();
        buf += Buffer.from(value!).toString('utf8');
      }
      assert.match(buf, /event: cluster\ndata: \{"type":"snapshot","data":\{"nodes":\[\{"route":"n1"/);
      assert.match(buf, /event: balancers\ndata: \{"type":"snapshot"/);
    } finally {
      ac.abort();
      await reader.cancel().catch(() => {});
    }
  } finally {
    await s.close();
    await b1.close();
  }
});
