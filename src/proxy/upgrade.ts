import net from 'node:net';
import tls from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Clock } from '../util/clock.js';
import { extractRoute } from '../balancer/sticky.js';
import type { Member } from '../balancer/member.js';
import type { Mount } from './forward.js';
import { rewritePrefix } from './forward.js';
import { requestHeadersForMember } from './headers.js';
import { validateRequest } from './validate.js';
import { parseUpgradeResponse } from './upgrade-response.js';

/** A refused upgrade's response without Content-Length ends when the member stops sending for this long, ms. */
const REFUSED_IDLE_MS = 5_000;
/**
 * After one side of a tunnel has ended, how long the other may take to end
 * too before both are destroyed, ms. The sockets are half-open capable, so a
 * member that ignores the client's FIN would otherwise hold both forever.
 */
const HALF_CLOSE_GRACE_MS = 2_000;

export interface UpgradeDeps {
  readonly clock: Clock;
  readonly log: Logger;
  readonly isTrusted: (ip: string) => boolean;
  readonly maxUrlLength: number;
  readonly connectTimeoutMs: number;
  readonly rejectUnauthorized: boolean;
  readonly ca: string | undefined;
  readonly matchMount: (path: string) => Mount | undefined;
}

function refuse(socket: Duplex, status: number, text: string): void {
  if (socket.writable) socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * Proxies a WebSocket upgrade: picks a member exactly as for a request
 * (sticky route included), writes the handshake to it over a fresh
 * connection and then splices the two sockets. Only `websocket` upgrades are
 * accepted (no h2c or other protocol switches through the balancer).
 */
export function proxyUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, proto: string, deps: UpgradeDeps): void {
  socket.on('error', () => {});
  const rejection = validateRequest(req, deps.maxUrlLength);
  if (rejection) return refuse(socket, rejection.status, 'Bad Request');
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET') return refuse(socket, 400, 'Bad Request');
  const target = req.url!;
  const mount = deps.matchMount(target);
  if (!mount) return refuse(socket, 404, 'Not Found');
  const balancer = mount.balancer;
  const sticky = extractRoute(req.headers.cookie, target, balancer.sticky);
  const tried = new Set<Member>();
  const path = mount.upstream === mount.path ? target : rewritePrefix(target, mount.path, mount.upstream);
  const clientIp = req.socket.remoteAddress ?? '';
  const headers = requestHeadersForMember(req.rawHeaders, { clientIp, trusted: deps.isTrusted(clientIp), proto, host: req.headers.host, preserveHost: mount.preserveHost }, true);

  const tryOnce = (): void => {
    const d = balancer.pick({ route: sticky?.route, exclude: tried });
    if (d.kind !== 'pick') return refuse(socket, 503, 'Service Unavailable');
    const member = d.member;
    member.busy++;
    member.counters.requests++;
    tried.add(member);
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        balancer.release(member);
      }
    };
    const port = Number(member.url.port) || (member.url.protocol === 'https:' ? 443 : 80);
    const host = member.url.hostname.replace(/^\[|\]$/g, '');
    const upstream: net.Socket = member.url.protocol === 'https:'
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, rejectUnauthorized: deps.rejectUnauthorized, ...(deps.ca ? { ca: deps.ca } : {}) })
      : net.connect({ host, port });
    upstream.setNoDelay(true);
    let connected = false;
    const timer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), deps.connectTimeoutMs);
    upstream.once(member.url.protocol === 'https:' ? 'secureConnect' : 'connect', () => {
      connected = true;
      clearTimeout(timer);
      let headText = `GET ${path} HTTP/1.1\r\nhost: ${member.url.host}\r\n`;
      for (let i = 0; i < headers.length; i += 2) {
        if (!mount.preserveHost || headers[i]!.toLowerCase() !== 'host') headText += `${headers[i]}: ${headers[i + 1]}\r\n`;
      }
      upstream.write(`${headText}\r\n`);
      if (head.length > 0) upstream.write(head);
      // Nothing from the client reaches the member until the member has switched protocols.
      awaitSwitch(upstream, socket, deps.log, member.route);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      release();
      if (!connected) {
        member.markError('connect', `${err.code ?? 'error'}: ${err.message}`, deps.clock.now(), Date.now());
        member.counters.errors++;
        deps.log.info({ member: member.route, code: err.code }, 'websocket upgrade: member unreachable, trying another');
        return tryOnce();
      }
      socket.destroy();
    });
    upstream.on('close', () => {
      release();
      socket.destroy();
    });
    socket.on('close', () => {
      release();
      upstream.destroy();
    });
  };
  tryOnce();
}

/**
 * Reads the member's answer to the upgrade. A 101 to websocket splices the
 * two sockets. Any other answer is passed to the client and both connections
 * close after it: a raw tunnel after a refused upgrade would let the client
 * send the member requests the balancer never parsed (WebSocket smuggling).
 */
function awaitSwitch(upstream: net.Socket, socket: Duplex, log: Logger, route: string): void {
  let buf: Buffer = Buffer.alloc(0);
  const onData = (d: Buffer): void => {
    buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
    const r = parseUpgradeResponse(buf);
    if (r.kind === 'incomplete') return;
    upstream.off('data', onData);
    if (r.kind === 'invalid') {
      log.info({ member: route, detail: r.detail }, 'websocket upgrade: malformed answer from the member');
      upstream.destroy();
      return refuse(socket, 502, 'Bad Gateway');
    }
    if (r.kind === 'switch') {
      socket.write(buf);
      upstream.pipe(socket);
      socket.pipe(upstream);
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
      return;
    }
    // Refused: forward the answer only, then close both sides.
    log.info({ member: route, status: r.status }, 'websocket upgrade refused by the member');
    let remaining = r.contentLength === undefined ? Infinity : r.headBytes + r.contentLength;
    const forward = (chunk: Buffer): void => {
      const part = chunk.length > remaining ? chunk.subarray(0, remaining) : chunk;
      remaining -= part.length;
      if (socket.writable) socket.write(part);
      if (remaining <= 0) finish();
    };
    const finish = (): void => {
      upstream.off('data', forward);
      upstream.destroy();
      if (socket.writable) socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    if (r.contentLength === undefined) {
      upstream.setTimeout(REFUSED_IDLE_MS, finish);
      upstream.once('end', finish);
    }
    upstream.on('data', forward);
    forward(buf);
  };
  upstream.on('data', onData);
}
