/**
 * The socket edge: the one place that opens TCP/TLS sockets for the cluster
 * channel. Tests and other transports replace it through deps.net.
 */
import net, { type Server, type Socket } from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { CohortError } from '../errors.js';
import type { Address } from './membership.js';
import { listenAt } from '../util/listen.js';

export interface ListeningServer {
  readonly port: number;
  close(): Promise<void>;
}

export interface NetFactory {
  /** Whether sockets from this factory are mutually authenticated TLS (no secret handshake needed). */
  readonly tls: boolean;
  /** Listens; `onSocket` gets each accepted socket, ready for cluster frames. */
  listen(host: string, port: number, onSocket: (s: Socket) => void, onAuthFailure: (err: Error, remote: string) => void): Promise<ListeningServer>;
  /** Connects; `cb` fires once with a ready socket or an error (code ECONNREFUSED etc.). Returns a cancel function. */
  connect(addr: Address, cb: (err: (Error & { code?: string }) | undefined, socket?: Socket) => void): () => void;
}

async function listenOn(server: Server, host: string, port: number): Promise<ListeningServer> {
  await listenAt(server, host, port);
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : port,
    close: () => new Promise<void>((res) => server.close(() => res())),
  };
}

/** Reports `socket` to `cb` once it emitted `ready`, or its first error; returns a cancel function. */
function dial(socket: Socket, ready: 'connect' | 'secureConnect', addr: Address, cb: Parameters<NetFactory['connect']>[1]): () => void {
  const done = once(cb);
  socket.once(ready, () => {
    socket.removeAllListeners('error');
    done(undefined, socket);
  });
  socket.once('error', (err) => done(err));
  return () => {
    socket.destroy();
    done(new CohortError('COHORT_CONNECT_TIMEOUT', `connect to ${addr.host}:${addr.port} cancelled`));
  };
}

function once<T extends unknown[]>(fn: (...args: T) => void): (...args: T) => void {
  let done = false;
  return (...args: T) => {
    if (done) return;
    done = true;
    fn(...args);
  };
}

/** Plain TCP (frames are sealed by the secret handshake). */
export const plainNet: NetFactory = {
  tls: false,
  listen(host, port, onSocket) {
    return listenOn(net.createServer({ noDelay: true }, onSocket), host, port);
  },
  connect(addr, cb) {
    return dial(net.connect({ host: addr.host, port: addr.port, noDelay: true }), 'connect', addr, cb);
  },
};

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * Mutual TLS: both sides present a certificate signed by the cluster CA
 * (requestCert + rejectUnauthorized). The host name is not checked: trust is
 * membership of the cluster CA, and peers are often dialed by IP.
 */
export function tlsNet(files: TlsFiles, read: (p: string) => Buffer = (p) => readFileSync(p)): NetFactory {
  let ca: Buffer, cert: Buffer, key: Buffer;
  try {
    ca = read(files.ca);
    cert = read(files.cert);
    key = read(files.key);
  } catch (err) {
    throw new CohortError('COHORT_TLS_FILES', `cannot read cluster TLS files (ca ${files.ca}, cert ${files.cert}, key ${files.key}): ${(err as Error).message}`, { cause: err });
  }
  return {
    tls: true,
    listen(host, port, onSocket, onAuthFailure) {
      const server = tls.createServer({ ca, cert, key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, onSocket);
      server.on('tlsClientError', (err, s) => onAuthFailure(err, `${s.remoteAddress}:${s.remotePort}`));
      return listenOn(server, host, port);
    },
    connect(addr, cb) {
      const s = tls.connect({ host: addr.host, port: addr.port, ca, cert, key, rejectUnauthorized: true, minVersion: 'TLSv1.3', checkServerIdentity: () => undefined });
      return dial(s, 'secureConnect', addr, cb);
    },
  };
}
