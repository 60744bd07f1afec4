/**
 * Forwarding (issue 2, behaviour 8) and explain (behaviour 10): chunked both
 * ways, Expect: 100-continue, WebSocket upgrades (sticky), hop-by-hop headers
 * (CVE-2022-31813), X-Forwarded-* and Forwarded with trusted proxies,
 * ProxyPassReverse / ProxyPassReverseCookiePath rewriting.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { startBackend, startBalancer, request, rawExchange, encodeMaskedText, decodeText, wsAccept, type Backend, type RunningBalancer } from '../helpers/backends.js';

let tc1: Backend;
let tc2: Backend;
let bal: RunningBalancer;
let trusting: RunningBalancer;

function config(extra: Record<string, unknown> = {}) {
  return {
    balancers: [{ name: 'b', slowstart: 0, members: [{ url: tc1.url, route: 'tc1' }, { url: tc2.url, route: 'tc2' }] }],
    mounts: [{ path: '/app', balancer: 'b', upstream: '/examples' }, { path: '/', balancer: 'b' }],
    ...extra,
  };
}

before(async () => {
  tc1 = await startBackend('tc1');
  tc2 = await startBackend('tc2');
  bal = await startBalancer(config());
  trusting = await startBalancer(config({ trustedproxies: ['127.0.0.0/8'] }));
});
after(async () => {
  await bal.close();
  await trusting.close();
  await tc1.close();
  await tc2.close();
});

/** The member's view of the request's headers, lower-cased names → values in order. */
function echoed(body: string): { url: string; body: string; headers: Map<string, string[]> } {
  const j = JSON.parse(body) as { url: string; body: string; rawHeaders: string[] };
  const headers = new Map<string, string[]>();
  for (let i = 0; i < j.rawHeaders.length; i += 2) {
    const k = j.rawHeaders[i]!.toLowerCase();
    headers.set(k, [...(headers.get(k) ?? []), j.rawHeaders[i + 1]!]);
  }
  return { url: j.url, body: j.body, headers };
}

describe('hop-by-hop headers', () => {
  test('removed from the request, including Connection-listed ones — never the X-Forwarded-* the proxy adds (CVE-2022-31813)', async () => {
    const r = await request(`${bal.url}/echo`, {
      headers: {
        connection: 'keep-alive, X-Forwarded-For, X-Forwarded-Host, Forwarded, X-Custom',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'proxy-authorization': 'Basic eDp5',
        'proxy-connection': 'keep-alive',
        'x-custom': 'drop me',
        'x-kept': 'keep me',
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-host': 'evil.example',
        forwarded: 'for=6.6.6.6',
        host: 'shop.example:8080',
      },
    });
    assert.equal(r.status, 200);
    const { headers: h } = echoed(r.body);
    for (const gone of ['keep-alive', 'te', 'proxy-authorization', 'proxy-connection', 'x-custom']) assert.equal(h.get(gone), undefined, gone);
    assert.notEqual(h.get('connection')?.[0]?.toLowerCase().includes('x-forwarded'), true);
    assert.deepEqual(h.get('x-kept'), ['keep me']);
    // The proxy's own headers are there, and the untrusted client's are not.
    assert.deepEqual(h.get('x-forwarded-for'), ['127.0.0.1']);
    assert.deepEqual(h.get('x-forwarded-proto'), ['http']);
    assert.deepEqual(h.get('x-forwarded-host'), ['shop.example:8080']);
    assert.deepEqual(h.get('forwarded'), ['for=127.0.0.1;proto=http;host="shop.example:8080"']);
  });

  test('removed from the response, including Connection-listed ones', async () => {
    const r = await request(`${bal.url}/hop`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-internal'], undefined);
    assert.equal(r.headers['proxy-authenticate'], undefined);
    assert.notEqual(r.headers['keep-alive'], 'timeout=5');
    assert.equal(r.headers['x-public'], 'yes');
  });
});

describe('X-Forwarded-* and Forwarded: client-sent values kept only from trustedproxies', () => {
  const sent = { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'www.example', forwarded: 'for=203.0.113.7;proto=https' };
  const cases: { name: string; trusted: boolean; xff: string; proto: string; host: string; forwarded: string }[] = [
    { name: 'untrusted client: replaced', trusted: false, xff: '127.0.0.1', proto: 'http', host: 'front.example', forwarded: 'for=127.0.0.1;proto=http;host=front.example' },
    { name: 'trusted proxy: appended to', trusted: true, xff: '203.0.113.7, 127.0.0.1', proto: 'https', host: 'www.example', forwarded: 'for=203.0.113.7;proto=https, for=127.0.0.1;proto=http;host=front.example' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const r = await request(`${(c.trusted ? trusting : bal).url}/echo`, { headers: { ...sent, host: 'front.example' } });
      const { headers: h } = echoed(r.body);
      assert.deepEqual(h.get('x-forwarded-for'), [c.xff]);
      assert.deepEqual(h.get('x-forwarded-proto'), [c.proto]);
      assert.deepEqual(h.get('x-forwarded-host'), [c.host]);
      assert.deepEqual(h.get('forwarded'), [c.forwarded]);
    });
  }
});

test('mount /app → upstream /examples: path mapped, Location/Content-Location/URI and Set-Cookie Path rewritten', async () => {
  const n = tc1.seen.length + tc2.seen.length;
  const r = await request(`${bal.url}/app/redirect?a=1`, { headers: { host: 'front.example' } });
  assert.equal(r.status, 302);
  const seen = [...tc1.seen, ...tc2.seen].filter((s) => s.url.includes('redirect'));
  assert.equal(tc1.seen.length + tc2.seen.length, n + 1);
  assert.equal(seen.at(-1)!.url, '/examples/redirect?a=1');
  assert.equal(r.headers.location, 'http://front.example/app/next?x=1');
  assert.equal(r.headers['content-location'], '/app/page');
  assert.equal(r.headers.uri, 'http://front.example/app/u');
  assert.deepEqual(r.headers['set-cookie'], ['JSESSIONID=abc.tc1; Path=/app; HttpOnly']);
});

test('103 Early Hints from the member: Link passed on, then the final response', async () => {
  const out = await rawExchange(bal.port, 'GET /early HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', 800);
  assert.match(out, /^HTTP\/1\.1 103 Early Hints\r\n[^]*link: <\/style\.css>; rel=preload; as=style\r\n/i);
  assert.match(out, /HTTP\/1\.1 200 OK[^]*tc[12] after hints\n$/);
});

describe('chunked transfer coding both ways', () => {
  test('a chunked request body reaches the member intact', async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${bal.url}/echo`, { method: 'POST', agent: false }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve(b));
      });
      req.on('error', reject);
      assert.equal(req.getHeader('content-length'), undefined);
      req.write('abc');
      setTimeout(() => {
        req.write('def');
        req.end('ghi');
      }, 20);
    });
    const e = echoed(body);
    assert.equal(e.body, 'abcdefghi');
  });

  test('a chunked response (no Content-Length) reaches the client intact and chunked', async () => {
    const r = await request(`${bal.url}/chunked`);
    assert.equal(r.status, 200);
    assert.match(r.body, /^tc[12] chunked\n$/);
    assert.equal(r.headers['transfer-encoding'], 'chunked');
  });
});

test('Expect: 100-continue: the client gets 100 Continue, then the body is forwarded', async () => {
  const s = net.connect({ host: '127.0.0.1', port: bal.port });
  await once(s, 'connect');
  let got = '';
  s.on('data', (d) => (got += d.toString('latin1')));
  s.write('POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n');
  const deadline = Date.now() + 5000;
  while (!got.includes('100 Continue') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.match(got, /^HTTP\/1\.1 100 Continue\r\n\r\n/);
  s.write('hello');
  await once(s, 'close');
  assert.match(got, /HTTP\/1\.1 200 OK/);
  const e = echoed(got.slice(got.indexOf('\r\n\r\n', got.indexOf('200 OK')) + 4));
  assert.equal(e.body, 'hello');
  assert.equal(e.headers.get('expect'), undefined);
});

test('Expect: 100-continue with no usable member: the final 503 comes instead of 100 Continue', async () => {
  const b = await startBalancer({ balancers: [{ name: 'x', members: [{ url: tc1.url, route: 'tc1', status: ['disabled'] }] }] });
  try {
    const s = net.connect({ host: '127.0.0.1', port: b.port });
    await once(s, 'connect');
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.write('POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    await once(s, 'close');
    assert.match(got, /^HTTP\/1\.1 503 /);
    assert.doesNotMatch(got, /100 Continue/);
  } finally {
    await b.close();
  }
});

test('Expect: 100-continue whose first member refuses the connection is retried with its body', async () => {
  const dead = await startBackend('tc3');
  const b = await startBalancer({ balancers: [{ name: 'x', members: [{ url: dead.url, route: 'tc3' }, { url: tc1.url, route: 'tc1' }] }] });
  try {
    await dead.refuse();
    for (let i = 0; i < 2; i++) {
      const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(`${b.url}/echo`, { method: 'POST', agent: false, headers: { expect: '100-continue', 'content-length': 5 } }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.on('continue', () => req.end('hello'));
        req.on('error', reject);
      });
      assert.equal(r.status, 200);
      assert.equal(echoed(r.body).body, 'hello');
    }
  } finally {
    await b.close();
    await dead.close();
  }
});

describe('WebSocket upgrade is proxied and sticky', () => {
  for (const route of ['tc1', 'tc2']) {
    test(`JSESSIONID=….${route} → ${route}`, async () => {
      const s = net.connect({ host: '127.0.0.1', port: bal.port });
      await once(s, 'connect');
      const key = Buffer.from(`k-${route}-0123456`).toString('base64');
      s.write(`GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nCookie: JSESSIONID=s1.${route}\r\n\r\n`);
      let buf = Buffer.alloc(0);
      const read = async (pred: (b: Buffer) => boolean) => {
        const end = Date.now() + 5000;
        while (!pred(buf) && Date.now() < end) {
          const [d] = (await Promise.race([once(s, 'data'), new Promise((r) => setTimeout(() => r([Buffer.alloc(0)]), 100))])) as [Buffer];
          buf = Buffer.concat([buf, d]);
        }
      };
      await read((b) => b.includes('\r\n\r\n'));
      const headEnd = buf.indexOf('\r\n\r\n') + 4;
      const head = buf.subarray(0, headEnd).toString();
      assert.match(head, /^HTTP\/1\.1 101 /);
      assert.match(head, new RegExp(`sec-websocket-accept: ${wsAccept(key).replace(/[+/=]/g, '\\$&')}`, 'i'));
      assert.match(head, new RegExp(`x-backend: ${route}`, 'i'));
      buf = buf.subarray(headEnd);
      s.write(encodeMaskedText('ping'));
      await read((b) => b.length >= 2 && b.length >= 2 + (b[1]! & 0x7f));
      assert.equal(decodeText(buf), `${route}:ping`);
      s.destroy();
    });
  }
});

async function wsHandshake(port: number, cookie: string): Promise<string> {
  const s = net.connect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  s.write(`GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: ${cookie}\r\n\r\n`);
  let head = '';
  const end = Date.now() + 5000;
  s.on('data', (d) => (head += d.toString('latin1')));
  while (!head.includes('\r\n\r\n') && !s.destroyed && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  s.destroy();
  return head;
}

test('a refused upgrade (member answers 403) is passed on and the connection closed: no raw tunnel to the member (WebSocket smuggling)', async () => {
  const n1 = tc1.seen.length;
  const n2 = tc2.seen.length;
  const s = net.connect({ host: '127.0.0.1', port: bal.port });
  await once(s, 'connect');
  let got = '';
  s.on('data', (d) => (got += d.toString('latin1')));
  s.on('error', () => {});
  s.write('GET /deny HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  const end = Date.now() + 3000;
  while (!got.includes('denied') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  if (!s.destroyed) s.write('GET /internal/admin HTTP/1.1\r\nHost: a\r\n\r\n');
  await Promise.race([once(s, 'close'), new Promise((r) => setTimeout(r, 1500))]);
  s.destroy();
  assert.match(got, /^HTTP\/1\.1 403 Forbidden\r\n/);
  assert.match(got, /connection: close/i);
  assert.match(got, /\r\n\r\ndenied$/);
  const fresh = [...tc1.seen.slice(n1), ...tc2.seen.slice(n2)];
  assert.deepEqual(fresh.map((x) => x.url), ['/deny']);
});

describe('WebSocket failover', () => {
  test('the sticky member is down: the upgrade fails over to another member', async () => {
    const dead = await startBackend('tc3');
    const alive = await startBackend('tc4');
    const b = await startBalancer({ balancers: [{ name: 'x', members: [{ url: dead.url, route: 'tc3' }, { url: alive.url, route: 'tc4' }] }] });
    try {
      await dead.refuse();
      const head = await wsHandshake(b.port, 'JSESSIONID=s.tc3');
      assert.match(head, /^HTTP\/1\.1 101 /);
      assert.match(head, /x-backend: tc4/i);
      assert.equal(b.server.snapshot()[0]!.members[0]!.health, 'error');
    } finally {
      await b.close();
      await dead.close();
      await alive.close();
    }
  });

  test('no member usable: 503, and busy counts return to 0', async () => {
    const dead = await startBackend('tc3');
    const b = await startBalancer({ balancers: [{ name: 'x', forcerecovery: false, members: [{ url: dead.url, route: 'tc3' }] }] });
    try {
      await dead.refuse();
      assert.match(await wsHandshake(b.port, 'JSESSIONID=s.tc3'), /^HTTP\/1\.1 503 /);
      assert.match(await wsHandshake(b.port, 'JSESSIONID=s.tc3'), /^HTTP\/1\.1 503 /);
      assert.equal(b.server.snapshot()[0]!.members[0]!.busy, 0);
    } finally {
      await b.close();
      await dead.close();
    }
  });

  test('the upgrade request gets the same hop-by-hop and X-Forwarded-* treatment', async () => {
    const n1 = tc1.seen.length;
    const n2 = tc2.seen.length;
    const s = net.connect({ host: '127.0.0.1', port: bal.port });
    await once(s, 'connect');
    s.write('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade, X-Forwarded-For, X-Secret\r\nX-Secret: s\r\nX-Forwarded-For: 6.6.6.6\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    await once(s, 'data');
    s.destroy();
    const fresh = [...tc1.seen.slice(n1), ...tc2.seen.slice(n2)];
    assert.equal(fresh.length, 1);
    const h = fresh[0]!;
    assert.equal(h.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(h.headers['x-secret'], undefined);
    assert.equal(h.headers.upgrade, 'websocket');
  });
});

describe('explain header (X-Cohort-Explain: 1)', () => {
  test('says the route read, the member chosen and why: sticky', async () => {
    const r = await request(`${bal.url}/`, { headers: { 'x-cohort-explain': '1', cookie: 'JSESSIONID=s.tc2' } });
    const x = String(r.headers['x-cohort-explain']);
    assert.match(x, /route=tc2 \(cookie\)/);
    assert.match(x, /member=tc2/);
    assert.match(x, /reason=sticky/);
  });
  test('balanced when there is no route', async () => {
    const r = await request(`${bal.url}/`, { headers: { 'x-cohort-explain': '1' } });
    const x = String(r.headers['x-cohort-explain']);
    assert.match(x, /route=-/);
    assert.match(x, /member=tc[12]/);
    assert.match(x, /reason=balanced/);
    assert.match(x, /byrequests/);
  });
  test('not sent without the request header', async () => {
    const r = await request(`${bal.url}/`);
    assert.equal(r.headers['x-cohort-explain'], undefined);
  });
  test('failover when the route\'s member is down', async () => {
    const dead = await startBackend('tc3');
    const alive = await startBackend('tc4');
    const b = await startBalancer({ balancers: [{ name: 'x', slowstart: 0, members: [{ url: dead.url, route: 'tc3' }, { url: alive.url, route: 'tc4' }] }] });
    try {
      await dead.refuse();
      const r1 = await request(`${b.url}/`, { headers: { 'x-cohort-explain': '1', cookie: 'JSESSIONID=s.tc3' } });
      assert.equal(r1.status, 200);
      assert.match(String(r1.headers['x-cohort-explain']), /member=tc4/);
      assert.match(String(r1.headers['x-cohort-explain']), /tc3 failed: ECONNREFUSED/);
      const r2 = await request(`${b.url}/`, { headers: { 'x-cohort-explain': '1', cookie: 'JSESSIONID=s.tc3' } });
      const x = String(r2.headers['x-cohort-explain']);
      assert.match(x, /route=tc3 \(cookie\)/);
      assert.match(x, /member=tc4/);
      assert.match(x, /reason=failover/);
      assert.match(x, /route tc3 unusable \(error: ECONNREFUSED/);
    } finally {
      await b.close();
      await dead.close();
      await alive.close();
    }
  });
});

/** Opens a websocket through the balancer; resolves with the response head and the open socket. */
async function wsOpen(port: number): Promise<{ head: string; socket: net.Socket }> {
  const s = net.connect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  s.write('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  let head = '';
  s.on('data', (d: Buffer) => (head += d.toString('latin1')));
  const end = Date.now() + 8000;
  while (!head.includes('\r\n\r\n') && !s.destroyed && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return { head, socket: s };
}

test('websocket upgrades obey max and the queue like requests: the second waits for the first tunnel to close', async () => {
  const b = await startBalancer({ balancers: [{ name: 'b', slowstart: 0, timeout: 5, members: [{ url: tc1.url, route: 'tc1', max: 1 }] }], mounts: [{ path: '/', balancer: 'b' }] });
  try {
    const first = await wsOpen(b.port);
    assert.match(first.head, /^HTTP\/1\.1 101 /);
    const second = wsOpen(b.port);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(b.server.balancers.get('b')!.queued, 1, 'the second upgrade waits in the queue');
    first.socket.destroy();
    const { head, socket } = await second;
    assert.match(head, /^HTTP\/1\.1 101 /);
    socket.destroy();
  } finally {
    await b.close();
  }
});

test('websocket upgrade with no usable member: 503 with Retry-After', async () => {
  const b = await startBalancer({ balancers: [{ name: 'b', slowstart: 0, members: [{ url: tc1.url, route: 'tc1', status: ['disabled'] }] }], mounts: [{ path: '/', balancer: 'b' }] });
  try {
    const { head, socket } = await wsOpen(b.port);
    socket.destroy();
    assert.match(head, /^HTTP\/1\.1 503 /);
    assert.match(head, /retry-after: 1/i);
  } finally {
    await b.close();
  }
});
