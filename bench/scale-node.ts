/**
 * One session node for bench/scale.ts, in its own (memory-bounded) process: a
 * cluster node on loopback TCP (authenticated, encrypted channel as in
 * production), a ReplicatedSessionManager in the mode under test, and an HTTP
 * server whose handler increments a counter in a ~1 KiB session (a committed
 * write per request). Driven over IPC by the coordinator.
 *
 * Env: ROUTE, SECRET, LISTEN_PORT (0 = any), MEMBERS (comma-separated host:port),
 * MODE (all-to-all | backup), BACKUPS (backup mode).
 *
 * Timestamps sent to the coordinator are µs of the machine's monotonic clock
 * (process.hrtime → CLOCK_MONOTONIC, shared by all processes).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClusterNode } from '../src/cluster/index.js';
import { sessionMembersView } from '../src/node/session-members.js';
import { ReplicatedSessionManager } from '../src/sessions/replication/replicated-manager.js';
import { withSessions, type SessionRequest } from '../src/sessions/http/middleware.js';

const route = process.env.ROUTE ?? 'n1';
const members = (process.env.MEMBERS ?? '').split(',').filter(Boolean);
const send = (m: object): void => void process.send!(m);
const us = (): number => Number(process.hrtime.bigint() / 1000n);

const cluster = createClusterNode({
  route,
  clusterName: 'bench-scale',
  listen: { host: '127.0.0.1', port: Number(process.env.LISTEN_PORT ?? 0) },
  secret: process.env.SECRET,
  membership: { type: 'static', members },
  meta: { role: 'node' },
});
await cluster.start();
cluster.onMembership((e) => {
  if (e.type === 'gone') send({ type: 'gone', route: e.member.route, at: us() });
});
// A joiner waits for the cluster before it asks for the sessions (state transfer).
if (process.env.JOINER === '1') while (cluster.members().length < members.length) await new Promise((r) => setTimeout(r, 5));
const mode = (process.env.MODE ?? 'all-to-all') as 'all-to-all' | 'backup';
const manager = new ReplicatedSessionManager({
  channel: sessionMembersView(cluster),
  config: { mode, ...(mode === 'backup' ? { backups: Number(process.env.BACKUPS ?? 1) } : {}) },
});
const t0 = performance.now();
await manager.start();
const transferMs = performance.now() - t0;

const pad = 'x'.repeat(900);
const server = http.createServer(
  withSessions(manager, (req: SessionRequest, res) => {
    const s = req.session as { n?: number; pad?: string };
    s.n = (s.n ?? 0) + 1;
    s.pad ??= pad;
    res.end(String(s.n));
  }),
);
server.keepAliveTimeout = 30_000;
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));

function counters() {
  let messagesOut = 0;
  let bytesOut = 0;
  let messagesIn = 0;
  let bytesIn = 0;
  for (const c of Object.values(cluster.counters())) {
    messagesOut += c.messagesOut;
    bytesOut += c.bytesOut;
    messagesIn += c.messagesIn;
    bytesIn += c.bytesIn;
  }
  const u = process.cpuUsage();
  const m = process.memoryUsage();
  return { messagesOut, bytesOut, messagesIn, bytesIn, cpuMs: (u.user + u.system) / 1000, rss: m.rss, heapUsed: m.heapUsed };
}

send({ type: 'up', http: (server.address() as AddressInfo).port, cluster: `127.0.0.1:${cluster.self.channelAddress.port}`, transferMs, transferred: manager.getStats().lastTransfer?.sessions ?? 0 });

process.on('message', async (m: { type: string; n?: number }) => {
  switch (m.type) {
    case 'members':
      send({ type: 'members', members: cluster.members().filter((x) => x.state === 'alive').length });
      break;
    case 'counters':
      send({ type: 'counters', ...counters() });
      break;
    case 'fill': {
      const data = 'x'.repeat(1024 - 40);
      for (let i = 0; i < (m.n ?? 0); i++) {
        const s = manager.create();
        s.attributes.user = `${route}-${i}`;
        s.attributes.data = data;
        await manager.commit(s);
      }
      send({ type: 'filled', sessions: manager.getStats().sessions });
      break;
    }
    case 'close':
      server.closeAllConnections();
      server.close();
      await manager.close();
      await cluster.close();
      send({ type: 'closed' });
      process.exit(0);
  }
});
