/**
 * Hostile HTTP at the balancer that bad-input.test.ts does not cover (issue 7):
 * slowloris (heads sent a byte at a time), upgrade abuse (h2c, upgrades on
 * POST, a member that refuses the upgrade but keeps the connection open, so
 * that a raw tunnel would bypass the balancer), and a descriptor count of the
 * whole file before and after.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { startBackend, startBalancer, rawExchange, statuses, request, openFds, until, sleep, type Backend, type RunningBalancer } from '../helpers/backends.js';

let backend: Backend;
let bal: RunningBalancer;
let fdsAtStart = 0;

before(async () => {
  fdsAtStart = openFds();
  backend = await startBackend('m1');
  bal = await startBalancer({ timeouts: { headers: 1 }, balancers: [{ name: 'b', slowstart: 0, members: [{ url: backend.url, route: 'm1' }] }], mounts: [{ path: '/', balancer: 'b' }] });
});
after(async () => {
  await bal.close();
  await backend.close();
  await until(() => openFds() <= fdsAtStart + 2, 5000, `fds back to ${fdsAtStart} (now ${openFds()})`);
});

const H = 'Host: a.example\r\n';

test('slowloris: 100 connections dribbling their heads get 408 and are closed after timeouts.headers; others are served meanwhile', { timeout: 20_000 }, async (t) => {
  const fds0 = openFds();
  const seen0 = backend.seen.length;
  const head = `GET /slow HTTP/1.1\r\n${H}X-Dribble: ${'a'.repeat(200)}\r\n\r\n`;
  const t0 = performance.now();
  const results = Promise.all(Array.from({ length: 100 }, async () => {
    const s = net.connect(bal.port, '127.0.0.1');
    s.on('error', () => undefined);
    await once(s, 'connect');
    let got = '';
    s.on('data', (d: Buffer) => void (got += d.toString('latin1')));
    const closed = once(s, 'close');
    // One byte every 100 ms: the whole head would take 25 s.
    let i = 0;
    const timer = setInterval(() => (s.writable && i < head.length ? s.write(head[i++]!) : clearInterval(timer)), 100);
    await closed;
    clearInterval(timer);
    return { got, ms: performance.now() - t0 };
  }));
  // Normal traffic is served while they dribble.
  await sleep(300);
  assert.equal((await request(`${bal.url}/fine`)).status, 200);
  const r = await results;
  const slowest = Math.max(...r.map((x) => x.ms));
  t.diagnostic(`100 slowloris connections: all closed within ${slowest.toFixed(0)} ms (headers timeout 1 s); fds ${fds0} before, ${openFds()} after`);
  for (const x of r) assert.match(x.got, /^HTTP\/1\.1 408 /);
  assert.ok(slowest < 4000, `slowest closed after ${slowest} ms`);
  assert.equal(backend.seen.slice(seen0).filter((s) => s.url === '/slow').length, 0, 'nothing incomplete reached the member');
  await until(() => openFds() <= fds0 + 2, 5000, 'slowloris descriptors released');
});

test('h2c upgrade (Connection: Upgrade, HTTP2-Settings) is refused with 400 and never reaches the member', async () => {
  const seen0 = backend.seen.length;
  const out = await rawExchange(bal.port, `GET /h2c HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`, 800);
  assert.equal(statuses(out)[0], 400);
  assert.equal(backend.seen.slice(seen0).length, 0);
});

test('Upgrade: h2c without Connection: upgrade is a plain request: forwarded without Upgrade or HTTP2-Settings', async () => {
  const seen0 = backend.seen.length;
  const out = await rawExchange(bal.port, `GET /h2c-plain HTTP/1.1\r\n${H}Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: close\r\n\r\n`, 800);
  assert.equal(statuses(out)[0], 200);
  const seen = backend.seen.slice(seen0);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.headers['upgrade'], undefined);
  assert.equal(seen[0]!.headers['http2-settings'], undefined);
});

test('upgrade abuse: websocket upgrade by POST, unknown protocol, protocol list → 400, never forwarded', async () => {
  const seen0 = backend.seen.length;
  for (const raw of [
    `POST /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n`,
    `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: TLS/1.2\r\n\r\n`,
    `GET /ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n`,
  ]) {
    assert.equal(statuses(await rawExchange(bal.port, raw, 800))[0], 400, raw.split('\r\n')[0]);
  }
  assert.equal(backend.seen.slice(seen0).length, 0);
});

test('a member that refuses a websocket upgrade (no 101) does not get a raw tunnel: its answer goes to the client, then the connection closes', async () => {
  // A member that answers every upgrade with 404 and keeps the connection open, logging whatever arrives on it afterwards.
  const after: string[] = [];
  const refuser = net.createServer((c) => {
    let buf = '';
    let answered = false;
    c.on('error', () => undefined);
    c.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (!answered && buf.includes('\r\n\r\n')) {
        answered = true;
        c.write('HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nno socket');
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
      }
      if (answered && buf.length > 0) after.push(buf);
    });
  });
  await new Promise<void>((r) => refuser.listen(0, '127.0.0.1', r));
  const port = (refuser.address() as net.AddressInfo).port;
  const b = await startBalancer({ balancers: [{ name: 'b', slowstart: 0, members: [{ url: `http://127.0.0.1:${port}`, route: 'r' }] }], mounts: [{ path: '/public', balancer: 'b' }] });
  try {
    const s = net.connect(b.port, '127.0.0.1');
    s.on('error', () => undefined);
    await once(s, 'connect');
    let got = '';
    s.on('data', (d: Buffer) => void (got += d.toString('latin1')));
    s.write(`GET /public/ws HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await until(() => got.includes('no socket'), 3000, 'the member\'s answer');
    // Smuggle a request outside the mount, with a framing the balancer would refuse.
    s.write(`GET /admin HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`);
    await until(() => s.destroyed || s.readableEnded, 3000, 'connection closed after the refused upgrade');
    await sleep(100);
    assert.match(got, /^HTTP\/1\.1 404 /);
    assert.deepEqual(after, [], 'bytes after the refused upgrade reached the member through a raw tunnel');
  } finally {
    await b.close();
    await new Promise((r) => refuser.close(r));
  }
});

test('200 websocket upgrades opened and dropped while the member ignores the FIN: the balancer returns every descriptor', async () => {
  // A member that switches protocols and then keeps its half-open side forever.
  const held = new Set<net.Socket>();
  const member = net.createServer({ allowHalfOpen: true }, (c) => {
    held.add(c);
    c.on('close', () => held.delete(c));
    c.on('error', () => undefined);
    c.once('data', () => c.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n'));
  });
  await new Promise<void>((r) => member.listen(0, '127.0.0.1', r));
  const b = await startBalancer({ balancers: [{ name: 'b', slowstart: 0, members: [{ url: `http://127.0.0.1:${(member.address() as net.AddressInfo).port}`, route: 'w' }] }], mounts: [{ path: '/', balancer: 'b' }] });
  try {
    const fds0 = openFds();
    await Promise.all(Array.from({ length: 200 }, async (_, i) => {
      const s = net.connect(b.port, '127.0.0.1');
      s.on('error', () => undefined);
      await once(s, 'connect');
      s.write(`GET /ws${i} HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
      await once(s, 'data');
      s.destroy();
    }));
    // Descriptors of this process minus the member's own half-open sockets: the balancer's share.
    await until(() => openFds() - held.size <= fds0 + 2, 6000, `balancer fds back to ${fds0} (now ${openFds() - held.size})`);
  } finally {
    await b.close();
    for (const c of held) c.destroy();
    await new Promise((r) => member.close(r));
  }
});
