/**
 * The engine's fast paths (docs/performance.md): client bytes read into one
 * shared buffer (accept.ts), a small response written as one buffer
 * (stream.ts), header names compared in place (header-names.ts), member
 * keep-alive checked at reuse and by the pool's sweep instead of a timer per
 * release (upstream.ts). Each is checked for what it must keep: bytes intact
 * across reads and pipelining, one write per small response, the same
 * header decisions as a lower-cased comparison, no reuse past keep-alive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { acceptWithReadBuffer } from '../../src/proxy/accept.js';
import { forwardingName, isHopByHop, isName } from '../../src/proxy/header-names.js';
import { ResponseWriter } from '../../src/proxy/stream.js';
import { IncomingRequest, readHead, type ClientConnection } from '../../src/proxy/parse.js';
import { startBalancer, rawExchange, until } from '../helpers/backends.js';

test('isName, isHopByHop and forwardingName decide as a lower-cased Set lookup does, in any letter case', () => {
  const hop = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings'];
  const fwd = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded', 'x-real-ip'];
  const others = ['host', 'content-length', 'content-type', 'server', 'date', 'cookie', 'set-cookie', 'location', 'tf', 'expect2', 'connections', 'x-forwarded-fo', 'upgrade-insecure-requests', ''];
  const variants = (n: string) => [n, n.toUpperCase(), n.replace(/(^|-)(.)/g, (_a, d: string, c: string) => d + c.toUpperCase())];
  for (const n of [...hop, ...fwd, ...others]) {
    for (const v of variants(n)) {
      assert.equal(isHopByHop(v), hop.includes(n), `isHopByHop(${v})`);
      assert.equal(forwardingName(v), fwd.includes(n) ? n : undefined, `forwardingName(${v})`);
      assert.equal(isName(v, n), true);
    }
  }
  // Only ASCII letters fold: '[' (0x5b) is not '{' (0x7b), '@' is not '`'.
  assert.equal(isName('[', '{'), false);
  assert.equal(isName('@', '`'), false);
  assert.equal(isName('Host', 'hosts'), false);
});

/** A ResponseWriter on a fake connection that records each socket write. */
function recordingWriter(method = 'GET', minor = 1): { w: ResponseWriter; writes: string[] } {
  const writes: string[] = [];
  const socket = { writable: true, cork: () => {}, uncork: () => {}, write: (d: string | Buffer) => (writes.push(typeof d === 'string' ? d : d.toString('latin1')), true) };
  const conn = { socket, responding: false } as unknown as ClientConnection;
  const head = readHead(method, '/', 1, minor, ['Host', 'a'], false, true);
  return { w: new ResponseWriter(conn, new IncomingRequest(head, 0)), writes };
}

test('a small response goes out as one write: head and body together; a head alone at the end or at flush()', () => {
  const a = recordingWriter();
  a.w.writeHead(200, 'OK', ['x-a', '1'], '5');
  assert.equal(a.writes.length, 0, 'the head waits for the body');
  a.w.write(Buffer.from('hello'));
  a.w.end();
  assert.deepEqual(a.writes, ['HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 5\r\n\r\nhello']);

  const chunked = recordingWriter();
  chunked.w.writeHead(200, 'OK', [], undefined);
  chunked.w.write(Buffer.from('abc'));
  chunked.w.write(Buffer.from('de'));
  chunked.w.end();
  assert.deepEqual(chunked.writes, ['HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n', '2\r\n', 'de', '\r\n', '0\r\n\r\n']);

  const empty = recordingWriter('HEAD');
  empty.w.writeHead(200, 'OK', [], '1234');
  empty.w.end();
  assert.deepEqual(empty.writes, ['HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n']);

  // The member's read ended after the head: it is written then, before any body arrives.
  const slow = recordingWriter();
  slow.w.writeHead(200, 'OK', [], '2');
  slow.w.flush();
  assert.deepEqual(slow.writes, ['HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n']);
  slow.w.write(Buffer.from('ok'));
  slow.w.flush();
  slow.w.end();
  assert.deepEqual(slow.writes.slice(1), ['ok']);
});

test('this Node lets plain listeners read into the shared buffer (no silent fallback), and bytes stay intact', async () => {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const got: Buffer[] = [];
  const fast = acceptWithReadBuffer(server, true, (socket, setReader) => {
    assert.ok(setReader, 'a reader hook');
    setReader!((n, buf) => {
      // What the callback keeps must be copied: the buffer is reused by the next read.
      got.push(Buffer.from(buf.subarray(0, n)));
      return true;
    });
    socket.on('end', () => socket.end('bye'));
  }, (err) => assert.fail(err));
  assert.equal(fast, true);
  const payload = Buffer.alloc(300_000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
  const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const reply = await new Promise<string>((resolve, reject) => {
    let r = '';
    c.on('data', (d) => (r += d.toString()));
    c.on('end', () => resolve(r));
    c.on('error', reject);
    c.end(payload);
  });
  assert.equal(reply, 'bye', "the half-close reached the socket's 'end'");
  assert.ok(got.length > 1, 'more than one read');
  assert.ok(Buffer.concat(got).equals(payload), 'every byte as sent, in order');
  c.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

/** A member that answers each request head (requests without bodies) with what `answer` returns for it. */
async function headMember(answer: (head: string) => string): Promise<net.Server> {
  const member = net.createServer((c) => {
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        c.write(answer(head));
      }
    });
    c.on('error', () => {});
  });
  await new Promise<void>((r) => member.listen(0, '127.0.0.1', r));
  return member;
}

test('pipelined requests split at every byte boundary are all answered, in order, through the shared buffer', async () => {
  const member = await headMember((head) => {
    const path = head.split(' ')[1]!;
    return `HTTP/1.1 200 OK\r\ncontent-length: ${path.length}\r\n\r\n${path}`;
  });
  const bal = await startBalancer({ balancers: [{ name: 'b', slowstart: 0, members: [{ url: `http://127.0.0.1:${(member.address() as net.AddressInfo).port}`, route: 'm' }] }] });
  try {
    const raw = ['/a', '/bb', '/ccc'].map((p, i) => `GET ${p} HTTP/1.1\r\nHost: x\r\n${i === 2 ? 'Connection: close\r\n' : ''}\r\n`).join('');
    for (const cut of [1, 7, 20, raw.length - 3]) {
      const out = await new Promise<string>((resolve, reject) => {
        const c = net.connect(bal.port, '127.0.0.1');
        let r = '';
        c.on('data', (d) => (r += d.toString('latin1')));
        c.on('end', () => resolve(r));
        c.on('error', reject);
        c.write(raw.slice(0, cut));
        setTimeout(() => c.write(raw.slice(cut)), 20);
      });
      assert.deepEqual([...out.matchAll(/\r\n\r\n(\/[a-c]+)/g)].map((m) => m[1]), ['/a', '/bb', '/ccc'], `cut at ${cut}`);
    }
  } finally {
    await bal.close();
    await new Promise<void>((r) => member.close(() => r()));
  }
});

test('an idle member connection past keep-alive is closed by the sweep and never reused', async () => {
  let accepted = 0;
  let closed = 0;
  const member = net.createServer((c) => {
    accepted++;
    c.on('close', () => closed++);
    c.on('data', () => c.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'));
    c.on('error', () => {});
  });
  await new Promise<void>((r) => member.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(member.address() as net.AddressInfo).port}`;
  const bal = await startBalancer({ timeouts: { keepalive: 0.3 }, balancers: [{ name: 'b', slowstart: 0, members: [{ url, route: 'm' }] }] });
  try {
    const once = () => rawExchange(bal.port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 2000);
    assert.match(await once(), /\r\n\r\nok$/);
    assert.match(await once(), /\r\n\r\nok$/);
    assert.equal(accepted, 1, 'reused within keep-alive');
    // Past 0.3 s idle: closed by the sweep (every 250 ms), at most one sweep late.
    await until(() => closed === 1, 2000, 'the idle connection closed');
    assert.match(await once(), /\r\n\r\nok$/);
    assert.equal(accepted, 2, 'a new connection after keep-alive ran out');
  } finally {
    await bal.close();
    await new Promise<void>((r) => member.close(() => r()));
  }
});

test('forwarding lines kept per client connection follow its Host, and a trusted proxy\'s own values are extended, not cached', async () => {
  const heads: string[] = [];
  const member = await headMember((head) => {
    heads.push(head);
    return 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';
  });
  const url = `http://127.0.0.1:${(member.address() as net.AddressInfo).port}`;
  const bal = await startBalancer({ trustedproxies: ['127.0.0.0/8'], balancers: [{ name: 'b', slowstart: 0, members: [{ url, route: 'm' }] }] });
  try {
    const req = (host: string, extra = '') => `GET / HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
    await rawExchange(bal.port, req('a.example') + req('b.example:8080') + req('a.example') + req('a.example', 'X-Forwarded-For: 203.0.113.9\r\n') + req('a.example', 'Connection: close\r\n'), 2000);
    const fwd = heads.map((h) => {
      const get = (n: string) => new RegExp(`\\r\\n${n}: ([^\\r]*)`, 'i').exec(h)?.[1];
      return [get('x-forwarded-host'), get('x-forwarded-for'), get('forwarded')];
    });
    assert.deepEqual(fwd, [
      ['a.example', '127.0.0.1', 'for=127.0.0.1;proto=http;host=a.example'],
      ['b.example:8080', '127.0.0.1', 'for=127.0.0.1;proto=http;host="b.example:8080"'],
      ['a.example', '127.0.0.1', 'for=127.0.0.1;proto=http;host=a.example'],
      ['a.example', '203.0.113.9, 127.0.0.1', 'for=127.0.0.1;proto=http;host=a.example'],
      ['a.example', '127.0.0.1', 'for=127.0.0.1;proto=http;host=a.example'],
    ]);
  } finally {
    await bal.close();
    await new Promise<void>((r) => member.close(() => r()));
  }
});
