import type { Server } from 'node:net';
import type { Socket } from 'node:net';
import { parseHostPort } from './address.js';

/** Starts listening on "host:port"; rejects on EADDRINUSE and friends instead of throwing later. */
export function listenOn(server: Server, address: string): Promise<void> {
  const { host, port } = parseHostPort(address);
  return listenAt(server, host, port);
}

/** Starts listening on host and port (0: any free port); rejects on EADDRINUSE and friends. */
export function listenAt(server: Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Keeps `sockets` equal to the server's open connections (for graceful close and destroy). */
export function trackConnections(server: Server, sockets: Set<Socket>): void {
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
}
