/**
 * The access log (issue 10 and the request-path items of issue 12): the
 * engine's buffered log in JSON (pino's field names) and in httpd's combined
 * format, session ids masked in URLs, the client address read from a trusted
 * forwarding chain only; and ProxyPreserveHost per mount or balancer.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, startBalancer, request, until, type Backend } from '../helpers/backends.js';
import { BufferedAccessLog, clfDate, maskSessionIds, ms3 } from '../../src/proxy/access-log.js';
import { clientFromChain } from '../../src/proxy/rewrite.js';
import { ipMatcher } from '../../src/util/address.js';

let dir: string;
let tc1: Backend;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-access-'));
  tc1 = await startBackend('tc1');
});
after(async () => {
  await tc1.close();
  rmSync(dir, { recursive: true, force: true });
});

test('maskSessionIds: ;jsessionid= and query values are masked, the route kept; other parameters untouched', () => {
  const table: [string, string][] = [
    ['/app;jsessionid=ABC123.tc1?x=1', '/app;jsessionid=*.tc1?x=1'],
    ['/app;JSESSIONID=ABC123', '/app;JSESSIONID=*'],
    ['/app?jsessionid=ABC.tc2&y=2', '/app?jsessionid=*.tc2&y=2'],
    ['/app?a=1&jsessionid=ABC.tc2', '/app?a=1&jsessionid=*.tc2'],
    ['/app?notjsessionid=keep', '/app?notjsessionid=keep'],
    ['/plain', '/plain'],
  ];
  for (const [url, want] of table) assert.equal(maskSessionIds(url, 'jsessionid'), want, url);
});

test('clientFromChain: the peer, unless it is a trusted proxy; then the rightmost untrusted X-Forwarded-For address', () => {
  const trusted = ipMatcher(['10.0.0.0/8']);
  const table: [peer: string, xff: string | undefined, want: string][] = [
    ['203.0.113.9', '1.2.3.4', '203.0.113.9'],
    ['10.0.0.1', '1.2.3.4', '1.2.3.4'],
    ['10.0.0.1', '6.6.6.6, 1.2.3.4, 10.0.0.2', '1.2.3.4'],
    ['10.0.0.1', '10.0.0.3, 10.0.0.2', '10.0.0.3'],
    ['10.0.0.1', undefined, '10.0.0.1'],
    ['10.0.0.1', 'garbage<script>', '10.0.0.1'],
  ];
  for (const [peer, xff, want] of table) {
    assert.equal(clientFromChain(peer, xff === undefined ? [] : ['X-Forwarded-For', xff], trusted), want, `${peer} ${xff}`);
  }
});

test('the buffered JSON access log: pino\'s field names, one line per exchange, written out at close', async () => {
  const file = join(dir, 'json.log');
  const log = new BufferedAccessLog(file, 'json');
  const bal = await startBalancer({ trustedproxies: ['127.0.0.0/8'], balancers: [{ name: 'b', members: [{ url: tc1.url, route: 'tc1' }] }] }, { accessLog: log });
  try {
    await request(`${bal.url}/page;jsessionid=SECRET.tc1?q="x"`, { headers: { 'x-forwarded-for': '198.51.100.7' } });
    await request(`${bal.url}/status/404`);
  } finally {
    await bal.server.close();
  }
  await until(() => readFileSync(file, 'utf8').split('\n').length >= 3, 3000, 'two lines');
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 2);
  assert.equal(lines[0]!.url, '/page;jsessionid=*.tc1?q=%22x%22');
  assert.equal(lines[0]!.status, 200);
  assert.equal(lines[0]!.member, 'tc1');
  assert.equal(lines[0]!.route, 'tc1');
  assert.equal(lines[0]!.reason, 'sticky');
  assert.equal(lines[0]!.client, '198.51.100.7');
  assert.equal(lines[0]!.name, 'cohort-access');
  assert.equal(typeof lines[0]!.upstreamMs, 'number');
  assert.ok(!Number.isNaN(Date.parse(String(lines[0]!.time))));
  assert.equal(lines[1]!.status, 404);
  assert.doesNotMatch(readFileSync(file, 'utf8'), /SECRET/);
});

test('the combined format is httpd\'s: host, time, request line, status, bytes, referer, user agent', async () => {
  const file = join(dir, 'combined.log');
  const log = new BufferedAccessLog(file, 'combined');
  const bal = await startBalancer({ balancers: [{ name: 'b', members: [{ url: tc1.url, route: 'tc1' }] }] }, { accessLog: log });
  try {
    await request(`${bal.url}/x?jsessionid=S1.tc1`, { headers: { referer: 'http://ref.example/', 'user-agent': 'agent "7"' } });
  } finally {
    await bal.server.close();
  }
  const line = readFileSync(file, 'utf8').trim();
  assert.match(line, /^127\.0\.0\.1 - - \[\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/x\?jsessionid=\*\.tc1 HTTP\/1\.1" 200 4 "http:\/\/ref\.example\/" "agent \\"7\\""$/);
  assert.equal(clfDate(new Date(Date.UTC(2000, 9, 10, 13, 55, 36))), '10/Oct/2000:13:55:36 +0000');
});

test('preservehost (httpd ProxyPreserveHost): off by default; on per balancer or per mount, the mount\'s setting winning', async () => {
  const hostSeen = async (cfg: Record<string, unknown>, path: string) => {
    const bal = await startBalancer(cfg);
    try {
      const r = await request(`${bal.url}${path}/echo`, { headers: { host: 'front.example:8443' } });
      const raw = (JSON.parse(r.body) as { rawHeaders: string[] }).rawHeaders;
      return raw.filter((_, i) => i % 2 === 0 && raw[i]!.toLowerCase() === 'host').length === 1 ? raw[raw.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'host') + 1] : 'several';
    } finally {
      await bal.close();
    }
  };
  const member = new URL(tc1.url).host;
  const members = [{ url: tc1.url, route: 'tc1' }];
  assert.equal(await hostSeen({ balancers: [{ name: 'b', members }] }, ''), member);
  assert.equal(await hostSeen({ balancers: [{ name: 'b', preservehost: true, members }] }, ''), 'front.example:8443');
  const mounts = [{ path: '/kept', balancer: 'b', preservehost: true }, { path: '/plain', balancer: 'b' }, { path: '/off', balancer: 'c', preservehost: false }];
  const two = { balancers: [{ name: 'b', members }, { name: 'c', preservehost: true, members }], mounts };
  assert.equal(await hostSeen(two, '/kept'), 'front.example:8443');
  assert.equal(await hostSeen(two, '/plain'), member);
  assert.equal(await hostSeen(two, '/off'), member);
});

test('the line buffer keeps every line, in order, across many buffer flushes and at close', async () => {
  const file = join(dir, 'many.log');
  const log = new BufferedAccessLog(file, 'json');
  const entry = { method: 'GET', status: 200, balancer: 'b', member: 'tc1', route: undefined, reason: 'balanced', attempts: 1, upstreamMs: 1, ms: 2, bytes: 3, client: '127.0.0.1', sessionParam: 'jsessionid', sessionSep: '.', rawHeaders: [], httpVersion: '1.1' };
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    log.write({ ...entry, url: `/r/${i}/${'x'.repeat(i % 300)}` });
    // Let some asynchronous writes happen in between.
    if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 50));
  log.close();
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, n);
  assert.equal(log.dropped, 0);
  const urls = lines.map((l) => Number(String((JSON.parse(l) as { url: string }).url).split('/')[2]));
  assert.deepEqual(urls, Array.from({ length: n }, (_, i) => i));
});

test('ms3 writes what String(round3(n)) writes: three decimals at most, no trailing zeros, any magnitude', () => {
  const round3 = (n: number) => Math.round(n * 1000) / 1000;
  let seed = 7;
  const next = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const cases = [0, 0.0004, 0.0005, 0.001, 0.1, 0.25, 1, 1.5, 10.01, 123456.7894, 2 ** 40, 1e-9, -1, Number.NaN, Number.POSITIVE_INFINITY];
  for (let i = 0; i < 200_000; i++) cases.push(next() * 10 ** ((i % 9) - 3));
  for (const n of cases) assert.equal(ms3(n), String(round3(n)), `n = ${n}`);
});

test('JSON lines with fields outside ASCII are written as UTF-8, the ASCII ones byte for byte, in order', () => {
  const file = join(dir, 'utf8.log');
  const log = new BufferedAccessLog(file, 'json');
  const entry = (url: string, member: string) => ({
    method: 'GET', url, status: 200, balancer: 'b', member, route: undefined, reason: 'balanced', attempts: 1, upstreamMs: 1.25, ms: 2,
    bytes: 3, client: '127.0.0.1', sessionParam: 'jsessionid', sessionSep: '.', rawHeaders: [], httpVersion: '1.1',
  });
  log.write(entry('/plain', 'tc1'));
  log.write(entry('/caf\u00e9/\u20ac/\ud83d\ude00', 'n\u0153ud'));
  log.write(entry('/q"\\\u0001', 'tc2'));
  log.write(entry('/after', 'tc3'));
  log.close!();
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(lines.map((l) => [l.url, l.member, l.upstreamMs]), [
    ['/plain', 'tc1', 1.25], ['/caf\u00e9/\u20ac/\ud83d\ude00', 'n\u0153ud', 1.25], ['/q"\\\u0001', 'tc2', 1.25], ['/after', 'tc3', 1.25],
  ]);
});
