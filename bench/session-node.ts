/**
 * One session node for bench/sessions-tcp.ts, in its own process: a cluster
 * node on loopback TCP (authenticated, encrypted channel as in production),
 * a ReplicatedSessionManager over it and an HTTP server whose handler
 * increments a session counter (1 KiB session). Driven over IPC by the
 * coordinator.
 *
 * Replication lag is measured on the machine's monotonic clock
 * (process.hrtime → CLOCK_MONOTONIC, shared by all processes): the writer
 * records when each commit began (end of the request's handler), the peer
 * when it applied that version; the coordinator matches them.
 *
 * Env: ROUTE, SECRET, MEMBERS (comma-separated host:port, may be empty), SYNC_HEADER.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClusterNode } from '../src/cluster/index.js';
import { sessionMembersView } from '../src/node/session-members.js';
import { ReplicatedSessionManager } from '../src/sessions/replication/replicated-manager.js';
import { withSessions, type SessionRequest } from '../src/sessions/http/middleware.js';
import type { CommitOptions } from '../src/sessions/contract.js';
import type { Session } from '../src/sessions/model/session.js';

const route = process.env.ROUTE ?? 'n1';
const members = (process.env.MEMBERS ?? '').split(',').filter(Boolean);
const send = (m: object): void => void process.send!(m);
const us = (): number => Number(process.hrtime.bigint() / 1000n);

const cluster = createClusterNode({
  route,
  clusterName: 'bench',
  listen: { host: '127.0.0.1', port: 0 },
  secret: process.env.SECRET,
  membership: { type: 'static', members },
  meta: { role: 'node' },
});
await cluster.start();
if (members.length > 0) while (cluster.members().length === 0) await new Promise((r) => setTimeout(r, 5));
const manager = new ReplicatedSessionManager({ channel: sessionMembersView(cluster), config: { replicaEvents: true }, batchDeltas: process.env.BATCH !== '0' });

/** `${base}:${version}` → µs: when the commit began (writer) or when the version was applied (replica). */
let marks = new Map<string, number>();
let recording = false;
const commit = manager.commit.bind(manager);
manager.commit = async (s: Session, o?: CommitOptions) => {
  const t0 = us();
  const r = await commit(s, o);
  if (recording && r.changed) marks.set(`${s.base}:${r.version}`, t0);
  return r;
};
manager.on('attributeChanged', (e: { id: string; replica: boolean }) => {
  if (!recording || !e.replica) return;
  const t = us();
  const s = manager.peek(e.id);
  if (!s) return;
  const k = `${s.base}:${s.version}`;
  if (!marks.has(k)) marks.set(k, t);
});

const t0 = performance.now();
await manager.start();
const transferMs = performance.now() - t0;

const pad = 'x'.repeat(900);
const server = http.createServer(
  withSessions(
    manager,
    (req: SessionRequest, res) => {
      const s = req.session as { n?: number; pad?: string };
      s.n = (s.n ?? 0) + 1;
      s.pad ??= pad;
      res.end(String(s.n));
    },
    { sync: (req) => req.headers['x-sync'] === '1' },
  ),
);
server.keepAliveTimeout = 30_000;
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));

send({
  type: 'up',
  http: (server.address() as AddressInfo).port,
  cluster: `127.0.0.1:${cluster.self.channelAddress.port}`,
  transferMs,
  transferred: manager.getStats().lastTransfer?.sessions ?? 0,
});

process.on('message', async (m: { type: string; n?: number }) => {
  switch (m.type) {
    case 'record':
      marks = new Map();
      recording = true;
      send({ type: 'recording' });
      break;
    case 'dump':
      recording = false;
      send({ type: 'marks', marks: [...marks] });
      marks = new Map();
      break;
    case 'fill': {
      // n sessions of ~1 KiB, committed here (replicated to the peers present)
      const data = 'x'.repeat(1024 - 40);
      for (let i = 0; i < (m.n ?? 0); i++) {
        const s = manager.create();
        s.attributes.user = `u${i}`;
        s.attributes.data = data;
        await manager.commit(s);
      }
      send({ type: 'filled', sessions: manager.getStats().sessions });
      break;
    }
    case 'cpu': {
      const u = process.cpuUsage();
      const b = (manager as unknown as { deltaBatcher?: { messages: number; deltas: number } }).deltaBatcher;
      send({ type: 'cpu', ms: (u.user + u.system) / 1000, user: u.user / 1000, messages: b?.messages ?? 0, deltas: b?.deltas ?? 0 });
      break;
    }
    case 'members':
      send({ type: 'members', members: cluster.members().length });
      break;
    case 'close':
      server.closeAllConnections();
      server.close();
      await manager.close();
      await cluster.close();
      send({ type: 'closed' });
      process.exit(0);
  }
});
