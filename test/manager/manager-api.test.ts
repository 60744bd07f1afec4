import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBackend, startStack, basic, TOKEN, traffic, tempDir, PASSWORD, type Backend, type Stack } from './helpers.js';

async function csrfOf(s: Stack, auth = basic()): Promise<string> {
  const r = await fetch(`${s.origin}${s.base}/api/session`, { headers: { authorization: auth } });
  assert.equal(r.status, 200);
  const j = (await r.json()) as { csrf: string };
  assert.equal(r.headers.get('x-csrf-token'), j.csrf);
  return j.csrf;
}

function post(s: Stack, path: string, body: unknown, headers: Record<string, string>, method = 'POST') {
  return fetch(`${s.origin}${s.base}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: body === undefined ? undefined : JSON.stringify(body) });
}

describe('balancer manager JSON API and page', () => {
  let b1: Backend, b2: Backend, s: Stack;
  before(async () => {
    b1 = await startBackend('tc1');
    b2 = await startBackend('tc2');
    s = await startStack({ backends: [b1, b2] });
  });
  after(async () => {
    await s.close();
    await b1.close();
    await b2.close();
  });

  test('authentication is required: 401 without or with wrong credentials', async () => {
    for (const path of ['/api/balancers', '/api/session', '/api/events', '/api/balancers/tc/members/tc1']) {
      const r = await fetch(`${s.origin}${s.base}${path}`);
      assert.equal(r.status, 401, path);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Basic /);
      const j = (await r.json()) as { error: { code: string } };
      assert.equal(j.error.code, 'COHORT_MANAGER_UNAUTHENTICATED');
    }
    assert.equal((await fetch(`${s.origin}${s.base}/api/balancers`, { headers: { authorization: basic('alice', 'wrong') } })).status, 401);
    assert.equal((await fetch(`${s.origin}${s.base}/api/balancers`, { headers: { authorization: basic('mallory', PASSWORD) } })).status, 401);
    assert.equal((await fetch(`${s.origin}${s.base}/api/balancers`, { headers: { authorization: 'Bearer not-the-token-at-all' } })).status, 401);
    // Page: 401 with the login form, and changes refused.
    const page = await fetch(`${s.origin}${s.base}/`);
    assert.equal(page.status, 401);
    assert.match(await page.text(), /<form method="post" action="\/balancer-manager\/login">/);
    assert.equal((await post(s, '/api/balancers/tc/members/tc1', { status: { disabled: true } }, {})).status, 401);
    // /metrics: a scrape from this host needs no credentials (metricsauth: remote, the default); one relayed by a proxy does
    assert.equal((await fetch(`${s.origin}/metrics`, { headers: { 'x-forwarded-for': '203.0.113.9' } })).status, 401);
    const local = await fetch(`${s.origin}/metrics`);
    assert.equal(local.status, 200);
    assert.match(await local.text(), /cohort_balancer_member_requests_total/);
    assert.equal(s.balancer.balancers.get('tc')!.findMember('tc1')!.flags.size, 0);
  });

  test('Basic, Bearer and login-session credentials are accepted', async () => {
    const r1 = await fetch(`${s.origin}${s.base}/api/balancers`, { headers: { authorization: basic() } });
    assert.equal(r1.status, 200);
    const j = (await r1.json()) as { balancers: Array<{ name: string; members: Array<{ route: string }> }> };
    assert.deepEqual(j.balancers[0]!.members.map((m) => m.route), ['tc1', 'tc2']);
    assert.equal((await fetch(`${s.origin}${s.base}/api/balancers`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    // Login form → session cookie.
    const bad = await fetch(`${s.origin}${s.base}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'user=alice&password=nope' });
    assert.equal(bad.status, 401);
    const login = await fetch(`${s.origin}${s.base}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ user: 'alice', password: PASSWORD }).toString() });
    assert.equal(login.status, 303);
    const cookie = login.headers.get('set-cookie')!;
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const page = await fetch(`${s.origin}${s.base}/`, { headers: { cookie: cookie.split(';')[0]! } });
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /balancer:\/\/tc/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'nonce-/);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    // Log out: needs the session's nonce; afterwards the cookie is worthless.
    const sid = cookie.split(';')[0]!;
    const nonce = ((await (await fetch(`${s.origin}${s.base}/api/session`, { headers: { cookie: sid } })).json()) as { csrf: string }).csrf;
    const noNonce = await fetch(`${s.origin}${s.base}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: sid, 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    assert.equal(noNonce.status, 403);
    const out = await fetch(`${s.origin}${s.base}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: sid, 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${encodeURIComponent(nonce)}` });
    assert.equal(out.status, 303);
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    assert.equal((await fetch(`${s.origin}${s.base}/api/session`, { headers: { cookie: sid } })).status, 401);
    // Metrics with credentials.
    const metrics = await fetch(`${s.origin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /cohort_balancer_member_requests_total\{balancer="tc",member="tc1"\}/);
  });

  test('CSRF: changes need the nonce and the same origin (403 otherwise)', async () => {
    const csrf = await csrfOf(s);
    const target = '/api/balancers/tc/members/tc1';
    const r1 = await post(s, target, { status: { disabled: true } }, { authorization: basic() });
    assert.equal(r1.status, 403);
    assert.equal(((await r1.json()) as { error: { code: string } }).error.code, 'COHORT_MANAGER_CSRF');
    assert.equal((await post(s, target, { status: { disabled: true } }, { authorization: basic(), 'x-csrf-token': 'forged' })).status, 403);
    const r3 = await post(s, target, { status: { disabled: true } }, { authorization: basic(), 'x-csrf-token': csrf, origin: 'http://evil.example' });
    assert.equal(r3.status, 403);
    assert.equal(((await r3.json()) as { error: { code: string } }).error.code, 'COHORT_MANAGER_CROSS_ORIGIN');
    // The balanced app on another port of the same host is another origin.
    assert.equal((await post(s, target, { status: { disabled: true } }, { authorization: basic(), 'x-csrf-token': csrf, origin: s.front })).status, 403);
    assert.equal((await post(s, target, { status: { disabled: true } }, { authorization: basic(), 'x-csrf-token': csrf, 'sec-fetch-site': 'same-site' })).status, 403);
    assert.equal((await post(s, target, { status: { disabled: true } }, { authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' })).status, 403);
    // A form post (the classic CSRF vector) to the JSON API is refused by media type even with a nonce-less cookie.
    const form = await fetch(`${s.origin}${s.base}${target}`, { method: 'POST', headers: { authorization: basic(), 'x-csrf-token': csrf, 'content-type': 'application/x-www-form-urlencoded' }, body: 'status=1' });
    assert.equal(form.status, 415);
    // The page's form endpoint needs the nonce too.
    const pageForm = await fetch(`${s.origin}${s.base}/action`, { method: 'POST', redirect: 'manual', headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' }, body: 'balancer=tc&member=tc1&op=disable' });
    assert.equal(pageForm.status, 403);
    assert.equal(s.balancer.balancers.get('tc')!.findMember('tc1')!.flags.size, 0, 'nothing changed');
    // With the nonce and same origin: accepted.
    const ok = await post(s, target, { status: { 'ignore-errors': true } }, { authorization: basic(), 'x-csrf-token': csrf, origin: s.origin, 'sec-fetch-site': 'same-origin' });
    assert.equal(ok.status, 200);
    assert.deepEqual(((await ok.json()) as { status: string[] }).status, ['ignore-errors']);
    const okBearer = await post(s, target, { status: { 'ignore-errors': false } }, { authorization: `Bearer ${TOKEN}` });
    assert.equal(okBearer.status, 200);
  });

  test('every value is escaped: markup in routes and error messages is shown as text', async () => {
    const csrf = await csrfOf(s);
    // The API refuses such a route outright...
    const r = await post(s, '/api/balancers/tc/members/tc2', { route: '<script>alert(1)</script>' }, { authorization: basic(), 'x-csrf-token': csrf });
    assert.equal(r.status, 422);
    // ...and should one get in anyway (e.g. a future source), the page still escapes it.
    const b = s.balancer.balancers.get('tc')!;
    const m = b.findMember('tc2')!;
    m.route = '<script>alert(1)</script>';
    m.markError('connect', '<img src=x onerror=alert(2)>', performance.now(), Date.now());
    try {
      const html = await (await fetch(`${s.origin}${s.base}/`, { headers: { authorization: basic() } })).text();
      assert.ok(!html.includes('<script>alert(1)'), 'route not rendered as markup');
      assert.ok(!html.includes('<img src=x'), 'message not rendered as markup');
      assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
      assert.ok(html.includes('&lt;img src=x onerror=alert(2)&gt;'));
      const dash = await (await fetch(`${s.origin}${s.base}/dashboard`, { headers: { authorization: basic() } })).text();
      assert.ok(!dash.includes('<script>alert(1)'));
    } finally {
      m.route = 'tc2';
      m.resetHealth(performance.now(), Date.now());
    }
  });

  test('disable stops real traffic to a member at once; enable brings it back', async () => {
    const csrf = await csrfOf(s);
    const before = await traffic(s.front, 20);
    assert.ok((before['tc1'] ?? 0) > 0 && (before['tc2'] ?? 0) > 0, JSON.stringify(before));
    const hits = b2.hits;
    const d = await post(s, '/api/balancers/tc/members/tc2', { status: { disabled: true } }, { authorization: basic(), 'x-csrf-token': csrf });
    assert.equal(d.status, 200);
    assert.equal(((await d.json()) as { flags: string }).flags, 'D');
    const during = await traffic(s.front, 20);
    assert.deepEqual(during, { tc1: 20 });
    assert.equal(b2.hits, hits, 'the disabled backend saw no request');
    const e = await post(s, '/api/balancers/tc/members/tc2', { status: { disabled: false } }, { authorization: basic(), 'x-csrf-token': csrf });
    assert.equal(e.status, 200);
    const after = await traffic(s.front, 20);
    assert.ok((after['tc2'] ?? 0) > 0, JSON.stringify(after));
  });

  test('set loadfactor, lbset, route; add and remove members; reset; drain via the page form', async () => {
    const csrf = await csrfOf(s);
    const h = { authorization: basic(), 'x-csrf-token': csrf };
    let r = await post(s, '/api/balancers/tc/members/tc1', { loadfactor: 7, lbset: 2, route: 'tc1b' }, h);
    assert.equal(r.status, 200);
    const j = (await r.json()) as { loadfactor: number; lbset: number; route: string };
    assert.deepEqual([j.loadfactor, j.lbset, j.route], [7, 2, 'tc1b']);
    assert.equal((await post(s, '/api/balancers/tc/members/tc1b', { loadfactor: 500 }, h)).status, 422);
    assert.equal((await post(s, '/api/balancers/tc/members/tc1b', { route: 'tc2' }, h)).status, 409);
    assert.equal((await post(s, '/api/balancers/tc/members/nope', { loadfactor: 2 }, h)).status, 404);
    assert.equal((await post(s, '/api/balancers/nope/members/tc1', { loadfactor: 2 }, h)).status, 404);
    assert.equal((await post(s, '/api/balancers/tc/members/tc1b', { colour: 'red' }, h)).status, 422);
    r = await post(s, '/api/balancers/tc/members/tc1b', { loadfactor: 1, lbset: 0, route: 'tc1' }, h);
    assert.equal(r.status, 200);
    // Add a member, then remove it.
    const b3 = await startBackend('tc3');
    try {
      r = await post(s, '/api/balancers/tc/members', { url: b3.url, route: 'tc3', loadfactor: 2 }, h);
      assert.equal(r.status, 201);
      assert.equal((await post(s, '/api/balancers/tc/members', { url: b3.url, route: 'tc3' }, h)).status, 409);
      const seen = await traffic(s.front, 30);
      assert.ok((seen['tc3'] ?? 0) > 0, JSON.stringify(seen));
      r = await post(s, '/api/balancers/tc/members/tc3', undefined, h, 'DELETE');
      assert.equal(r.status, 204);
      assert.equal(s.balancer.balancers.get('tc')!.findMember('tc3'), undefined);
    } finally {
      await b3.close();
    }
    // Reset the error state.
    const m = s.balancer.balancers.get('tc')!.findMember('tc2')!;
    m.markError('connect', 'refused', performance.now(), Date.now());
    assert.equal(m.health, 'error');
    r = await post(s, '/api/balancers/tc/members/tc2', { reset: true }, h);
    assert.equal(r.status, 200);
    assert.equal(m.health, 'ok');
    // The page's form: drain on, then off.
    const form = (op: string) =>
      fetch(`${s.origin}${s.base}/action`, { method: 'POST', redirect: 'manual', headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf, balancer: 'tc', member: 'tc2', op }).toString() });
    assert.equal((await form('drain:on')).status, 303);
    assert.ok(m.flags.has('drain' as never));
    assert.equal((await form('drain:off')).status, 303);
    assert.ok(!m.flags.has('drain' as never));
    // History records operator changes.
    const hist = (await (await fetch(`${s.origin}${s.base}/api/history`, { headers: { authorization: basic() } })).json()) as { history: Array<{ text: string }> };
    assert.ok(hist.history.some((e) => /drain/.test(e.text)));
  });

  test('balancer settings: method, maxattempts, nofailover, timeout, stickysession', async () => {
    const csrf = await csrfOf(s);
    const h = { authorization: basic(), 'x-csrf-token': csrf };
    const b = s.balancer.balancers.get('tc')!;
    let r = await post(s, '/api/balancers/tc', { method: 'bybusyness', maxattempts: 2, nofailover: true, timeout: 1.5, stickysession: 'SID|sid' }, h);
    assert.equal(r.status, 200);
    const j = (await r.json()) as { method: string; maxattempts: number; nofailover: boolean; timeout: number; stickysession: string };
    assert.deepEqual([j.method, j.maxattempts, j.nofailover, j.timeout, j.stickysession], ['bybusyness', 2, true, 1.5, 'SID|sid']);
    assert.equal(b.timeoutMs, 1500);
    assert.equal((await post(s, '/api/balancers/tc', { method: 'roundrobin' }, h)).status, 422);
    assert.equal((await post(s, '/api/balancers/tc', { method: 'bybusyness' }, { authorization: basic() })).status, 403);
    // Back through the page's form.
    const form = await fetch(`${s.origin}${s.base}/action`, {
      method: 'POST', redirect: 'manual', headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, balancer: 'tc', op: 'balancer', method: 'byrequests', maxattempts: '1', nofailover: 'off', timeout: '0', stickysession: 'JSESSIONID|jsessionid', stickysessionsep: '.', forcerecovery: 'on' }).toString(),
    });
    assert.equal(form.status, 303);
    assert.equal(form.headers.get('location'), `${s.base}/`);
    assert.deepEqual([b.method.name, b.maxattempts, b.nofailover, b.timeoutMs, b.sticky.cookie], ['byrequests', 1, false, 0, 'JSESSIONID']);
  });

  test('a refused form action is shown on the page (status 4xx, escaped, no error text in URLs)', async () => {
    const csrf = await csrfOf(s);
    const r = await fetch(`${s.origin}${s.base}/action`, {
      method: 'POST', redirect: 'manual', headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, balancer: 'tc', member: 'tc1', op: 'set', route: '<b>x</b>' }).toString(),
    });
    assert.equal(r.status, 422);
    const html = await r.text();
    assert.match(html, /role="alert">COHORT_MANAGER_INVALID: route: /);
    assert.ok(!html.includes('<b>x</b>'));
    // The page ignores ?error= (no content spoofing through links).
    const spoof = await (await fetch(`${s.origin}${s.base}/?error=Session%20expired%2C%20log%20in%20at%20evil.example`, { headers: { authorization: basic() } })).text();
    assert.ok(!spoof.includes('evil.example'));
    assert.equal((await fetch(`${s.origin}${s.base}/api/balancers/%E0%A4%A`, { headers: { authorization: basic() } })).status, 404);
  });

  test('the event stream sends a snapshot and pushes a state change at once', async () => {
    const csrf = await csrfOf(s);
    const ac = new AbortController();
    const r = await fetch(`${s.origin}${s.base}/api/events`, { headers: { authorization: basic() }, signal: ac.signal });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /text\/event-stream/);
    const reader = r.body!.getReader();
    let buf = '';
    const waitFor = async (re: RegExp, ms: number) => {
      const deadline = Date.now() + ms;
      while (!re.test(buf)) {
        if (Date.now() > deadline) throw new Error(`timeout waiting for ${re}; got ${buf.slice(0, 500)}`);
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buf += Buffer.from(value).toString('utf8');
      }
    };
    try {
      await waitFor(/"type":"snapshot"/, 2000);
      const t0 = Date.now();
      await post(s, '/api/balancers/tc/members/tc2', { status: { drain: true } }, { authorization: basic(), 'x-csrf-token': csrf });
      await waitFor(/"type":"state".*tc2 \+drain/, 1000);
      assert.ok(Date.now() - t0 < 1000);
      await post(s, '/api/balancers/tc/members/tc2', { status: { drain: false } }, { authorization: basic(), 'x-csrf-token': csrf });
    } finally {
      ac.abort();
      await reader.cancel().catch(() => {});
    }
  });
});

describe('persistence (BalancerPersist)', () => {
  test('changes are saved atomically next to the config and re-applied at start', async () => {
    const t = tempDir();
    const b1 = await startBackend('tc1');
    const b2 = await startBackend('tc2');
    const b3 = await startBackend('tc3');
    try {
      const statePath = join(t.dir, 'cohort.yaml.state.json');
      let s = await startStack({ backends: [b1, b2], statePath });
      try {
        const csrf = await csrfOf(s);
        const h = { authorization: basic(), 'x-csrf-token': csrf };
        assert.equal((await post(s, '/api/balancers/tc/members/tc2', { status: { disabled: true }, loadfactor: 5 }, h)).status, 200);
        assert.equal((await post(s, '/api/balancers/tc/members', { url: b3.url, route: 'tc3', lbset: 1 }, h)).status, 201);
        assert.equal((await post(s, '/api/balancers/tc', { maxattempts: 4 }, h)).status, 200);
        assert.ok(existsSync(statePath));
        const saved = JSON.parse(readFileSync(statePath, 'utf8')) as { balancers: Array<{ configured: Array<{ now?: { route: string } }>; added: Array<{ route: string }> }> };
        assert.deepEqual(saved.balancers[0]!.configured.map((m) => m.now?.route), ['tc1', 'tc2']);
        assert.deepEqual(saved.balancers[0]!.added.map((m) => m.route), ['tc3']);
      } finally {
        await s.close();
      }
      // Restart with the same config: the changes are back, and traffic obeys them.
      s = await startStack({ backends: [b1, b2], statePath });
      try {
        const b = s.balancer.balancers.get('tc')!;
        const m2 = b.findMember('tc2')!;
        assert.ok(m2.flags.has('disabled' as never));
        assert.equal(m2.loadfactor, 5);
        assert.equal(b.findMember('tc3')?.lbset, 1);
        assert.equal(b.maxattempts, 4);
        const seen = await traffic(s.front, 10);
        assert.deepEqual(seen, { tc1: 10 });
      } finally {
        await s.close();
      }
      // A changed config (different members) wins over the saved state.
      s = await startStack({ backends: [b1, b3], statePath });
      try {
        const b = s.balancer.balancers.get('tc')!;
        assert.deepEqual(b.members.map((m) => m.route), ['tc1', 'tc3']);
        assert.equal(b.findMember('tc3')!.lbset, 0);
      } finally {
        await s.close();
      }
    } finally {
      await b1.close();
      await b2.close();
      await b3.close();
      t.cleanup();
    }
  });
});

describe('brute force', () => {
  test('wrong credentials are rate limited per client address (429)', async () => {
    const b1 = await startBackend('tc1');
    const s = await startStack({ backends: [b1] });
    try {
      for (let i = 0; i < 10; i++) assert.equal((await fetch(`${s.origin}${s.base}/api/balancers`, { headers: { authorization: basic('alice', `guess${i}`) } })).status, 401);
      const r = await fetch(`${s.origin}${s.base}/api/balancers`, { headers: { authorization: basic() } });
      assert.equal(r.status, 429);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'COHORT_MANAGER_RATE_LIMITED');
      const login = await fetch(`${s.origin}${s.base}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ user: 'alice', password: PASSWORD }).toString() });
      assert.equal(login.status, 429);
    } finally {
      await s.close();
      await b1.close();
    }
  });
});

test('manager.metricsauth: true asks for credentials even from this host', async () => {
  const b1 = await startBackend('tc1');
  const s = await startStack({ backends: [b1], managerExtra: { metricsauth: true } });
  try {
    assert.equal((await fetch(`${s.origin}/metrics`)).status, 401);
    assert.equal((await fetch(`${s.origin}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  } finally {
    await s.close();
    await b1.close();
  }
});
