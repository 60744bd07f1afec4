/**
 * HTTP/2 to clients (issue 10): a TLS listener offers ALPN h2 and http/1.1;
 * h2 streams go through the same mounts, sticky routing (cookie crumbs
 * joined), failover and answers as HTTP/1.1 requests, and reach members
 * over the HTTP/1.1 pools.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, startBalancer, openFds, until, type Backend, type RunningBalancer } from '../helpers/backends.js';

let dir: string;
let ca: Buffer;
let tc1: Backend;
let tc2: Backend;
let bal: RunningBalancer;
let fds0 = 0;

before(async () => {
  fds0 = openFds();
  dir = mkdtempSync(join(tmpdir(), 'cohort-h2-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  ca = readFileSync(cert);
  tc1 = await startBackend('tc1');
  tc2 = await startBackend('tc2');
  bal = await startBalancer({ listen: { address: '127.0.0.1:0', tls: { cert, key } }, balancers: [{ name: 'b', slowstart: 0, members: [{ url: tc1.url, route: 'tc1' }, { url: tc2.url, route: 'tc2' }] }] });
});
after(async () => {
  await bal.close();
  await tc1.close();
  await tc2.close();
  rmSync(dir, { recursive: true, force: true });
  await until(() => openFds() <= fds0 + 2, 5000, `fds back to ${fds0} (now ${openFds()})`);
});

interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

function h2request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const s = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let h: http2.IncomingHttpHeaders = {};
    let out = '';
    s.on('response', (r) => {
      h = r;
      status = Number(r[':status']);
    });
    s.on('data', (c: Buffer) => (out += c.toString()));
    s.on('end', () => resolve({ status, headers: h, body: out }));
    s.on('error', reject);
    if (body !== undefined) s.end(body);
  });
}

test('an h2 client is served on the TLS listener: forwarded over HTTP/1.1, X-Forwarded-Proto https, the body both ways', async () => {
  const session = http2.connect(bal.url, { ca });
  try {
    const r = await h2request(session, { ':method': 'POST', ':path': '/echo' }, 'over h2');
    assert.equal(r.status, 200);
    const e = JSON.parse(r.body) as { httpVersion: string; body: string; rawHeaders: string[] };
    assert.equal(e.httpVersion, '1.1');
    assert.equal(e.body, 'over h2');
    const xfp = e.rawHeaders[e.rawHeaders.findIndex((x, i) => i % 2 === 0 && x.toLowerCase() === 'x-forwarded-proto') + 1];
    assert.equal(xfp, 'https');
    // Several streams on the one session.
    const many = await Promise.all(Array.from({ length: 8 }, (_, i) => h2request(session, { ':path': `/m${i}` })));
    assert.deepEqual(many.map((x) => x.status), Array(8).fill(200));
  } finally {
    session.close();
  }
});

test('sticky routing over h2: cookie crumbs are joined before the route is read', async () => {
  const session = http2.connect(bal.url, { ca });
  try {
    for (const route of ['tc1', 'tc2']) {
      for (let i = 0; i < 3; i++) {
        const r = await h2request(session, { ':path': '/', cookie: ['theme=dark', `JSESSIONID=s.${route}`, 'x=1'] });
        assert.equal(r.headers['x-backend'], route);
      }
    }
  } finally {
    session.close();
  }
});

test('the same TLS listener still serves HTTP/1.1', async () => {
  const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    https.get(`${bal.url}/`, { ca, agent: false, headers: { cookie: 'JSESSIONID=s.tc1' } }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: b }));
    }).on('error', reject);
  });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'tc1\n');
});

test('failover and the balancer\'s own answers over h2: a refusing member is retried elsewhere; nothing usable is 503 with Retry-After', async () => {
  const dead = await startBackend('tc3');
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const b = await startBalancer({ listen: { address: '127.0.0.1:0', tls: { cert, key } }, balancers: [{ name: 'x', slowstart: 0, forcerecovery: false, members: [{ url: dead.url, route: 'tc3' }, { url: tc1.url, route: 'tc1', status: ['disabled'] }] }] });
  const session = http2.connect(b.url, { ca });
  try {
    await dead.refuse();
    const r = await h2request(session, { ':path': '/', cookie: 'JSESSIONID=s.tc3' });
    assert.equal(r.status, 503);
    assert.equal(r.headers['retry-after'], '1');
    // With a request body nobody reads (streamed, then reset after the answer): the answer arrives whole.
    const post = await h2request(session, { ':method': 'POST', ':path': '/upload' }, 'x'.repeat(200_000));
    assert.equal(post.status, 503);
    assert.match(post.body, /^Service Unavailable: /);
    const mgr = b.server.balancers.get('x')!;
    mgr.setFlag(mgr.findMember('tc1')!, 'disabled' as never, false);
    const r2 = await h2request(session, { ':path': '/', cookie: 'JSESSIONID=s.tc3', 'x-cohort-explain': '1' });
    assert.equal(r2.status, 200);
    assert.equal(r2.headers['x-backend'], 'tc1');
    assert.match(String(r2.headers['x-cohort-explain']), /reason=failover/);
  } finally {
    session.close();
    await b.close();
    await dead.close();
  }
});

test('an h2 header list over limits.maxheadersize is refused and never forwarded; the balancer keeps serving h2', async () => {
  const session = http2.connect(bal.url, { ca });
  try {
    const n = tc1.seen.length + tc2.seen.length;
    const refused = await h2request(session, { ':path': '/big', 'x-big': 'a'.repeat(20 * 1024) }).then((r) => r.status, () => -1);
    assert.notEqual(refused, 200);
    assert.equal(tc1.seen.length + tc2.seen.length, n);
  } finally {
    session.destroy();
  }
  const again = http2.connect(bal.url, { ca });
  try {
    assert.equal((await h2request(again, { ':path': '/fine' })).status, 200);
  } finally {
    again.close();
  }
});
