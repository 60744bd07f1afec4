import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Clock } from '../util/clock.js';
import type { Member } from '../balancer/member.js';
import type { Decision } from '../balancer/picker.js';
import { upstreamPath, type Mount } from './mount.js';
import { classifyFailure, retrySafe } from './outcome.js';
import type { ClientConnection, IncomingRequest } from './parse.js';
import { pick } from './pick.js';
import { requestHeadersForMember } from './rewrite.js';
import { routeOf } from './route.js';

export interface UpgradeDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly isTrusted: (ip: string) => boolean;
  readonly connectTimeoutMs: number;
  /** How long the member may take to answer the upgrade, in ms (timeouts.firstbyte). */
  readonly firstByteTimeoutMs: number;
  readonly rejectUnauthorized: boolean;
  readonly ca: string | undefined;
}

function refuse(socket: Duplex, status: number, text: string, extra = ''): void {
  if (socket.writable) socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n${extra}\r\n`);
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * Proxies a WebSocket upgrade: picks a member exactly as for a request
 * (sticky route, `max` and the queue, failover within the retry budget),
 * writes the handshake to it over a fresh connection and then splices the
 * two sockets. Only `websocket` upgrades by GET are accepted (no h2c or other
 * protocol switches through the balancer). The request was validated and
 * mounted by the request path; the socket is taken from the parser here.
 */
export function proxyUpgrade(conn: ClientConnection, req: IncomingRequest, mount: Mount, target: string, deps: UpgradeDeps): void {
  conn.detachSocket();
  const socket = conn.socket;
  const head = req.upgradeHead ?? Buffer.alloc(0);
  const h = req.head;
  if ((h.upgradeProtocol ?? '').toLowerCase() !== 'websocket' || h.method !== 'GET') return refuse(socket, 400, 'Bad Request');
  const balancer = mount.balancer;
  balancer.requestStarted();
  const sticky = routeOf(h, target, balancer);
  const tried = new Set<Member>();
  let attempts = 0;
  const path = upstreamPath(mount, target);
  const clientIp = conn.remoteAddress;
  const headers = requestHeadersForMember(h.rawHeaders, { clientIp, trusted: deps.isTrusted(clientIp), proto: conn.proto, host: h.host, preserveHost: mount.preserveHost }, true);

  const tryOnce = (): void => {
    // like a request: members at `max` make it wait in the balancer's bounded queue (up to `timeout`)
    pick(balancer, sticky?.route, tried, connectTo, () => refuse(socket, 500, 'Internal Server Error'));
  };
  const connectTo = (d: Decision): void => {
    if (d.kind !== 'pick') return refuse(socket, 503, 'Service Unavailable', 'retry-after: 1\r\n');
    const member = d.member;
    if (socket.destroyed) {
      // the client left while it waited in the queue
      balancer.report(member, { kind: 'finished', bytesIn: 0, bytesOut: 0 });
      return;
    }
    attempts++;
    balancer.report(member, { kind: 'dispatched', bytesOut: 0 });
    tried.add(member);
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        balancer.report(member, { kind: 'finished', bytesIn: 0, bytesOut: 0 });
      }
    };
    const port = Number(member.url.port) || (member.url.protocol === 'https:' ? 443 : 80);
    const host = member.url.hostname.replace(/^\[|\]$/g, '');
    const upstream: net.Socket = member.url.protocol === 'https:'
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: deps.rejectUnauthorized, ...(deps.ca ? { ca: deps.ca } : {}) })
      : net.connect({ host, port });
    upstream.setNoDelay(true);
    let connected = false;
    const timer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'CONNECT_TIMEOUT' })), deps.connectTimeoutMs);
    upstream.once(member.url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(timer);
      let headText = `GET ${path} HTTP/1.1\r\n${mount.preserveHost && h.host !== undefined ? '' : `host: ${member.url.host}\r\n`}`;
      for (let i = 0; i < headers.length; i += 2) headText += `${headers[i]}: ${headers[i + 1]}\r\n`;
      upstream.write(`${headText}\r\n`);
      awaitSwitch(upstream, socket, head, deps.log, member.route, deps.firstByteTimeoutMs);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!connected && !released) {
        released = true;
        const f = classifyFailure(err.code ?? 'ECONNRESET', err.message);
        balancer.report(member, { kind: 'failed', failure: f });
        const again = retrySafe({ failure: f, responseStarted: false, attempts, maxattempts: balancer.maxattempts, hasBody: false, bodyReplayable: true, idempotent: true }) && balancer.grantRetry();
        if (again) {
          balancer.report(member, { kind: 'retried' });
          deps.log.info({ member: member.route, code: err.code }, 'websocket upgrade: member unreachable, trying another');
          return tryOnce();
        }
        return refuse(socket, f.code === 'ECONNREFUSED' ? 503 : 502, f.code === 'ECONNREFUSED' ? 'Service Unavailable' : 'Bad Gateway');
      }
      release();
      socket.destroy();
    });
    upstream.on('close', () => {
      release();
      // Before the connection was made, 'error' decides (another member is tried); closing the
      // client here would cut the failover short.
      if (connected) socket.destroy();
    });
    socket.on('close', () => {
      release();
      upstream.destroy();
    });
  };
  tryOnce();
}

/**
 * After one side of a tunnel has ended, how long the other may take to end
 * too before both are destroyed, ms. The sockets are half-open capable, so a
 * member that ignores the client's FIN would otherwise hold both forever.
 */
const HALF_CLOSE_GRACE_MS = 2_000;

function closeBothAfterHalfClose(upstream: net.Socket, socket: Duplex): void {
  let grace: NodeJS.Timeout | undefined;
  const ended = (): void => {
    grace ??= setTimeout(() => {
      upstream.destroy();
      socket.destroy();
    }, HALF_CLOSE_GRACE_MS).unref();
  };
  upstream.once('end', ended);
  socket.once('end', ended);
  socket.once('close', () => clearTimeout(grace));
}

/** Longest member response head accepted for an upgrade, in bytes. */
const MAX_UPGRADE_RESPONSE_HEAD = 16 * 1024;
/** How long a refused upgrade's response body may take to arrive, in ms. */
const REFUSED_UPGRADE_BODY_MS = 5000;

/**
 * Reads the member's answer to the upgrade before joining the sockets. Only a
 * 101 joins them; any other answer is passed on with `connection: close` and
 * both connections end, so that bytes the client sends next never reach the
 * member unparsed (WebSocket smuggling: a proxy that tunnels after a non-101
 * lets a client talk raw HTTP to the member past every check). Client bytes
 * that came with the upgrade request (`head`) are sent only after the 101.
 */
function awaitSwitch(upstream: net.Socket, socket: Duplex, head: Buffer, log: Logger, route: string, firstByteTimeoutMs: number): void {
  let buf: Buffer = Buffer.alloc(0);
  const answerTimer = setTimeout(() => {
    log.warn({ member: route }, 'websocket upgrade: member did not answer in time');
    upstream.off('data', onHead);
    upstream.destroy();
    refuse(socket, 504, 'Gateway Timeout');
  }, firstByteTimeoutMs);
  answerTimer.unref();
  upstream.once('close', () => clearTimeout(answerTimer));
  const onHead = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > MAX_UPGRADE_RESPONSE_HEAD) {
        clearTimeout(answerTimer);
        upstream.off('data', onHead);
        upstream.destroy();
        refuse(socket, 502, 'Bad Gateway');
      }
      return;
    }
    upstream.off('data', onHead);
    clearTimeout(answerTimer);
    const headText = buf.subarray(0, end).toString('latin1');
    const lines = headText.split('\r\n');
    if (/^HTTP\/1\.1 101 /.test(lines[0]!)) {
      socket.write(buf);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
      closeBothAfterHalfClose(upstream, socket);
      return;
    }
    log.info({ member: route, status: lines[0] }, 'websocket upgrade refused by the member');
    let length: number | undefined;
    const kept = [lines[0]!];
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      if (name === 'connection' || name === 'keep-alive') continue;
      if (name === 'content-length') length = Number(line.slice(colon + 1).trim());
      kept.push(line);
    }
    kept.push('connection: close');
    socket.write(`${kept.join('\r\n')}\r\n\r\n`);
    let left = length ?? Number.POSITIVE_INFINITY;
    const done = (): void => {
      clearTimeout(timer);
      upstream.destroy();
      socket.end();
    };
    const timer = setTimeout(done, REFUSED_UPGRADE_BODY_MS);
    timer.unref();
    const forward = (chunk: Buffer): void => {
      if (left <= 0) return;
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= part.length;
      if (part.length > 0) socket.write(part);
      if (left <= 0) done();
    };
    upstream.on('data', forward);
    upstream.once('end', done);
    forward(buf.subarray(end + 4));
    // Whatever the client sends now is dropped.
    socket.on('data', () => {});
  };
  upstream.on('data', onHead);
}
