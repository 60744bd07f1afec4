/**
 * Channel throughput and latency with 1 KiB messages, nodes in ONE process
 * (so sender and receiver share a core: a lower bound). Not part of `npm test`.
 *   node dist/bench/cluster-throughput.js [messages=20000]
 */
import { createClusterNode, type ClusterNode } from '../src/cluster/index.js';

const N = Number(process.argv[2] ?? 20000);
const SECRET = 'bench-secret-0123456789abcdef';
const payload = 'x'.repeat(1024 - 2);

async function start(route: string, members: string[]): Promise<ClusterNode> {
  const n = createClusterNode({ route, listen: { host: '127.0.0.1', port: 0 }, secret: SECRET, membership: { type: 'static', members } });
  await n.start();
  return n;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))]!;
}

async function waitMembers(sender: ClusterNode, rs: ClusterNode[]): Promise<void> {
  while (sender.members().length < rs.length || !rs.every((n) => n.members().length >= 1)) await new Promise((r) => setTimeout(r, 10));
}

async function run(peers: number): Promise<void> {
  const sender = await start('s', []);
  const addr = `127.0.0.1:${sender.self.channelAddress.port}`;
  const rs: ClusterNode[] = [];
  for (let i = 0; i < peers; i++) rs.push(await start(`r${i}`, [addr]));
  await waitMembers(sender, rs);
  let got = 0;
  for (const r of rs) r.handle('b', () => void got++);
  const targets = rs.map((r) => r.self.id);
  for (const mode of ['async', 'received'] as const) {
    got = 0;
    const lat: number[] = [];
    const t0 = performance.now();
    const window = 256;
    let inflight: Promise<void>[] = [];
    for (let i = 0; i < N; i++) {
      const to = targets[i % targets.length]!;
      const s = performance.now();
      inflight.push(sender.send(to, 'b', payload, { mode }).then(() => void lat.push(performance.now() - s)));
      if (inflight.length >= window) {
        await Promise.all(inflight);
        inflight = [];
      }
    }
    await Promise.all(inflight);
    while (got < N) await new Promise((r) => setImmediate(r));
    const ms = performance.now() - t0;
    console.log(`${peers} peer(s), ${mode}: ${Math.round((N / ms) * 1000)} msg/s, latency p50 ${pct(lat, 50).toFixed(2)} ms p99 ${pct(lat, 99).toFixed(2)} ms (window ${window})`);
  }
  // unloaded round trip
  const rtt: number[] = [];
  for (let i = 0; i < 500; i++) {
    const s = performance.now();
    await sender.send(targets[i % targets.length]!, 'b', payload, { mode: 'received' });
    rtt.push(performance.now() - s);
  }
  console.log(`${peers} peer(s), one at a time, received: p50 ${pct(rtt, 50).toFixed(3)} ms p99 ${pct(rtt, 99).toFixed(3)} ms`);
  for (const n of [sender, ...rs]) n.destroy();
}

await run(1);
await run(4);
