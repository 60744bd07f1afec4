/**
 * Session replication benchmark in ONE process over the in-memory cluster
 * channel (JSON serialization both ways):
 *   node dist/bench/sessions.js
 * Reports the manager's own replication cost (lag without a network),
 * state-transfer time for 10k and 100k sessions, memory per session, and
 * convergence under 16 concurrent writers on one session.
 *
 * Replication lag and throughput with a peer over real loopback TCP between
 * two processes: bench/sessions-tcp.ts (`npm run bench:sessions`).
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { MemoryHub } from '../test/sessions/helpers/memory-cluster.js';
import { ReplicatedSessionManager } from '../src/sessions/replication/replicated-manager.js';
import type { ReplicationConfigInput } from '../src/sessions/config.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

async function node(hub: MemoryHub, route: string, config: ReplicationConfigInput = {}) {
  const channel = hub.channel(route);
  await channel.start();
  const manager = new ReplicatedSessionManager({ channel, config });
  await manager.start();
  return { channel, manager };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function lag(): Promise<void> {
  const hub = new MemoryHub();
  const a = await node(hub, 'n1');
  const b = await node(hub, 'n2', { replicaEvents: true });
  const s = a.manager.create();
  s.attributes.n = 0;
  s.attributes.pad = 'x'.repeat(900);
  await a.manager.commit(s);
  const lags: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const applied = new Promise<number>((r) => b.manager.once('attributeChanged', () => r(performance.now())));
    (s.attributes as { n: number }).n = i;
    const t0 = performance.now();
    await a.manager.commit(s);
    lags.push((await applied) - t0);
  }
  console.log(`replication lag in one process, in-memory channel (the manager's own cost, no network; 1 KiB session, async): p50 ${pct(lags, 50).toFixed(3)} ms, p99 ${pct(lags, 99).toFixed(3)} ms`);
  a.manager.destroy();
  b.manager.destroy();
}

async function transfer(n: number): Promise<void> {
  const hub = new MemoryHub();
  const a = await node(hub, 'n1');
  const pad = 'x'.repeat(1024 - 40);
  for (let i = 0; i < n; i++) {
    const s = a.manager.create();
    s.attributes.user = `u${i}`;
    s.attributes.data = pad;
    await a.manager.commit(s);
  }
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const b = await node(hub, 'n2');
  const ms = performance.now() - t0;
  gc();
  const perSession = (process.memoryUsage().heapUsed - heap0) / n;
  console.log(`state transfer ${n} x 1 KiB: ${ms.toFixed(0)} ms; memory per replicated session ~${(perSession / 1024).toFixed(2)} KiB`);
  a.manager.destroy();
  b.manager.destroy();
}

/**
 * Graceful handoff: n1 owns `n` sessions of 1 KiB, two peers hold copies;
 * `close()` hands them over. `stale`: the peers missed n1's last delta of
 * every session (held back), so each one is sent in full.
 */
async function handoff(n: number, mode: 'all-to-all' | 'backup', stale: boolean): Promise<void> {
  const hub = new MemoryHub();
  const a = await node(hub, 'n1', { mode, handoffTimeoutMs: 60_000 });
  const b = await node(hub, 'n2', { mode });
  const c = await node(hub, 'n3', { mode });
  const pad = 'x'.repeat(1024 - 40);
  const sessions = [];
  for (let i = 0; i < n; i++) {
    const s = a.manager.create();
    s.attributes.user = `u${i}`;
    s.attributes.data = pad;
    await a.manager.commit(s);
    sessions.push(s);
  }
  if (stale) {
    hub.hold = (m) => m.topic === 'sessions.delta';
    for (const s of sessions) {
      s.attributes.seen = true;
      await a.manager.commit(s);
    }
  }
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
  const t0 = performance.now();
  await a.manager.close();
  const ms = performance.now() - t0;
  const r = a.manager.getStats().lastHandoff!;
  console.log(`graceful handoff ${n} x 1 KiB (${mode}${stale ? ', peers one version behind: full copies' : ''}): handed ${r.handed} to ${r.members} members in ${ms.toFixed(0)} ms, ${r.failed} failed`);
  hub.hold = undefined;
  for (const x of [a, b, c]) x.manager.destroy();
}

async function convergence(): Promise<void> {
  let converged = 0;
  const bursts = 7;
  for (let burst = 0; burst < bursts; burst++) {
    const hub = new MemoryHub();
    const a = await node(hub, 'n1');
    const b = await node(hub, 'n2');
    // reorder deliveries at random to mimic concurrent connections
    hub.hold = (m) => m.topic === 'sessions.delta';
    const s = a.manager.create();
    s.attributes.n = 0;
    await a.manager.commit(s);
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = 0; i < 20; i++) {
          (s.attributes as { n: number }).n++;
          await a.manager.commit(s);
        }
      }),
    );
    const order = hub.held.map((_, i) => i).sort(() => Math.random() - 0.5);
    await hub.release(order);
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    if (b.manager.peek(s.id)?.version === a.manager.peek(s.id)?.version) converged++;
    a.manager.destroy();
    b.manager.destroy();
  }
  console.log(`16 concurrent writers x 20 updates, deliveries shuffled: replica converged to the owner's version in ${converged}/${bursts} bursts`);
}

await lag();
await transfer(10_000);
await transfer(100_000);
await convergence();
for (const mode of ['all-to-all', 'backup'] as const) await handoff(10_000, mode, false);
await handoff(10_000, 'all-to-all', true);
await handoff(50_000, 'all-to-all', false);
process.exit(0);
