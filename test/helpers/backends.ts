/**
 * Test fixtures: real loopback backends that can be told to refuse, hang,
 * hang up, answer slowly, answer a status, echo, or send malformed responses;
 * child-process backends that can be SIGKILLed; a balancer on an ephemeral
 * port; raw-socket and plain HTTP clients. Everything returned has a close().
 */
import http from 'node:http';
import net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { once } from 'node:events';
import { parseBalancerConfig } from '../../src/config/load.js';
import { BalancerServer, type BalancerServerOptions } from '../../src/proxy/balancer-server.js';

export type Mode =
  | { kind: 'ok' }
  | { kind: 'hang' }
  | { kind: 'hangup' }
  | { kind: 'slow'; ms: number }
  | { kind: 'status'; status: number }
  | { kind: 'malformed' }
  /** Reads the request, then closes the connection without a byte of response. */
  | { kind: 'reset' };

export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly httpVersion: string;
  bodyBytes: number;
  body: string;
}

export interface Backend {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** Every request the backend received (head and up to 64 KiB of body). */
  /** Health-check requests received. */
  checks: number;
  readonly seen: Seen[];
  mode: Mode;
  /** Requests in progress now, and the most ever in progress at once (health checks excluded). */
  active: number;
  maxActive: number;
  /** Closes the listening port (connections refused) and every open socket. */
  refuse(): Promise<void>;
  /** Listens again on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Paths override the mode: /echo (head and body back as JSON), /status/NNN,
 * /slow/MS, /hang, /hangup, /malformed, /bytes/N (N bytes of generated data,
 * streamed), /sink (reads the body, answers its length), /chunked (chunked answer),
 * /redirect (Location, Content-Location, URI and Set-Cookie under /examples).
 */
export async function startBackend(name: string, opts: { port?: number } = {}): Promise<Backend> {
  const seen: Seen[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => handle(req, res));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, httpVersion: req.httpVersion, bodyBytes: 0, body: '' });
    if (req.url!.endsWith('/hang')) return; // never answers the upgrade
    if (req.url!.endsWith('/deny')) {
      // Refuses the upgrade but keeps the connection; logs any raw request that arrives on it after.
      socket.write('HTTP/1.1 403 Forbidden\r\ncontent-length: 6\r\nconnection: keep-alive\r\n\r\ndenied');
      socket.on('data', (d: Buffer) => {
        const line = d.toString('latin1').split('\r\n')[0]!;
        seen.push({ method: 'RAW', url: `raw:${line}`, headers: {}, rawHeaders: [], httpVersion: '', bodyBytes: d.length, body: '' });
      });
      socket.on('error', () => {});
      return;
    }
    const key = String(req.headers['sec-websocket-key'] ?? '');
    const accept = wsAccept(key);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\nx-backend: ${name}\r\n\r\n`);
    // Echo frames back with "<name>:" prefixed to the (unmasked) text payload.
    socket.on('data', (buf: Buffer) => {
      const text = decodeMaskedText(buf);
      if (text !== undefined) socket.write(encodeText(`${name}:${text}`));
    });
    socket.on('error', () => {});
  });
  const b: Backend = {
    name,
    port: 0,
    url: '',
    seen,
    mode: { kind: 'ok' },
    active: 0,
    maxActive: 0,
    checks: 0,
    refuse: async () => {
      await new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
    },
    restore: async () => {
      server.listen({ host: '127.0.0.1', port: b.port });
      await once(server, 'listening');
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise<void>((r) => server.close(() => r()));
    },
  };
  function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const entry: Seen = { method: req.method!, url: req.url!, headers: req.headers, rawHeaders: req.rawHeaders, httpVersion: req.httpVersion, bodyBytes: 0, body: '' };
    if (req.headers['user-agent'] === 'cohort-hcheck') {
      // Health checks follow `mode` (or a /status/NNN path) too, but are not logged as traffic.
      req.resume();
      b.checks++;
      const status = /^\/status\/(\d{3})$/.exec(req.url ?? '');
      if (status) res.writeHead(Number(status[1])).end();
      else if (b.mode.kind === 'status') res.writeHead(b.mode.status).end();
      else if (b.mode.kind === 'hang') return;
      else res.writeHead(200).end('ok');
      return;
    }
    seen.push(entry);
    b.active++;
    b.maxActive = Math.max(b.maxActive, b.active);
    res.on('close', () => b.active--);
    const path = req.url!.split('?')[0]!;
    const segs = path.split('/');
    const last = segs[segs.length - 1]!;
    const prev = segs[segs.length - 2] ?? '';
    let mode: Mode = b.mode;
    if (path.endsWith('/hang')) mode = { kind: 'hang' };
    else if (path.endsWith('/hangup')) mode = { kind: 'hangup' };
    else if (path.endsWith('/malformed')) mode = { kind: 'malformed' };
    else if (path.endsWith('/reset')) mode = { kind: 'reset' };
    else if (path.endsWith('/stall')) {
      // Head and part of the body, then nothing (idle mid-body).
      res.writeHead(200, { 'content-length': '1000', 'x-backend': name });
      res.write('partial');
      return;
    }
    else if (prev === 'status') mode = { kind: 'status', status: Number(last) };
    else if (prev === 'slow') mode = { kind: 'slow', ms: Number(last) };
    req.on('data', (c: Buffer) => {
      entry.bodyBytes += c.length;
      if (entry.body.length < 65536) entry.body += c.toString('latin1');
    });
    req.on('error', () => {});
    const send = (status: number, body: string, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'text/plain', 'x-backend': name, 'content-length': Buffer.byteLength(body), ...extra });
      res.end(body);
    };
    req.on('end', () => {
      switch (mode.kind) {
        case 'hang':
          return;
        case 'hangup':
          res.writeHead(200, { 'content-length': '1000', 'x-backend': name });
          res.write('partial');
          setTimeout(() => res.socket?.destroy(), 20);
          return;
        case 'reset':
          res.socket!.destroy();
          return;
        case 'malformed': {
          // ?v=NAME picks the defect; default: two different Content-Lengths.
          const v = new URL(req.url!, 'http://x').searchParams.get('v') ?? 'dupcl';
          res.socket!.end(MALFORMED[v] ?? MALFORMED.dupcl);
          return;
        }
        case 'status':
          return send(mode.status, `${name} ${mode.status}\n`);
        case 'slow': {
          const t = setTimeout(() => send(200, `${name}\n`), mode.ms);
          res.on('close', () => clearTimeout(t));
          return;
        }
      }
      if (prev === 'bytes') return streamBytes(res, Number(last), name);
      if (path.endsWith('/sink')) return send(200, `${name} got ${entry.bodyBytes}\n`);
      if (path.endsWith('/echo')) {
        return send(200, JSON.stringify({ name, method: req.method, url: req.url, httpVersion: req.httpVersion, rawHeaders: req.rawHeaders, body: entry.body, bodyBytes: entry.bodyBytes }), { 'content-type': 'application/json' });
      }
      if (path.endsWith('/chunked')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
        res.write(`${name} `);
        setTimeout(() => res.end('chunked\n'), 10);
        return;
      }
      if (path.endsWith('/early')) {
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        setTimeout(() => send(200, `${name} after hints\n`), 10);
        return;
      }
      if (path.endsWith('/hop')) {
        // Hop-by-hop response headers, one of them named by Connection.
        res.writeHead(200, [['content-type', 'text/plain'], ['x-backend', name], ['connection', 'x-internal'], ['x-internal', 'secret'], ['keep-alive', 'timeout=5'], ['proxy-authenticate', 'Basic'], ['x-public', 'yes'], ['content-length', '3']].flat() as never);
        res.end('hop');
        return;
      }
      if (path.endsWith('/redirect')) {
        return send(302, '', {
          location: `${b.url}/examples/next?x=1`,
          'content-location': '/examples/page',
          uri: `${b.url}/examples/u`,
          'set-cookie': 'JSESSIONID=abc.tc1; Path=/examples; HttpOnly',
        });
      }
      send(200, `${name}\n`);
    });
  }
  server.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  Object.assign(b, { port, url: `http://127.0.0.1:${port}` });
  return b;
}

/** Malformed member responses, by name (see /malformed?v=NAME). */
export const MALFORMED: Record<string, string> = {
  dupcl: 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 7\r\n\r\nhello',
  clte: 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  garbage: 'SSH-2.0-OpenSSH_9.6\r\n',
  badstatus: 'HTTP/1.1 2x0 OK\r\ncontent-length: 0\r\n\r\n',
  bareLF: 'HTTP/1.1 200 OK\ncontent-length: 2\n\nok',
  nul: 'HTTP/1.1 200 OK\r\nx-bad: a\x00b\r\ncontent-length: 2\r\n\r\nok',
  badcl: 'HTTP/1.1 200 OK\r\ncontent-length: abc\r\n\r\nok',
  badchunk: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n',
  headerspace: 'HTTP/1.1 200 OK\r\ncontent-length : 2\r\n\r\nok',
};

/** Streams `n` bytes of generated data (no large allocation). */
export function streamBytes(res: http.ServerResponse, n: number, name: string): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n, 'x-backend': name });
  const block = Buffer.alloc(256 * 1024, 0x61);
  let left = n;
  const pump = () => {
    while (left > 0) {
      const c = left >= block.length ? block : block.subarray(0, left);
      left -= c.length;
      if (!res.write(c)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

/** A TCP server that accepts connections and never writes a byte (first-byte / TLS-handshake stalls). */
export async function startSilentServer(): Promise<{ port: number; accepted: () => number; open: () => number; received: () => string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let count = 0;
  let data = '';
  const server = net.createServer((s) => {
    count++;
    sockets.add(s);
    s.on('data', (d) => (data += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  server.listen({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => count,
    open: () => sockets.size,
    received: () => data,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** A free loopback port nobody listens on (connections refused). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  s.listen({ host: '127.0.0.1', port: 0 });
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const CHILD_SRC = `
const http = require('node:http');
const name = process.argv[1];
const port = Number(process.argv[2] || 0);
const s = http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
  req.resume();
  req.on('end', () => { res.writeHead(200, { 'x-backend': name, 'content-length': name.length + 1 }); res.end(name + '\\n'); });
});
s.keepAliveTimeout = 60000;
s.listen(port, '127.0.0.1', () => process.stdout.write('PORT ' + s.address().port + '\\n'));
`;

export interface ChildBackend {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly child: ChildProcess;
  /** SIGKILL by PID; resolves when the process is gone. */
  kill(): Promise<void>;
}

/** A backend in its own node process (so that it can be SIGKILLed). */
export async function spawnChildBackend(name: string, port = 0): Promise<ChildBackend> {
  const child = spawn(process.execPath, ['-e', CHILD_SRC, name, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const p = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`child backend ${name} exited with ${code}`)));
  });
  return {
    name,
    port: p,
    url: `http://127.0.0.1:${p}`,
    child,
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = once(child, 'exit');
      process.kill(child.pid!, 'SIGKILL');
      await gone;
    },
  };
}

export interface RunningBalancer {
  readonly server: BalancerServer;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/** Starts a BalancerServer on 127.0.0.1:0 from a config object (validated as a file would be). */
export async function startBalancer(config: Record<string, unknown>, options: BalancerServerOptions = {}): Promise<RunningBalancer> {
  const cfg = parseBalancerConfig({ listen: '127.0.0.1:0', accesslog: false, ...config }, 'test-config');
  const server = new BalancerServer(cfg, options);
  const [addr] = await server.start();
  return { server, port: addr!.port, url: addr!.url, close: () => server.destroy() };
}

export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** One request on a fresh connection (no keep-alive), unless an agent is given. */
export function request(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; agent?: http.Agent; timeoutMs?: number } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/**
 * Writes exact bytes on a raw socket and returns everything received until the
 * peer closes or `idleMs` passes without data.
 */
export function rawExchange(port: number, bytes: string | Buffer, idleMs = 1500): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => s.destroy(), idleMs);
    };
    s.on('connect', () => {
      s.write(bytes);
      arm();
    });
    s.on('data', (d) => {
      out += d.toString('latin1');
      arm();
    });
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** Status codes of every response in a raw byte string, in order. */
export function statuses(raw: string): number[] {
  return [...raw.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns true, or fails after `timeoutMs`. */
export async function until(fn: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// --- minimal WebSocket framing for tests (RFC 6455) ---
import { createHash } from 'node:crypto';
export function wsAccept(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC11D65`).digest('base64');
}
/** A masked client text frame (payload < 126 bytes). */
export function encodeMaskedText(text: string): Buffer {
  const p = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const out = Buffer.alloc(6 + p.length);
  out[0] = 0x81;
  out[1] = 0x80 | p.length;
  mask.copy(out, 2);
  for (let i = 0; i < p.length; i++) out[6 + i] = p[i]! ^ mask[i % 4]!;
  return out;
}
export function encodeText(text: string): Buffer {
  const p = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, p.length]), p]);
}
export function decodeMaskedText(buf: Buffer): string | undefined {
  if (buf.length < 6 || (buf[0]! & 0x0f) !== 1) return undefined;
  const len = buf[1]! & 0x7f;
  const mask = buf.subarray(2, 6);
  const p = Buffer.alloc(len);
  for (let i = 0; i < len; i++) p[i] = buf[6 + i]! ^ mask[i % 4]!;
  return p.toString();
}
export function decodeText(buf: Buffer): string | undefined {
  if (buf.length < 2 || (buf[0]! & 0x0f) !== 1) return undefined;
  return buf.subarray(2, 2 + (buf[1]! & 0x7f)).toString();
}
