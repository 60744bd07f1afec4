/**
 * Ports for test processes that must be told a port before they start (a
 * node's cluster port in its peers' config, a Redis server's port).
 *
 * Why not "listen on 0, close, hand out the number": the kernel takes those
 * from its ephemeral range, the same range it takes the local ports of
 * outgoing connections from — so while the test starts its process, another
 * test running beside it can connect out from that very port (EADDRINUSE), or
 * once a test's server is killed, its freed port can go to another test's
 * new server, which a client still retrying the old address then reaches.
 * Ports here come from below the ephemeral range, at random, checked free
 * by binding, and never twice from one test process.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';

const handedOut = new Set<number>();

/** Ports handed out are drawn from [LOW, the ephemeral range's first port). */
const LOW = 10_000;

function ephemeralLow(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 0 ? first : 32_768;
  } catch {
    return 32_768;
  }
}
const HIGH = Math.min(ephemeralLow(), 65_536);

/** Whether `port` can be bound on loopback now (TCP). */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A loopback TCP port free a moment ago, outside the kernel's ephemeral range (see above). */
export async function freePort(): Promise<number> {
  if (HIGH - LOW >= 1_000) {
    for (let i = 0; i < 200; i++) {
      const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
      if (handedOut.has(port)) continue;
      if (await canBind(port)) {
        handedOut.add(port);
        return port;
      }
    }
  }
  // A machine whose ephemeral range starts low: what the kernel gives.
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  handedOut.add(port);
  return port;
}
