import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackend, startStack, tempDir, PASSWORD } from './helpers.js';
import { FakeCluster } from './fake-cluster.js';
import { ClusterSource } from '../../src/manager/dashboard-source-cluster.js';
import { MemberState } from '../../src/cluster/types.js';
import { systemClock } from '../../src/util/clock.js';

/**
 * A real browser: playwright-core drives Debian's chromium. Log in, watch the
 * dashboard, disable a member and see its traffic stop and the charts move,
 * re-enable it from the manager page's form. Screenshots go to test-output/.
 */
const CHROMIUM = process.env['COHORT_CHROMIUM'] ?? '/usr/bin/chromium';
const OUT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test-output');
const skip = existsSync(CHROMIUM) ? false : `chromium not found at ${CHROMIUM} (apt-get install -y chromium, or set COHORT_CHROMIUM)`;

test('browser: log in, disable a member, its traffic stops and the charts move, re-enable it', { skip, timeout: 120_000 }, async () => {
  const { chromium } = await import('playwright-core');
  const b1 = await startBackend('tc1', 3);
  const b2 = await startBackend('tc2', 8);
  const cluster = new FakeCluster();
  cluster.put('n1', MemberState.Alive, { role: 'node', http: 'http://127.0.0.1:9001', ready: 'true', sessions: '42' });
  const s = await startStack({ backends: [b1, b2], sampleIntervalMs: 250, sources: [new ClusterSource(() => cluster, systemClock, 50)] });
  const profile = tempDir();
  let running = true;
  // Steady background traffic through the balancer.
  const load = (async () => {
    while (running) {
      await Promise.all([0, 1, 2].map(() => fetch(`${s.front}/x`).then((r) => r.text()).catch(() => '')));
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const ctx = await chromium.launchPersistentContext(profile.dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    mkdirSync(OUT, { recursive: true });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });

    // Log in through the form.
    const first = await page.goto(`${s.origin}${s.base}/`);
    assert.equal(first?.status(), 401);
    await page.fill('input[name=user]', 'alice');
    await page.fill('input[name=password]', PASSWORD);
    await Promise.all([page.waitForURL(`${s.origin}${s.base}/`), page.click('button:has-text("Log in")')]);
    assert.ok(await page.isVisible('text=balancer://tc'));

    // The dashboard goes live and shows both members taking traffic.
    await page.goto(`${s.origin}${s.base}/dashboard`);
    await page.waitForSelector('body[data-live="1"]', { timeout: 5000 });
    const tile = (route: string) => `.tile[data-member="${route}"]`;
    const rps = async (route: string) => Number(await page.getAttribute(`${tile(route)} .rate`, 'data-rps'));
    const waitRps = async (route: string, pred: (v: number) => boolean, what: string) => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const v = await rps(route);
        if (pred(v)) return v;
        if (Date.now() > deadline) throw new Error(`${route}: rate ${v} never became ${what}`);
        await page.waitForTimeout(100);
      }
    };
    await waitRps('tc1', (v) => v > 0, '> 0');
    await waitRps('tc2', (v) => v > 0, '> 0');
    assert.equal(await page.getAttribute(tile('tc2'), 'data-state'), 'ok');
    const points = () => page.getAttribute('#chart-rps polyline[data-series="tc/tc2"]', 'points');
    // Polled from here: the page's CSP (no unsafe-eval) refuses waitForFunction's evaluated code.
    for (let i = 0; i < 100 && ((await points()) ?? '').split(' ').length <= 3; i++) await page.waitForTimeout(100);
    const before = await points();
    assert.ok(before && before.split(' ').length > 1, 'the rate chart has points');
    await page.screenshot({ path: join(OUT, 'dashboard-before.png'), fullPage: true });

    // The session-cluster panel (another data source): a node leaving shows within a second.
    await page.waitForSelector('#nodes .tile[data-node="n1"][data-state="alive"]');
    assert.match((await page.textContent('#nodes .tile[data-node="n1"]')) ?? '', /42 sessions/);
    // What each node sees, as a matrix, and a node receiving sessions, as a progress bar. A route
    // that looks like markup stays text.
    const evil = '<img src=x onerror=alert(1)>';
    cluster.put('n2', MemberState.Alive, { role: 'node', http: 'http://127.0.0.1:9002', ready: 'false', transfer: 'running', transferProgress: '30/120', sees: `lb-1=a,n1=s,${encodeURIComponent(evil)}=a` });
    await page.waitForSelector('#membership-matrix rect[data-observer="n2"][data-member="n1"][data-cell="suspect"]', { timeout: 1000 });
    assert.equal(await page.getAttribute('#membership-matrix rect[data-observer="lb-1"][data-member="n2"]', 'data-cell'), 'alive');
    assert.equal(await page.getAttribute('#membership-matrix rect[data-observer="n1"][data-member="n2"]', 'data-cell'), 'unknown', 'n1 publishes no view');
    assert.equal(await page.getAttribute('#nodes .tile[data-node="n2"] .transfer .bar', 'aria-valuenow'), '25');
    assert.match((await page.textContent('#nodes .tile[data-node="n2"] .transfer')) ?? '', /receiving sessions 30\/120/);
    assert.equal(await page.locator('#membership-matrix img').count(), 0);
    assert.equal(await page.textContent(`#membership-matrix text[data-column="${evil.replace(/"/g, '\\"')}"] title`), evil);
    for (const k of ['alive', 'suspect', 'absent', 'unknown', 'self']) assert.ok(await page.isVisible(`#membership-matrix .legend [data-legend="${k}"]`), `legend ${k}`);
    await page.locator('section.panel[data-source="cluster"]').screenshot({ path: join(OUT, 'dashboard-cluster.png') });
    cluster.put('n1', MemberState.Gone, {}, 'gone');
    await page.waitForSelector('#nodes .tile[data-node="n1"][data-state="gone"]', { timeout: 1000 });
    assert.ok(await page.isVisible('#cluster-history li:has-text("n1: gone")'));

    // Disable tc2 on the dashboard: its tile turns grey within a second.
    // Measured from the click's dispatch (not from when the test asked for it: under load that can lag).
    await page.click(`${tile('tc2')} button.toggle`);
    await page.waitForSelector(`${tile('tc2')}[data-state="disabled"]`, { timeout: 1000 });
    // Its traffic stops (server side and on the chart), the other member takes it all.
    await waitRps('tc2', (v) => v === 0, '0');
    const hits = b2.hits;
    await page.waitForTimeout(600);
    assert.equal(b2.hits, hits, 'no request reached the disabled member');
    assert.ok((await rps('tc1')) > 0);
    const after = await points();
    assert.notEqual(after, before, 'the chart moved');
    assert.ok(await page.isVisible('#history li:has-text("tc2 +disabled")'), 'the change is in the history');
    await page.screenshot({ path: join(OUT, 'dashboard-disabled.png'), fullPage: true });

    // Re-enable it from the manager page's form.
    await page.goto(`${s.origin}${s.base}/`);
    assert.equal(await page.getAttribute('tr[data-member="tc2"] td[data-flags]', 'data-flags'), 'D');
    await Promise.all([page.waitForURL(`${s.origin}${s.base}/`), page.click('tr[data-member="tc2"] button[value="enable"]')]);
    assert.equal(await page.getAttribute('tr[data-member="tc2"] td[data-flags]', 'data-flags'), 'Ok');
    await page.screenshot({ path: join(OUT, 'manager-page.png'), fullPage: true });
    await page.goto(`${s.origin}${s.base}/dashboard`);
    await page.waitForSelector('body[data-live="1"]');
    await page.waitForSelector(`${tile('tc2')}[data-state="ok"]`);
    // A new viewer's charts start with the server's recent samples, not empty.
    await page.waitForSelector('#chart-rps polyline[data-series="tc/tc1"]');
    assert.ok(((await page.getAttribute('#chart-rps polyline[data-series="tc/tc1"]', 'points')) ?? '').split(' ').length > 5, 'history replayed');
    await waitRps('tc2', (v) => v > 0, '> 0 again');
    assert.ok(b2.hits > hits);
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(OUT, 'dashboard-enabled.png'), fullPage: true });
    // The first page load is a 401 (the login form) by design; anything else is a fault.
    assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), [], 'no script errors, CSP violations or failed loads in the page');
  } finally {
    running = false;
    await load;
    await ctx.close();
    await s.close();
    await b1.close();
    await b2.close();
    profile.cleanup();
  }
});
