/**
 * Resource bounds (issue 7): 10,000 idle keep-alive client connections held by
 * a balancer running alone in its own process. Each connection made one
 * request and stays open (the balancer keeps idle client connections 65 s).
 * Reports the balancer's RSS and heap per connection; asserts a generous bound
 * and that every descriptor is given back when the clients hang up.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { BalancerProcess } from '../../chaos/balancer-handle.js';
import { startBackend, until } from '../helpers/backends.js';

const WANTED = 10_000;
/** Descriptors kept free in each process for everything else (backend, pools, stdio, runner). */
const FD_HEADROOM = 300;
const RSS_BOUND_BYTES = 300 * 1024 * 1024;
/** Below the member's default `max` (150) so that no request is refused while connections open. */
const BATCH = 100;

/** Soft limit of open files of this process (the balancer child inherits it). */
function openFilesLimit(): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === undefined || soft === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(soft);
}

/** Opens a connection, sends one keep-alive request and resolves once the whole response has arrived. */
function oneRequest(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.setEncoding('latin1');
    const onData = (d: string) => {
      got += d;
      const head = got.indexOf('\r\n\r\n');
      if (head < 0) return;
      const len = /\r\ncontent-length: *(\d+)/i.exec(got.slice(0, head));
      if (!got.startsWith('HTTP/1.1 200')) return reject(new Error(`unexpected answer ${got.slice(0, 80)}`));
      if (len && got.length >= head + 4 + Number(len[1])) {
        s.off('data', onData);
        resolve(s);
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write('GET /idle HTTP/1.1\r\nHost: bal.example\r\n\r\n');
  });
}

test('10,000 idle keep-alive client connections: bounded balancer memory, descriptors returned', { timeout: 90_000 }, async (t) => {
  const limit = openFilesLimit();
  const count = Math.min(WANTED, limit - FD_HEADROOM);
  if (count < WANTED) t.diagnostic(`open-files limit ${limit}: holding ${count} connections instead of ${WANTED}`);
  const backend = await startBackend('idle');
  const bal = await BalancerProcess.start({
    listen: '127.0.0.1:0',
    accesslog: false,
    loglevel: 'warn',
    balancers: [{ name: 'b', slowstart: 0, members: [{ url: backend.url, route: 'm' }] }],
    mounts: [{ path: '/', balancer: 'b' }],
  });
  const sockets: net.Socket[] = [];
  try {
    // Warm the path (pools, JIT) so that the baseline is not the cold process.
    for (let i = 0; i < 50; i++) (await oneRequest(bal.port)).destroy();
    await new Promise((r) => setTimeout(r, 300));
    const before = await bal.stats(true);
    const t0 = performance.now();
    for (let i = 0; i < count; i += BATCH) {
      const n = Math.min(BATCH, count - i);
      sockets.push(...(await Promise.all(Array.from({ length: n }, () => oneRequest(bal.port)))));
    }
    const openMs = performance.now() - t0;
    const held = await bal.stats(true);
    const rss = held.rss - before.rss;
    const heap = held.heapUsed - before.heapUsed;
    t.diagnostic(`${count} idle keep-alive connections opened in ${(openMs / 1000).toFixed(1)} s; balancer RSS ${(before.rss / 1048576).toFixed(1)} → ${(held.rss / 1048576).toFixed(1)} MiB (+${(rss / 1048576).toFixed(1)} MiB, ${(rss / count / 1024).toFixed(1)} KiB per connection); heap ${(before.heapUsed / 1048576).toFixed(1)} → ${(held.heapUsed / 1048576).toFixed(1)} MiB (+${(heap / count / 1024).toFixed(2)} KiB per connection, after forced GC: ${held.gc}); fds ${before.fds} → ${held.fds}`);
    assert.ok(held.fds - before.fds >= count, `the balancer holds the connections (${held.fds - before.fds} new descriptors)`);
    assert.ok(rss < RSS_BOUND_BYTES, `RSS grew by ${(rss / 1048576).toFixed(1)} MiB`);
    // Still serving while it holds them.
    (await oneRequest(bal.port)).destroy();
    for (const s of sockets.splice(0)) s.destroy();
    // What may stay: the upstream keep-alive connections to the member (at most one per concurrent request, BATCH).
    await until(async () => (await bal.stats(false)).fds <= before.fds + BATCH + 5, 20_000, 'client descriptors returned');
    const after = await bal.stats(true);
    t.diagnostic(`after the clients hung up: fds ${after.fds} (baseline ${before.fds}; up to ${BATCH} upstream keep-alive connections may remain), heap ${(after.heapUsed / 1048576).toFixed(1)} MiB, RSS ${(after.rss / 1048576).toFixed(1)} MiB`);
  } finally {
    for (const s of sockets) s.destroy();
    await bal.stop();
    await backend.close();
  }
});
