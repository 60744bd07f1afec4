/**
 * Active health checks (behaviour 4), limits and slow start (5), hot standby
 * and lbsets (6), drain (7) and nofailover, against real loopback members.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, startBalancer, request, rawExchange, statuses, sleep, until, type Backend, type RunningBalancer } from '../helpers/backends.js';

function cfg(members: Record<string, unknown>[], extra: Record<string, unknown> = {}) {
  return { balancers: [{ name: 'b', slowstart: 0, members, ...extra }] };
}
const health = (bal: RunningBalancer, route: string) => bal.server.snapshot()[0]!.members.find((m) => m.route === route)!;
const HCHECK = { path: '/health', interval: 0.2, timeout: 0.3, rise: 2, fall: 2 };

async function served(bal: RunningBalancer, n: number, headers: Record<string, string> = {}): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await request(`${bal.url}/`, { headers });
    out.push(r.status === 200 ? String(r.headers['x-backend']) : String(r.status));
  }
  return out;
}

async function withMembers(names: string[], fn: (b: Backend[]) => Promise<void>): Promise<void> {
  const bs = await Promise.all(names.map((n) => startBackend(n)));
  try {
    await fn(bs);
  } finally {
    for (const b of bs) await b.close();
  }
}

describe('active health checks', () => {
  test('per member: its own hcheck settings over the balancer\'s (another path), or false (never checked)', async () => {
    await withMembers(['tc1', 'tc2', 'tc3'], async ([tc1, tc2, tc3]) => {
      const bal = await startBalancer(cfg([
        // tc1 is checked on a path that fails; tc2 on the balancer's; tc3 not at all (its checks would fail too)
        { url: tc1!.url, route: 'tc1', hcheck: { path: '/status/500' } },
        { url: tc2!.url, route: 'tc2' },
        { url: tc3!.url, route: 'tc3', hcheck: false },
      ], { hcheck: { ...HCHECK, path: '/status/200' } }));
      try {
        const b = bal.server.balancers.get('b')!;
        assert.deepEqual(b.hcheckFor(b.findMember('tc1')!), { ...HCHECK, method: 'GET', path: '/status/500' });
        assert.equal(b.hcheckFor(b.findMember('tc3')!), false);
        await until(() => health(bal, 'tc1').health === 'check-failed', 5000, 'tc1 to fail its own check');
        assert.deepEqual([...new Set(await served(bal, 12))].sort(), ['tc2', 'tc3']);
        assert.equal(health(bal, 'tc2').health, 'ok');
        assert.equal(health(bal, 'tc3').lastCheck, undefined, 'tc3 is never checked');
        assert.equal(tc3!.checks, 0, 'no check request reached tc3');
        assert.ok(tc2!.checks > 0);
      } finally {
        await bal.close();
      }
    });
  });

  test('a failing member gets no new traffic and its sticky users fail over', async () => {
    await withMembers(['tc1', 'tc2'], async ([tc1, tc2]) => {
      const bal = await startBalancer(cfg([{ url: tc1!.url, route: 'tc1' }, { url: tc2!.url, route: 'tc2' }], { hcheck: HCHECK }));
      try {
        assert.deepEqual(await served(bal, 2, { cookie: 'JSESSIONID=a.tc1' }), ['tc1', 'tc1']);
        tc1!.mode = { kind: 'status', status: 500 };
        await until(() => health(bal, 'tc1').health === 'check-failed', 5000, 'tc1 to fail its checks');
        const m = health(bal, 'tc1');
        assert.equal(m.reason?.source, 'hcheck');
        assert.match(m.reason!.message, /failed 2 check\(s\).*500/);
        const before = tc1!.seen.length;
        assert.deepEqual(await served(bal, 4), ['tc2', 'tc2', 'tc2', 'tc2']);
        assert.deepEqual(await served(bal, 2, { cookie: 'JSESSIONID=a.tc1' }), ['tc2', 'tc2']);
        assert.equal(tc1!.seen.length, before, 'tc1 got no traffic');
      } finally {
        await bal.close();
      }
    });
  });

  test('a recovered member gets traffic as soon as it passes `rise` checks, not after `retry`', async () => {
    await withMembers(['tc1', 'tc2'], async ([tc1, tc2]) => {
      const bal = await startBalancer(cfg([{ url: tc1!.url, route: 'tc1', retry: 60 }, { url: tc2!.url, route: 'tc2', retry: 60 }], { hcheck: HCHECK }));
      try {
        await tc1!.refuse();
        // A request finds it down (error for `retry` = 60 s) and checks fail too.
        assert.deepEqual(await served(bal, 2, { cookie: 'JSESSIONID=a.tc1' }), ['tc2', 'tc2']);
        await until(() => health(bal, 'tc1').health === 'check-failed', 5000, 'tc1 to fail its checks');
        await tc1!.restore();
        const t0 = Date.now();
        await until(() => health(bal, 'tc1').health === 'ok', 5000, 'tc1 to pass `rise` checks');
        assert.ok(Date.now() - t0 < 5000);
        assert.equal(health(bal, 'tc1').reason, undefined);
        assert.deepEqual(await served(bal, 2, { cookie: 'JSESSIONID=a.tc1' }), ['tc1', 'tc1']);
      } finally {
        await bal.close();
      }
    });
  });

  test('a member in error after a failed request, whose checks keep passing, is back without waiting `retry`', async () => {
    await withMembers(['tc1', 'tc2'], async ([tc1, tc2]) => {
      const bal = await startBalancer(cfg([{ url: tc1!.url, route: 'tc1', retry: 60 }, { url: tc2!.url, route: 'tc2' }], { hcheck: HCHECK }));
      try {
        tc1!.mode = { kind: 'reset' };
        // Health checks still pass (they are answered before the mode applies to traffic).
        await served(bal, 1, { cookie: 'JSESSIONID=a.tc1' });
        assert.equal(health(bal, 'tc1').health, 'error');
        tc1!.mode = { kind: 'ok' };
        await until(() => health(bal, 'tc1').health === 'ok', 5000, 'tc1 back through its checks');
        assert.deepEqual(await served(bal, 1, { cookie: 'JSESSIONID=a.tc1' }), ['tc1']);
      } finally {
        await bal.close();
      }
    });
  });
});

describe('limits', () => {
  test('at most `max` concurrent requests reach a member; the rest wait up to `timeout` and are then served', async () => {
    await withMembers(['tc1'], async ([tc1]) => {
      const bal = await startBalancer(cfg([{ url: tc1!.url, route: 'tc1', max: 2 }], { timeout: 5 }));
      try {
        const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => request(`${bal.url}/slow/150?${i}`)));
        assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
        assert.equal(tc1!.maxActive, 2);
      } finally {
        await bal.close();
      }
    });
  });

  test('beyond `max`, a request waits `timeout` seconds and then gets 503 with Retry-After', async () => {
    await withMembers(['tc1'], async ([tc1]) => {
      const bal = await startBalancer(cfg([{ url: tc1!.url, route: 'tc1', max: 1 }], { timeout: 0.3 }));
      try {
        const slow = request(`${bal.url}/slow/1500`);
        await until(() => tc1!.active === 1, 2000, 'the slow request to start');
        const t0 = Date.now();
        const r = await request(`${bal.url}/`);
        const waited = Date.now() - t0;
        assert.equal(r.status, 503);
        assert.ok(r.headers['retry-after']);
        assert.ok(waited >= 250, `answered after ${waited} ms, before the timeout`);
        assert.equal((await slow).status, 200);
        assert.equal(tc1!.maxActive, 1);
        assert.equal(bal.server.snapshot()[0]!.members[0]!.busy, 0);
      } finally {
        await bal.close();
      }
    });
  });

  test('pipelined requests to a member with max 1 and timeout 0 are all served, one after another', async () => {
    await withMembers(['tc1'], async ([tc1]) => {
      const bal = await startBalancer(cfg([{ url: tc1!.url, route: 'tc1', max: 1 }]));
      try {
        const raw = 'GET /p1 HTTP/1.1\r\nHost: a\r\n\r\nGET /p2 HTTP/1.1\r\nHost: a\r\n\r\nGET /p3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n';
        assert.deepEqual(statuses(await rawExchange(bal.port, raw, 1000)), [200, 200, 200]);
      } finally {
        await bal.close();
      }
    });
  });

  test('with timeout 0, a request beyond `max` gets 503 at once', async () => {
    await withMembers(['tc1'], async ([tc1]) => {
      const bal = await startBalancer(cfg([{ url: tc1!.url, route: 'tc1', max: 1 }]));
      try {
        const slow = request(`${bal.url}/slow/800`);
        await until(() => tc1!.active === 1, 2000, 'the slow request to start');
        const r = await request(`${bal.url}/`);
        assert.equal(r.status, 503);
        assert.equal((await slow).status, 200);
      } finally {
        await bal.close();
      }
    });
  });

  test('slow start: a member back from error ramps up instead of taking a full share at once', async () => {
    await withMembers(['tc1', 'tc2'], async ([tc1, tc2]) => {
      const bal = await startBalancer({ balancers: [{ name: 'b', slowstart: 60, members: [{ url: tc1!.url, route: 'tc1', retry: 0.5 }, { url: tc2!.url, route: 'tc2' }] }] });
      try {
        // Let the startup ramp of both finish (it applies equally to both): compare only tc1's recovery.
        (bal.server.balancers.get('b')!.members[1]!).recoveredAt = Number.NEGATIVE_INFINITY;
        (bal.server.balancers.get('b')!.members[0]!).recoveredAt = Number.NEGATIVE_INFINITY;
        await tc1!.refuse();
        await served(bal, 2);
        assert.equal(health(bal, 'tc1').health, 'error');
        await tc1!.restore();
        await sleep(600);
        const got = await served(bal, 40);
        const share = got.filter((x) => x === 'tc1').length;
        assert.ok(share >= 1, 'tc1 is back');
        assert.ok(share <= 8, `tc1 took ${share} of 40 right after recovering`);
        assert.equal(health(bal, 'tc1').health, 'ok');
      } finally {
        await bal.close();
      }
    });
  });
});

test('slow start: a member added by a config reload ramps up too', async () => {
  await withMembers(['tc1', 'tc2'], async ([tc1, tc2]) => {
    const { parseBalancerConfig } = await import('../../src/config/load.js');
    const spec = (members: Record<string, unknown>[]) => parseBalancerConfig({ listen: '127.0.0.1:0', accesslog: false, balancers: [{ name: 'b', slowstart: 60, members }] });
    const bal = await startBalancer({ balancers: [{ name: 'b', slowstart: 60, members: [{ url: tc1!.url, route: 'tc1' }] }] });
    try {
      bal.server.balancers.get('b')!.members[0]!.recoveredAt = Number.NEGATIVE_INFINITY;
      await bal.server.reload(spec([{ url: tc1!.url, route: 'tc1' }, { url: tc2!.url, route: 'tc2' }]));
      const got = await served(bal, 40);
      const share = got.filter((x) => x === 'tc2').length;
      assert.ok(share >= 1 && share <= 8, `new member took ${share} of 40 at once`);
    } finally {
      await bal.close();
    }
  });
});

describe('hot standby, lbsets, drain, nofailover', () => {
  const members = (bs: Backend[]) => [
    { url: bs[0]!.url, route: 'tc1', lbset: 0 },
    { url: bs[1]!.url, route: 'tc2', lbset: 0, status: ['hot-standby'] },
    { url: bs[2]!.url, route: 'tc3', lbset: 1 },
  ];
  const steps: { down: string[]; expect: string }[] = [
    { down: [], expect: 'tc1' },
    { down: ['tc1'], expect: 'tc2' },
    { down: ['tc1', 'tc2'], expect: 'tc3' },
  ];
  for (const s of steps) {
    test(`members down: [${s.down.join(', ')}] → traffic goes to ${s.expect}`, async () => {
      await withMembers(['tc1', 'tc2', 'tc3'], async (bs) => {
        // maxattempts 2: a request that meets two dead members in turn still reaches tc3.
        const bal = await startBalancer(cfg(members(bs), { maxattempts: 2 }));
        try {
          for (const b of bs) if (s.down.includes(b.name)) await b.refuse();
          const got = await served(bal, 6);
          assert.deepEqual(got, Array(6).fill(s.expect));
        } finally {
          await bal.close();
        }
      });
    });
  }

  test('a draining member receives only requests whose route is its own; no new sessions', async () => {
    await withMembers(['tc1', 'tc2'], async ([tc1, tc2]) => {
      const bal = await startBalancer(cfg([{ url: tc1!.url, route: 'tc1', status: ['drain'] }, { url: tc2!.url, route: 'tc2' }]));
      try {
        assert.deepEqual(await served(bal, 6), Array(6).fill('tc2'));
        assert.deepEqual(await served(bal, 3, { cookie: 'JSESSIONID=x.tc1' }), Array(3).fill('tc1'));
        assert.deepEqual(await served(bal, 2, { cookie: 'JSESSIONID=x.tc9' }), ['tc2', 'tc2']);
      } finally {
        await bal.close();
      }
    });
  });

  test('nofailover: a sticky request whose member is down gets 503; others are served', async () => {
    await withMembers(['tc1', 'tc2'], async ([tc1, tc2]) => {
      const bal = await startBalancer(cfg([{ url: tc1!.url, route: 'tc1' }, { url: tc2!.url, route: 'tc2' }], { nofailover: true }));
      try {
        await tc1!.refuse();
        for (let i = 0; i < 2; i++) {
          const r = await request(`${bal.url}/`, { headers: { cookie: 'JSESSIONID=x.tc1' } });
          assert.equal(r.status, 503, r.body);
          assert.ok(r.headers['retry-after']);
        }
        assert.deepEqual(await served(bal, 3), Array(3).fill('tc2'));
      } finally {
        await bal.close();
      }
    });
  });
});
