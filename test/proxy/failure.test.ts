/**
 * Failure and recovery (issue 2, behaviour 3) against real loopback members:
 * refused, reset and timed-out members are put in error and the request is
 * retried elsewhere; a SIGKILLed member with pooled keep-alive connections
 * costs no client a 502; recovery after `retry`; failonstatus; outlier
 * ejection bounded to half; forcerecovery; 503 + Retry-After, never a hang.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startBackend, spawnChildBackend, startBalancer, request, sleep, type Backend, type Mode, type RunningBalancer } from '../helpers/backends.js';

function oneBalancer(members: Record<string, unknown>[], extra: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return { balancers: [{ name: 'b', slowstart: 0, members, ...extra }], mounts: [{ path: '/', balancer: 'b' }], ...top };
}

export function memberSnap(bal: RunningBalancer, route: string) {
  return bal.server.snapshot()[0]!.members.find((m) => m.route === route)!;
}

describe('a failing member is put in error and the request is retried on another member', () => {
  const cases: { name: string; method: string; mode?: Mode; refuse?: boolean; top?: Record<string, unknown>; source: string; code: RegExp }[] = [
    { name: 'connection refused (GET)', method: 'GET', refuse: true, source: 'connect', code: /ECONNREFUSED/ },
    { name: 'connection refused (POST: nothing reached the member)', method: 'POST', refuse: true, source: 'connect', code: /ECONNREFUSED/ },
    { name: 'connection reset before any response (GET)', method: 'GET', mode: { kind: 'reset' }, source: 'reset', code: /ECONNRESET|UND_ERR_SOCKET/ },
    { name: 'no first byte within timeouts.firstbyte (GET)', method: 'GET', mode: { kind: 'hang' }, top: { timeouts: { firstbyte: 0.4 } }, source: 'timeout', code: /HEADERS_TIMEOUT/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const bad = await startBackend('tc1');
      const good = await startBackend('tc2');
      const bal = await startBalancer(oneBalancer([{ url: bad.url, route: 'tc1' }, { url: good.url, route: 'tc2' }], {}, c.top));
      try {
        if (c.refuse) await bad.refuse();
        if (c.mode) bad.mode = c.mode;
        const wall = Date.now();
        for (let i = 0; i < 4; i++) {
          const r = await request(`${bal.url}/r${i}`, { method: c.method, ...(c.method === 'POST' ? { body: 'x=1' } : {}) });
          assert.equal(r.status, 200, `request ${i}: ${r.body}`);
          assert.equal(r.headers['x-backend'], 'tc2');
        }
        // Tried once, then left alone for `retry` (default 60 s).
        assert.ok(bad.seen.length <= 1, `tc1 saw ${bad.seen.length} requests`);
        const m = memberSnap(bal, 'tc1');
        assert.equal(m.health, 'error');
        assert.equal(m.usable, false);
        // The reason it is out is kept: which check, which error, since when.
        assert.equal(m.reason?.source, c.source);
        assert.match(m.reason!.message, c.code);
        assert.ok(m.reason!.sinceWall >= wall - 5 && m.reason!.sinceWall <= Date.now());
      } finally {
        await bal.close();
        await bad.close();
        await good.close();
      }
    });
  }

  test('a non-idempotent request with a body is not retried after the member received it (reset)', async () => {
    const bad = await startBackend('tc1');
    bad.mode = { kind: 'reset' };
    const bal = await startBalancer(oneBalancer([{ url: bad.url, route: 'tc1' }, { url: 'http://127.0.0.1:9', route: 'tc2', status: ['disabled'] }]));
    try {
      const r = await request(`${bal.url}/pay`, { method: 'POST', body: 'amount=10' });
      assert.equal(r.status, 502);
      assert.equal(bad.seen.length, 1);
    } finally {
      await bal.close();
      await bad.close();
    }
  });
});

test('a streamed request body (1 MiB, not buffered) is retried intact when the first member refused the connection', async () => {
  const tc1 = await startBackend('tc1');
  const tc2 = await startBackend('tc2');
  const bal = await startBalancer(oneBalancer([{ url: tc1.url, route: 'tc1' }, { url: tc2.url, route: 'tc2' }]));
  try {
    await tc1.refuse();
    const body = Buffer.alloc(1024 * 1024, 0x63);
    for (let i = 0; i < 2; i++) {
      const r = await request(`${bal.url}/sink`, { method: 'PUT', body });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, `tc2 got ${body.length}\n`);
    }
  } finally {
    await bal.close();
    await tc1.close();
    await tc2.close();
  }
});

test('a member that hangs up mid-response: the client sees the connection cut, never a short body that looks complete', async () => {
  const tc1 = await startBackend('tc1');
  const bal = await startBalancer(oneBalancer([{ url: tc1.url, route: 'tc1' }]));
  try {
    const outcome = await new Promise<string>((resolve) => {
      http.get(`${bal.url}/hangup`, { agent: false }, (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve('complete'));
        res.on('error', () => resolve('cut'));
        res.on('aborted', () => resolve('cut'));
      }).on('error', () => resolve('cut'));
    });
    assert.equal(outcome, 'cut');
    assert.equal((await request(`${bal.url}/ok`)).status, 200);
  } finally {
    await bal.close();
    await tc1.close();
  }
});

test('the retry budget bounds retries, so that they cannot multiply an outage', async () => {
  const bs = await Promise.all(['tc1', 'tc2', 'tc3', 'tc4'].map((n) => startBackend(n)));
  // Three members answer 503 (failonstatus); every failed answer would be retried if the budget allowed.
  for (const b of bs.slice(0, 3)) b.mode = { kind: 'status', status: 503 };
  const bal = await startBalancer(oneBalancer(bs.map((b) => ({ url: b.url, route: b.name, retry: 0.001 })), { failonstatus: [503], maxattempts: 3, retrybudget: { percent: 0, min: 2 } }));
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await request(`${bal.url}/`)).status);
    const retries = bal.server.snapshot()[0]!.members.reduce((n, m) => n + m.retries, 0);
    assert.equal(retries, 2, `retries: ${retries}, statuses ${statuses.join(',')}`);
    const attempts = bs.reduce((n, b) => n + b.seen.length, 0);
    assert.equal(attempts, 10 + 2);
  } finally {
    await bal.close();
    for (const b of bs) await b.close();
  }
});

describe('options that change failover', () => {
  test('maxattempts 0: a refused request is not retried (503 + Retry-After)', async () => {
    const tc1 = await startBackend('tc1');
    const tc2 = await startBackend('tc2');
    const bal = await startBalancer(oneBalancer([{ url: tc1.url, route: 'tc1' }, { url: tc2.url, route: 'tc2' }], { maxattempts: 0 }));
    try {
      await tc1.refuse();
      const r = await request(`${bal.url}/`, { headers: { cookie: 'JSESSIONID=x.tc1' } });
      assert.equal(r.status, 503);
      assert.ok(r.headers['retry-after']);
      assert.equal(tc2.seen.length, 0);
    } finally {
      await bal.close();
      await tc1.close();
      await tc2.close();
    }
  });

  test('ignore-errors: the member is never put in error, its error is still recorded', async () => {
    const tc1 = await startBackend('tc1');
    const tc2 = await startBackend('tc2');
    const bal = await startBalancer(oneBalancer([{ url: tc1.url, route: 'tc1', status: ['ignore-errors'] }, { url: tc2.url, route: 'tc2' }]));
    try {
      await tc1.refuse();
      for (let i = 0; i < 3; i++) assert.equal((await request(`${bal.url}/`)).status, 200);
      const m = memberSnap(bal, 'tc1');
      assert.equal(m.health, 'ok');
      assert.equal(m.lastError?.source, 'connect');
    } finally {
      await bal.close();
      await tc1.close();
      await tc2.close();
    }
  });
});

test('a SIGKILLed member with pooled keep-alive connections costs no client a 502 (3 trials)', async () => {
  for (let trial = 0; trial < 3; trial++) {
    const child = await spawnChildBackend('tc1');
    const good = await startBackend('tc2');
    // Default retry budget: what a user gets.
    const bal = await startBalancer(oneBalancer([{ url: child.url, route: 'tc1' }, { url: good.url, route: 'tc2' }]));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    try {
      // Warm up: the balancer now holds keep-alive connections to the child.
      const warm = await Promise.all(Array.from({ length: 8 }, (_, i) => request(`${bal.url}/w${i}`, { agent })));
      assert.ok(warm.some((r) => r.headers['x-backend'] === 'tc1'));
      // Odd trials race the requests against the kill (written on connections the dying process resets).
      const gone = child.kill();
      if (trial % 2 === 0) await gone;
      const after = await Promise.all(Array.from({ length: 4 }, (_, i) => request(`${bal.url}/a${i}`, { agent })));
      await gone;
      const more = [];
      for (let i = 0; i < 6; i++) more.push(await request(`${bal.url}/m${i}`, { agent }));
      for (const r of [...after, ...more]) {
        assert.equal(r.status, 200, `trial ${trial}: ${r.status} ${r.body}`);
        assert.equal(r.headers['x-backend'], 'tc2');
      }
      assert.equal(memberSnap(bal, 'tc1').health, 'error');
    } finally {
      agent.destroy();
      await child.kill();
      await bal.close();
      await good.close();
    }
  }
});

test('after `retry` seconds the member is tried again and is ok on the first success', async () => {
  const tc1 = await startBackend('tc1');
  const tc2 = await startBackend('tc2');
  const bal = await startBalancer(oneBalancer([{ url: tc1.url, route: 'tc1', retry: 1 }, { url: tc2.url, route: 'tc2', retry: 1 }]));
  try {
    await tc1.refuse();
    assert.equal((await request(`${bal.url}/`)).status, 200);
    assert.equal((await request(`${bal.url}/`)).status, 200);
    assert.equal(memberSnap(bal, 'tc1').health, 'error');
    await tc1.restore();
    // Still inside `retry`: no traffic even though it is back.
    const seenBefore = tc1.seen.length;
    for (let i = 0; i < 4; i++) assert.equal((await request(`${bal.url}/`)).headers['x-backend'], 'tc2');
    assert.equal(tc1.seen.length, seenBefore);
    await sleep(1100);
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await request(`${bal.url}/`)).headers['x-backend']);
    assert.ok(got.includes('tc1'), `after retry: ${got.join(',')}`);
    const m = memberSnap(bal, 'tc1');
    assert.equal(m.health, 'ok');
    assert.equal(m.lastError?.source, 'connect');
  } finally {
    await bal.close();
    await tc1.close();
    await tc2.close();
  }
});

test('failonstatus codes count as failures: the member goes into error and the request is retried', async () => {
  const tc1 = await startBackend('tc1');
  const tc2 = await startBackend('tc2');
  tc1.mode = { kind: 'status', status: 503 };
  const bal = await startBalancer(oneBalancer([{ url: tc1.url, route: 'tc1' }, { url: tc2.url, route: 'tc2' }], { failonstatus: [503] }));
  try {
    for (let i = 0; i < 4; i++) {
      const r = await request(`${bal.url}/`);
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-backend'], 'tc2');
    }
    const m = memberSnap(bal, 'tc1');
    assert.equal(m.health, 'error');
    assert.equal(m.reason?.source, 'status');
    assert.match(m.reason!.message, /503/);
    assert.equal(tc1.seen.length, 1);
  } finally {
    await bal.close();
    await tc1.close();
    await tc2.close();
  }
});

test('outlier detection ejects members answering consecutive 5xx, never more than half of them', async () => {
  const backends = await Promise.all(['tc1', 'tc2', 'tc3', 'tc4'].map((n) => startBackend(n)));
  for (const b of backends) b.mode = { kind: 'status', status: 500 };
  const bal = await startBalancer(oneBalancer(backends.map((b) => ({ url: b.url, route: b.name })), { outlier: { consecutive5xx: 2, ejecttime: 30 } }));
  try {
    for (let i = 0; i < 40; i++) {
      const r = await request(`${bal.url}/`);
      assert.equal(r.status, 500, 'the member answer is passed through');
      const ejected = bal.server.snapshot()[0]!.members.filter((m) => m.health === 'ejected').length;
      assert.ok(ejected <= 2, `${ejected} of 4 ejected`);
    }
    const snap = bal.server.snapshot()[0]!.members;
    assert.equal(snap.filter((m) => m.health === 'ejected').length, 2);
    for (const m of snap.filter((x) => x.health === 'ejected')) assert.equal(m.reason?.source, 'outlier');
    // A member that recovers resets its streak.
    for (const b of backends) b.mode = { kind: 'ok' };
    for (let i = 0; i < 4; i++) assert.equal((await request(`${bal.url}/`)).status, 200);
  } finally {
    await bal.close();
    for (const b of backends) await b.close();
  }
});

test('forcerecovery: when every member is in error, all are tried again at once', async () => {
  const tc1 = await startBackend('tc1');
  const tc2 = await startBackend('tc2');
  const bal = await startBalancer(oneBalancer([{ url: tc1.url, route: 'tc1' }, { url: tc2.url, route: 'tc2' }]));
  try {
    await tc1.refuse();
    await tc2.refuse();
    const r1 = await request(`${bal.url}/`);
    assert.equal(r1.status, 503);
    assert.ok(r1.headers['retry-after'] !== undefined);
    assert.deepEqual(bal.server.snapshot()[0]!.members.map((m) => m.health), ['error', 'error']);
    await tc1.restore();
    await tc2.restore();
    // `retry` is 60 s, yet the next request is served: every member was in error.
    const r2 = await request(`${bal.url}/`);
    assert.equal(r2.status, 200, r2.body);
  } finally {
    await bal.close();
    await tc1.close();
    await tc2.close();
  }
});

describe('no member usable: 503 with Retry-After at once, never a hang', () => {
  const cases: { name: string; members: (u: string) => Record<string, unknown>[]; extra?: Record<string, unknown>; prepare?: (b: Backend) => Promise<void> }[] = [
    { name: 'all members disabled', members: (u) => [{ url: u, route: 'tc1', status: ['disabled'] }] },
    { name: 'all in error, forcerecovery off', members: (u) => [{ url: u, route: 'tc1' }], extra: { forcerecovery: false }, prepare: (b) => b.refuse() },
    { name: 'all refusing, forcerecovery on', members: (u) => [{ url: u, route: 'tc1' }], prepare: (b) => b.refuse() },
    { name: 'no members at all', members: () => [] },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const tc1 = await startBackend('tc1');
      const bal = await startBalancer(oneBalancer(c.members(tc1.url), c.extra));
      try {
        if (c.prepare) await c.prepare(tc1);
        for (let i = 0; i < 3; i++) {
          const r = await request(`${bal.url}/`, { timeoutMs: 5000 });
          assert.equal(r.status, 503, r.body);
          assert.match(String(r.headers['retry-after']), /^\d+$/);
        }
      } finally {
        await bal.close();
        await tc1.close();
      }
    });
  }
});
