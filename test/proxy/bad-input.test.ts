/**
 * Bad input (issue 2, "Bad input"; REFERENCE.md "Hostile input"): exact bytes
 * on raw sockets. Each ambiguous or malformed request gets its 4xx/5xx, the
 * member NEVER sees it (asserted on the backend's received-request log), and
 * the balancer keeps serving. A member's malformed response costs only that
 * client a 502.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, startBalancer, rawExchange, request, statuses, MALFORMED, openFds, until, type Backend, type RunningBalancer } from '../helpers/backends.js';

let backend: Backend;
let bal: RunningBalancer;
let fdsAtStart = 0;

before(async () => {
  fdsAtStart = openFds();
  backend = await startBackend('tc1');
  bal = await startBalancer({ balancers: [{ name: 'b', slowstart: 0, members: [{ url: backend.url, route: 'tc1' }] }], mounts: [{ path: '/', balancer: 'b' }] });
});
after(async () => {
  await bal.close();
  await backend.close();
  // Every connection of every hostile exchange above was given back.
  await until(() => openFds() <= fdsAtStart + 2, 5000, `fds back to ${fdsAtStart} (now ${openFds()})`);
});

const H = 'Host: a.example\r\n';
const big = (n: number) => 'a'.repeat(n);

/** [name, raw request, expected first status]. Every one must never reach the member. */
const REFUSED: [string, string, number][] = [
  ['CL + TE', `POST /smuggle HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE + CL', `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n`, 400],
  ['duplicate Content-Length (same value)', `POST /smuggle HTTP/1.1\r\n${H}Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd`, 400],
  ['duplicate Content-Length (different)', `POST /smuggle HTTP/1.1\r\n${H}Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde`, 400],
  ['Content-Length list', `POST /smuggle HTTP/1.1\r\n${H}Content-Length: 4, 4\r\n\r\nabcd`, 400],
  ['Content-Length with sign', `POST /smuggle HTTP/1.1\r\n${H}Content-Length: +4\r\n\r\nabcd`, 400],
  ['TE xchunked', `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 0],
  ['TE chunked, identity', `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 0],
  ['TE identity', `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\nContent-Length: 0\r\n\r\n`, 0],
  ['TE twice', `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 0],
  ['"Transfer-Encoding : chunked" (space before colon)', `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE with tab', `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding:\tchunked\t\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`, 400],
  ['TE with vertical tab', `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n`, 400],
  ['chunk-size overflow', `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF1\r\nabc\r\n0\r\n\r\n`, 0],
  ['chunk extension junk', `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;\x00\r\nabc\r\n0\r\n\r\n`, 0],
  ['bare LF line ends', `GET /smuggle HTTP/1.1\n${H.replace('\r\n', '\n')}X: y\n\n`, 400],
  ['bare LF inside a header', `GET /smuggle HTTP/1.1\r\n${H}X: a\nContent-Length: 5\r\n\r\n`, 400],
  ['bare CR', `GET /smuggle HTTP/1.1\r\n${H}X: a\rb\r\n\r\n`, 400],
  ['obs-fold', `GET /smuggle HTTP/1.1\r\n${H}X-Folded: a\r\n b\r\n\r\n`, 400],
  ['obs-fold of Transfer-Encoding', `POST /smuggle HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n`, 400],
  ['NUL in a header value', `GET /smuggle HTTP/1.1\r\n${H}X: a\x00b\r\n\r\n`, 400],
  ['CTL (0x01) in a header value', `GET /smuggle HTTP/1.1\r\n${H}X: a\x01b\r\n\r\n`, 400],
  ['DEL in a header name', `GET /smuggle HTTP/1.1\r\n${H}X\x7f: a\r\n\r\n`, 400],
  ['empty header name', `GET /smuggle HTTP/1.1\r\n${H}: empty\r\n\r\n`, 400],
  ['space in a header name', `GET /smuggle HTTP/1.1\r\n${H}Bad Name: a\r\n\r\n`, 400],
  ['missing Host', 'GET /smuggle HTTP/1.1\r\nX: y\r\n\r\n', 400],
  ['two Host headers', `GET /smuggle HTTP/1.1\r\n${H}Host: b.example\r\n\r\n`, 400],
  ['headers over 16 KiB', `GET /smuggle HTTP/1.1\r\n${H}X-Big: ${big(17 * 1024)}\r\n\r\n`, 431],
  ['many headers over 16 KiB', `GET /smuggle HTTP/1.1\r\n${H}${Array.from({ length: 400 }, (_, i) => `X-H${i}: ${big(40)}\r\n`).join('')}\r\n`, 431],
  ['URL over maxurllength', `GET /smuggle/${big(9000)} HTTP/1.1\r\n${H}\r\n`, 414],
  ['CONNECT', `CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n`, 405],
  ['invalid method characters', `G(T /smuggle HTTP/1.1\r\n${H}\r\n`, 400],
  ['HTTP/2 preface on HTTP/1 port', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
  ['unknown HTTP version', `GET /smuggle HTTP/1.7\r\n${H}\r\n`, 0],
  ['h2c upgrade (h2c smuggling)', `GET /smuggle HTTP/1.1\r\n${H}Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n`, 400],
  ['websocket upgrade with POST', `POST /smuggle HTTP/1.1\r\n${H}Upgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n`, 400],
  ['TE in HTTP/1.0', `POST /smuggle HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['request target without slash', `GET smuggle HTTP/1.1\r\n${H}\r\n`, 400],
];

describe('ambiguous or malformed requests are refused and never forwarded', () => {
  for (const [name, raw, want] of REFUSED) {
    test(name, async () => {
      const seenBefore = backend.seen.length;
      const out = await rawExchange(bal.port, raw, 800);
      const got = statuses(out);
      assert.ok(got.length >= 1, `no response at all: ${JSON.stringify(out.slice(0, 200))}`);
      if (want === 0) assert.ok(got[0]! >= 400 && got[0]! !== 404, `got ${got[0]}`);
      else assert.equal(got[0], want, out.split('\r\n')[0]);
      assert.equal(backend.seen.filter((s, i) => i >= seenBefore && s.url.includes('smuggle')).length, 0, 'the member saw the request');
      // The balancer keeps serving.
      assert.equal((await request(`${bal.url}/after`)).status, 200);
    });
  }
});

describe('a request hidden behind a refused one on the same connection is never forwarded', () => {
  const hidden = `GET /smuggled HTTP/1.1\r\n${H}\r\n`;
  const cases: [string, string][] = [
    ['TE xchunked with a request as body', `POST /refused HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n${hidden}`],
    ['TE identity with a request as body', `POST /refused HTTP/1.1\r\n${H}Transfer-Encoding: identity\r\n\r\n${hidden}`],
    ['TE chunked, identity', `POST /refused HTTP/1.1\r\n${H}Transfer-Encoding: chunked, identity\r\n\r\n${hidden}`],
    ['CL + TE then a request', `POST /refused HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${hidden}`],
    ['URL too long then a request', `GET /${big(9000)} HTTP/1.1\r\n${H}\r\n${hidden}`],
    ['CONNECT then a request', `CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n${hidden}`],
  ];
  for (const [name, raw] of cases) {
    test(name, async () => {
      const out = await rawExchange(bal.port, raw, 800);
      const got = statuses(out);
      assert.ok(got[0]! >= 400, `got ${got.join(',')}`);
      assert.ok(!got.includes(200), `got ${got.join(',')}`);
      assert.deepEqual(backend.seen.filter((x) => x.url.includes('smuggled') || x.url.includes('refused')).map((x) => x.url), []);
    });
  }
});

describe('unusual but valid requests are forwarded exactly once and unambiguously', () => {
  test('absolute-form target to a foreign host is served from our members, never proxied elsewhere', async () => {
    const n = backend.seen.length;
    const out = await rawExchange(bal.port, 'GET http://evil.example:9999/abs?q=1 HTTP/1.1\r\nHost: evil.example:9999\r\n\r\n', 500);
    assert.equal(statuses(out)[0], 200);
    const seen = backend.seen.slice(n);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.url, '/abs?q=1');
  });

  test('HTTP/1.0 request', async () => {
    const n = backend.seen.length;
    const out = await rawExchange(bal.port, `GET /v10 HTTP/1.0\r\n${H}\r\n`, 500);
    assert.match(out, /^HTTP\/1\.[01] 200/);
    assert.equal(backend.seen.slice(n).length, 1);
  });

  test('pipelined requests are answered in order, each forwarded once', async () => {
    const n = backend.seen.length;
    const raw = `GET /p1 HTTP/1.1\r\n${H}\r\nPOST /p2 HTTP/1.1\r\n${H}Content-Length: 3\r\n\r\nabcGET /p3 HTTP/1.1\r\n${H}Connection: close\r\n\r\n`;
    const out = await rawExchange(bal.port, raw, 1000);
    assert.deepEqual(statuses(out), [200, 200, 200]);
    assert.deepEqual(backend.seen.slice(n).map((s) => s.url), ['/p1', '/p2', '/p3']);
    assert.equal(backend.seen[n + 1]!.body, 'abc');
  });

  test('Connection: Content-Length does not change how the body is framed', async () => {
    const n = backend.seen.length;
    const raw = `POST /cl HTTP/1.1\r\n${H}Connection: Content-Length\r\nContent-Length: 5\r\n\r\nhelloGET /next HTTP/1.1\r\n${H}Connection: close\r\n\r\n`;
    const out = await rawExchange(bal.port, raw, 1000);
    assert.deepEqual(statuses(out), [200, 200]);
    const seen = backend.seen.slice(n);
    assert.deepEqual(seen.map((s) => s.url), ['/cl', '/next']);
    assert.equal(seen[0]!.body, 'hello');
    assert.equal(seen[0]!.headers['content-length'], '5');
  });

  test('"Transfer-Encoding: chunked " (trailing OWS, RFC 9110 §5.5) is plain chunked: forwarded once with the same body', async () => {
    const n = backend.seen.length;
    const out = await rawExchange(bal.port, `POST /ows HTTP/1.1\r\n${H}Transfer-Encoding: chunked \r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, 800);
    assert.deepEqual(statuses(out), [200]);
    assert.deepEqual(backend.seen.slice(n).map((s) => [s.url, s.body]), [['/ows', 'abc']]);
  });

  test('chunked request with chunk extensions and trailers', async () => {
    const n = backend.seen.length;
    const out = await rawExchange(bal.port, `POST /chunk HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n`, 800);
    assert.equal(statuses(out)[0], 200);
    assert.equal(backend.seen.slice(n)[0]!.body, 'abcde');
  });
});

describe('dot-segments cannot escape a mount (/app → upstream /examples)', () => {
  const targets = ['/app/../secret', '/app/%2e%2e/secret', '/app/%2E%2E/secret', '/app/.%2e/secret', '/app/..;/secret', '/app/./../secret', '/public/..'];
  for (const target of targets) {
    test(target, async () => {
      const m = await startBackend('m');
      const b = await startBalancer({ balancers: [{ name: 'b', members: [{ url: m.url, route: 'm' }] }], mounts: [{ path: '/app', balancer: 'b', upstream: '/examples' }, { path: '/public', balancer: 'b' }] });
      try {
        const out = await rawExchange(b.port, `GET ${target} HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, 800);
        assert.equal(statuses(out)[0], 400);
        assert.deepEqual(m.seen.map((s) => s.url), []);
        // Dots inside names are fine.
        assert.equal((await request(`${b.url}/app/v1.2/file..txt?x=../y`)).status, 200);
        assert.deepEqual(m.seen.map((s) => s.url), ['/examples/v1.2/file..txt?x=../y']);
      } finally {
        await b.close();
        await m.close();
      }
    });
  }
});

describe('malformed member responses → 502 for that client only', () => {
  for (const v of Object.keys(MALFORMED)) {
    test(v, async () => {
      const r = await request(`${bal.url}/x/malformed?v=${v}`).catch((e: Error) => ({ status: -1, body: e.message }));
      if (v === 'badchunk') {
        // The defect is in the body, after the head went out: the client's connection is cut.
        assert.equal(r.status, -1, `${v}: ${r.status} ${JSON.stringify(r.body)}`);
      } else assert.equal(r.status, 502, `${v}: ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal((await request(`${bal.url}/after`)).status, 200);
    });
  }
});

test('a member that sends a malformed response costs only that client a 502', async () => {
  const seenBefore = backend.seen.length;
  const [bad, good1, good2] = await Promise.all([
    request(`${bal.url}/x/malformed`),
    request(`${bal.url}/slow/100`),
    request(`${bal.url}/fine`),
  ]);
  assert.equal(bad.status, 502);
  assert.equal(good1.status, 200);
  assert.equal(good2.status, 200);
  assert.ok(backend.seen.length >= seenBefore + 3);
  // The member is not taken out for one bad answer, and the balancer keeps serving.
  assert.equal(bal.server.snapshot()[0]!.members[0]!.health, 'ok');
  assert.equal((await request(`${bal.url}/after`)).status, 200);
});
