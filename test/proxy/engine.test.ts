/**
 * The forwarding engine (issue 10) on exact bytes: a raw member answers with
 * every framing (Content-Length, chunked with trailers, close-delimited, 1xx,
 * 204/304, HEAD) and the client must get each response complete and the
 * connection usable after it; member connections are pooled and reused only
 * after a clean exchange; a request whose final transfer coding is not
 * chunked gets 400; nothing after `Connection: close` is read; descriptors
 * are counted before and after.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { startBalancer, startBackend, rawExchange, statuses, request, openFds, until, type RunningBalancer } from '../helpers/backends.js';

/** Raw answers by path. Requests to this member carry no body. */
const ANSWERS: Record<string, string> = {
  '/cl': 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello',
  '/chunked': 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: t\r\n\r\n',
  '/close-delimited': 'HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end',
  '/204': 'HTTP/1.1 204 No Content\r\n\r\n',
  '/304': 'HTTP/1.1 304 Not Modified\r\netag: "x"\r\n\r\n',
  '/head': 'HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n',
  '/continue': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok',
  '/member-close': 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok',
  '/early': 'HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig',
  '/stale': 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh',
  '/latin1': 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-name: caf\xe9\r\n\r\nok',
};

interface RawMember {
  readonly url: string;
  /** Connections accepted so far. */
  connections: number;
  /** Request heads received, in order. */
  readonly heads: string[];
  close(): Promise<void>;
}

async function rawMember(): Promise<RawMember> {
  const sockets = new Set<net.Socket>();
  const m = { url: '', connections: 0, heads: [] as string[], close: async () => {} };
  const server = net.createServer((c) => {
    m.connections++;
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
    c.on('error', () => {});
    let buf = '';
    let served = 0;
    c.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        m.heads.push(head);
        const path = head.split(' ')[1]!;
        // /stale: a connection that served one request is dropped when the next arrives,
        // as a member closing an idle keep-alive connection just as it is reused.
        if (path === '/stale' && served++ > 0) {
          c.destroy();
          return;
        }
        const answer = ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n';
        c.write(Buffer.from(answer, 'latin1'));
        if (/connection: close/i.test(answer)) c.end();
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  m.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  m.close = () => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    server.close(() => r());
  });
  return m;
}

let member: RawMember;
let bal: RunningBalancer;
let fds0 = 0;
const H = 'Host: a.example\r\n';

before(async () => {
  fds0 = openFds();
  member = await rawMember();
  bal = await startBalancer({ balancers: [{ name: 'b', slowstart: 0, members: [{ url: member.url, route: 'raw' }] }] });
});
after(async () => {
  await bal.close();
  await member.close();
  await until(() => openFds() <= fds0 + 2, 5000, `fds back to ${fds0} (now ${openFds()})`);
});

/** Splits raw HTTP/1.1 responses (Content-Length or chunked or none) into [status, body] pairs, in order. */
function responses(raw: string, methods: string[] = []): [number, string][] {
  const out: [number, string][] = [];
  let rest = raw;
  let i = 0;
  while (rest.startsWith('HTTP/1.1 ')) {
    const end = rest.indexOf('\r\n\r\n');
    const head = rest.slice(0, end);
    const status = Number(head.slice(9, 12));
    rest = rest.slice(end + 4);
    if (status < 200) continue;
    const method = methods[i++] ?? 'GET';
    const cl = /\r\ncontent-length: (\d+)/i.exec(head);
    let body = '';
    if (method === 'HEAD' || status === 204 || status === 304) body = '';
    else if (cl) {
      body = rest.slice(0, Number(cl[1]));
      rest = rest.slice(Number(cl[1]));
    } else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
      for (;;) {
        const nl = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, nl), 16);
        rest = rest.slice(nl + 2);
        if (size === 0) {
          rest = rest.slice(rest.indexOf('\r\n') + 2);
          break;
        }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    } else {
      body = rest;
      rest = '';
    }
    out.push([status, body]);
  }
  return out;
}

test('every response framing reaches the client complete, on one keep-alive client connection', async () => {
  const paths = ['/cl', '/chunked', '/204', '/304', '/continue', '/cl'];
  const raw = paths.map((p, i) => `GET ${p} HTTP/1.1\r\n${H}${i === paths.length - 1 ? 'Connection: close\r\n' : ''}\r\n`).join('');
  const out = await rawExchange(bal.port, raw, 2000);
  assert.deepEqual(responses(out), [[200, 'hello'], [200, 'abcde'], [204, ''], [304, ''], [200, 'ok'], [200, 'hello']]);
  // Trailers are read and dropped, never passed on as headers or body.
  assert.doesNotMatch(out, /x-trailer/);
  // A member's 100 Continue (unasked) is not passed on.
  assert.doesNotMatch(out, /100 Continue/);
});

test('HEAD: the member\'s Content-Length is passed on, no body is read or sent, the connection goes on', async () => {
  const out = await rawExchange(bal.port, `HEAD /head HTTP/1.1\r\n${H}\r\nGET /cl HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, 2000);
  assert.match(out, /^HTTP\/1\.1 200 OK\r\n[^]*content-length: 1234\r\n/);
  assert.deepEqual(responses(out, ['HEAD', 'GET']), [[200, ''], [200, 'hello']]);
});

test('a close-delimited member response: chunked to an HTTP/1.1 client, close-delimited to an HTTP/1.0 one', async () => {
  const v11 = await rawExchange(bal.port, `GET /close-delimited HTTP/1.1\r\n${H}\r\nGET /cl HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, 2000);
  assert.match(v11, /transfer-encoding: chunked/);
  assert.deepEqual(responses(v11), [[200, 'until the end'], [200, 'hello']]);
  const v10 = await rawExchange(bal.port, `GET /close-delimited HTTP/1.0\r\n${H}\r\n`, 2000);
  assert.match(v10, /connection: close/i);
  assert.doesNotMatch(v10, /transfer-encoding/i);
  assert.ok(v10.endsWith('\r\n\r\nuntil the end'), JSON.stringify(v10));
});

test('member connections are pooled: sequential requests reuse one; a member that says Connection: close gets a new one', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    // Leave only fresh state: count from here.
    await request(`${bal.url}/cl`, { agent });
    const c0 = member.connections;
    for (let i = 0; i < 5; i++) assert.equal((await request(`${bal.url}/cl`, { agent })).body, 'hello');
    assert.equal(member.connections, c0, 'five sequential requests on the pooled connection');
    assert.equal((await request(`${bal.url}/member-close`, { agent })).body, 'ok');
    assert.equal((await request(`${bal.url}/cl`, { agent })).body, 'hello');
    assert.equal(member.connections, c0 + 1, 'a new connection after the member closed its own');
    assert.equal(bal.server.snapshot()[0]!.members[0]!.health, 'ok');
  } finally {
    agent.destroy();
  }
});

test('header values are passed on byte for byte (latin1, as llhttp reads them)', async () => {
  const out = await rawExchange(bal.port, Buffer.from(`GET /latin1 HTTP/1.1\r\n${H}X-Client: \xe9t\xe9\r\nConnection: close\r\n\r\n`, 'latin1'), 2000);
  assert.match(out, /x-name: caf\xe9\r\n/);
  assert.match(member.heads.at(-1)!, /X-Client: \xe9t\xe9/);
});

test('a Transfer-Encoding whose final coding is not chunked gets 400 (RFC 9112 §6.1) and is never forwarded', async () => {
  for (const te of ['gzip', 'chunked, gzip', 'identity', 'gzip, chunked, identity']) {
    const n = member.heads.length;
    const out = await rawExchange(bal.port, `POST /cl HTTP/1.1\r\n${H}Transfer-Encoding: ${te}\r\n\r\n0\r\n\r\n`, 800);
    assert.equal(statuses(out)[0], 400, `${te}: ${out.split('\r\n')[0]}`);
    assert.equal(member.heads.length, n, te);
  }
});

test('after a request with Connection: close nothing more is read from the client connection', async () => {
  const n = member.heads.length;
  const out = await rawExchange(bal.port, `GET /cl HTTP/1.1\r\n${H}Connection: close\r\n\r\nGET /chunked HTTP/1.1\r\n${H}\r\n`, 1000);
  assert.deepEqual(statuses(out), [200]);
  assert.deepEqual(member.heads.slice(n).map((h) => h.split(' ')[1]), ['/cl']);
});

test('a malformed head behind a valid one: the first is answered, then 400, and the bad one never reaches the member', async () => {
  const n = member.heads.length;
  const out = await rawExchange(bal.port, `GET /cl HTTP/1.1\r\n${H}\r\nGET /cl HTTP/1.1\r\n${H}Bad Header: x\r\n\r\n`, 1000);
  assert.deepEqual(statuses(out), [200, 400]);
  assert.equal(member.heads.length, n + 1);
});

test('a pooled connection the member drops as it is reused costs no client an error and does not put the member in error', async () => {
  const b = await startBalancer({ balancers: [{ name: 'b', slowstart: 0, members: [{ url: member.url, route: 'raw' }] }] });
  try {
    const c0 = member.connections;
    for (let i = 0; i < 4; i++) {
      const r = await request(`${b.url}/stale`);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, 'fresh');
    }
    // Every reuse met a dropped connection and was sent again on a fresh one.
    assert.equal(member.connections, c0 + 4);
    const m = b.server.snapshot()[0]!.members[0]!;
    assert.equal(m.health, 'ok');
    assert.equal(m.errors, 0);
  } finally {
    await b.close();
  }
});

test('limits.connections bounds the pool: exchanges beyond it wait for a free member connection, none fails', async () => {
  const m = await startBackend('lim');
  const b = await startBalancer({ limits: { connections: 2 }, balancers: [{ name: 'b', slowstart: 0, members: [{ url: m.url, route: 'lim', max: 10 }] }] });
  try {
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => request(`${b.url}/slow/100?${i}`)));
    assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
    assert.equal(m.maxActive, 2);
    assert.equal(b.server.snapshot()[0]!.members[0]!.busy, 0);
  } finally {
    await b.close();
    await m.close();
  }
});

test('HTTP/1.0: keep-alive only when asked for, and then with a framed body', async () => {
  const asked = await rawExchange(bal.port, `GET /cl HTTP/1.0\r\n${H}Connection: keep-alive\r\n\r\nGET /cl HTTP/1.0\r\n${H}\r\n`, 1000);
  assert.deepEqual(responses(asked), [[200, 'hello'], [200, 'hello']]);
  assert.match(asked, /^HTTP\/1\.1 200 OK\r\n[^]*connection: keep-alive\r\n/);
  const plain = await rawExchange(bal.port, `GET /cl HTTP/1.0\r\n${H}\r\nGET /chunked HTTP/1.0\r\n${H}\r\n`, 1000);
  assert.deepEqual(statuses(plain), [200], 'nothing read after an HTTP/1.0 request without keep-alive');
  assert.match(plain, /connection: close/);
});

test('a member that answers before the request body is all sent: the answer is passed on, that member connection is closed, not pooled', async () => {
  const b = await startBalancer({ limits: { connections: 1 }, balancers: [{ name: 'b', slowstart: 0, members: [{ url: member.url, route: 'raw' }] }] });
  try {
    const c0 = member.connections;
    // 100 kB announced (streamed, not buffered), 10 bytes sent: the member answers 413 at once.
    const out = await rawExchange(b.port, `POST /early HTTP/1.1\r\n${H}Content-Length: 100000\r\n\r\n0123456789`, 800);
    assert.equal(statuses(out)[0], 413);
    // With one connection allowed, the next request gets a fresh one: the half-sent one was not kept.
    const r = await request(`${b.url}/cl`);
    assert.equal(r.body, 'hello');
    assert.equal(member.connections, c0 + 2);
    assert.equal(b.server.snapshot()[0]!.members[0]!.busy, 0);
  } finally {
    await b.close();
  }
});
