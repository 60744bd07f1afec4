/**
 * Timeouts (issue 2, behaviour 9): connect, first byte and idle, answered
 * with 504 or a cut connection, and no leaked sockets — counted both on the
 * stalled member's side (its open connections) and as open fds of this process.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startBackend, startBalancer, startSilentServer, request, rawExchange, openFds, until } from '../helpers/backends.js';

const FAST = { connect: 0.4, firstbyte: 0.4, idle: 0.4, keepalive: 1 };

describe('timeouts', () => {
  test('connect timeout (a TLS member that accepts TCP but never handshakes): member in error, retried elsewhere', async () => {
    const silent = await startSilentServer();
    const good = await startBackend('tc2');
    const bal = await startBalancer({ timeouts: FAST, balancers: [{ name: 'b', slowstart: 0, members: [{ url: `https://127.0.0.1:${silent.port}`, route: 'tc1' }, { url: good.url, route: 'tc2' }] }] });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await request(`${bal.url}/`);
        assert.equal(r.status, 200);
        assert.equal(r.headers['x-backend'], 'tc2');
      }
      const m = bal.server.snapshot()[0]!.members[0]!;
      assert.equal(m.health, 'error');
      assert.equal(m.reason?.source, 'connect');
      assert.match(m.reason!.message, /CONNECT_TIMEOUT/);
      // The stalled handshake's socket was closed by the balancer.
      await until(() => silent.open() === 0, 5000, 'the balancer to close the stalled connection');
    } finally {
      await bal.close();
      await silent.close();
      await good.close();
    }
  });

  test('connect timeout with no other member → 504', async () => {
    const silent = await startSilentServer();
    const bal = await startBalancer({ timeouts: FAST, balancers: [{ name: 'b', members: [{ url: `https://127.0.0.1:${silent.port}`, route: 'tc1' }] }] });
    try {
      const r = await request(`${bal.url}/`);
      assert.equal(r.status, 504);
    } finally {
      await bal.close();
      await silent.close();
    }
  });

  test('no first byte within timeouts.firstbyte → 504, and the member connection is closed', async () => {
    const silent = await startSilentServer();
    const bal = await startBalancer({ timeouts: FAST, balancers: [{ name: 'b', members: [{ url: `http://127.0.0.1:${silent.port}`, route: 'tc1' }] }] });
    try {
      const t0 = Date.now();
      const r = await request(`${bal.url}/first-byte`);
      assert.equal(r.status, 504);
      assert.ok(Date.now() - t0 < 5000);
      assert.match(silent.received(), /^GET \/first-byte HTTP\/1\.1/);
      await until(() => silent.open() === 0, 5000, 'the balancer to close the stalled connection');
    } finally {
      await bal.close();
      await silent.close();
    }
  });

  test('a WebSocket upgrade the member never answers → 504 after timeouts.firstbyte, member connection closed', async () => {
    const member = await startBackend('tc1');
    const bal = await startBalancer({ timeouts: FAST, balancers: [{ name: 'b', members: [{ url: member.url, route: 'tc1' }] }] });
    try {
      const out = await rawExchange(bal.port, 'GET /ws/hang HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n', 3000);
      assert.match(out, /^HTTP\/1\.1 504 /);
      assert.equal(bal.server.snapshot()[0]!.members[0]!.busy, 0);
    } finally {
      await bal.close();
      await member.close();
    }
  });

  test('idle mid-body beyond timeouts.idle → the client connection is cut (not a truncated 200 that looks complete)', async () => {
    const member = await startBackend('tc1');
    const bal = await startBalancer({ timeouts: FAST, balancers: [{ name: 'b', members: [{ url: member.url, route: 'tc1' }] }] });
    try {
      const outcome = await new Promise<string>((resolve) => {
        http.get(`${bal.url}/stall`, { agent: false }, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.on('end', () => resolve(`complete ${n}`));
          res.on('aborted', () => resolve(`aborted ${res.statusCode} after ${n}`));
          res.on('error', () => resolve(`aborted ${res.statusCode} after ${n}`));
        }).on('error', (e) => resolve(`error ${e.message}`));
      });
      assert.match(outcome, /^aborted 200 after 7$/);
    } finally {
      await bal.close();
      await member.close();
    }
  });
});

test('a client that stops reading for longer than timeouts.idle is not cut (back-pressure is not idleness)', async () => {
  const member = await startBackend('tc1');
  const bal = await startBalancer({ timeouts: FAST, balancers: [{ name: 'b', members: [{ url: member.url, route: 'tc1' }] }] });
  const size = 32 * 1024 * 1024;
  try {
    const outcome = await new Promise<string>((resolve) => {
      http.get(`${bal.url}/bytes/${size}`, { agent: false }, (res) => {
        let n = 0;
        let paused = false;
        res.on('data', (c: Buffer) => {
          n += c.length;
          if (!paused && n > 4 * 1024 * 1024) {
            paused = true;
            res.pause();
            setTimeout(() => res.resume(), 1200);
          }
        });
        res.on('end', () => resolve(`complete ${n}`));
        res.on('error', () => resolve(`cut after ${n}`));
      }).on('error', (e) => resolve(`error ${e.message}`));
    });
    assert.equal(outcome, `complete ${size}`);
  } finally {
    await bal.close();
    await member.close();
  }
});

test('a client that goes away mid-request frees the member slot and the member connection', async () => {
  const member = await startBackend('tc1');
  const bal = await startBalancer({ timeouts: FAST, balancers: [{ name: 'b', members: [{ url: member.url, route: 'tc1', max: 1 }] }] });
  try {
    const req = http.get(`${bal.url}/slow/3000`, { agent: false });
    req.on('error', () => {});
    await until(() => member.active === 1, 3000, 'the request to reach the member');
    req.destroy();
    await until(() => member.active === 0, 3000, 'the member request to be aborted');
    const m = bal.server.snapshot()[0]!.members[0]!;
    assert.equal(m.busy, 0);
    // The client left; the member did nothing wrong.
    assert.equal(m.errors, 0);
    assert.equal(m.health, 'ok');
    // max is 1: the slot is free again.
    assert.equal((await request(`${bal.url}/`)).status, 200);
  } finally {
    await bal.close();
    await member.close();
  }
});

test('no leaked sockets: open fds return to their level after many failed and timed-out requests', async (t) => {
  const silent = await startSilentServer();
  const member = await startBackend('tc1');
  // A first round opens whatever the process keeps (pools, timers); then count.
  const bal = await startBalancer({ timeouts: FAST, balancers: [{ name: 'b', members: [{ url: member.url, route: 'tc1' }] }, { name: 's', members: [{ url: `http://127.0.0.1:${silent.port}`, route: 's1' }] }], mounts: [{ path: '/stuck', balancer: 's' }, { path: '/', balancer: 'b' }] });
  try {
    const round = async () => {
      const rs = await Promise.all([
        ...Array.from({ length: 5 }, () => request(`${bal.url}/stuck/x`)),
        ...Array.from({ length: 5 }, () => request(`${bal.url}/stall`).catch(() => ({ status: -1 }))),
        ...Array.from({ length: 5 }, () => request(`${bal.url}/ok`)),
        ...Array.from({ length: 3 }, () => request(`${bal.url}/x/malformed`)),
      ]);
      return rs.map((r) => r.status);
    };
    await round();
    await until(() => silent.open() === 0, 5000, 'stalled connections to close');
    const before = openFds();
    for (let i = 0; i < 3; i++) {
      const statuses = await round();
      assert.deepEqual(statuses.slice(0, 5), [504, 504, 504, 504, 504]);
      assert.deepEqual(statuses.slice(10, 15), [200, 200, 200, 200, 200]);
    }
    await until(() => silent.open() === 0, 5000, 'stalled connections to close');
    // Keep-alive connections to the healthy member may stay pooled (at most a few).
    await until(() => openFds() <= before + 2, 5000, `fds to settle (before ${before}, now ${openFds()})`);
    t.diagnostic(`open fds: before ${before}, after ${openFds()} (3 rounds of 18 requests: 504s, cut bodies, 200s, 502s)`);
  } finally {
    await bal.close();
    await silent.close();
    await member.close();
  }
});

test('abortonclose false: a client that half-closes after its request still gets the answer', async () => {
  const member = await startBackend('tc1');
  const bal = await startBalancer({ abortonclose: false, balancers: [{ name: 'b', members: [{ url: member.url, route: 'tc1' }] }] });
  try {
    const c = net.connect(bal.port, '127.0.0.1');
    let out = '';
    c.on('data', (d: Buffer) => (out += d.toString('latin1')));
    c.on('error', () => {});
    c.end('GET /slow/200 HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise((r) => c.on('close', r));
    assert.match(out, /^HTTP\/1\.1 200 /);
    assert.match(out, /x-backend: tc1/i);
  } finally {
    await bal.close();
    await member.close();
  }
});
