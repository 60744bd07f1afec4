/**
 * Cluster size: `npm run bench:scale` (after the build) starts 3, 8 and 16 real
 * `cohort` session-node processes on loopback (bench/scale-node.ts; each
 * memory-bounded with --max-old-space-size) and reports, per replication mode
 * (all-to-all, backup with 1 and 2 backups):
 *
 * - session-writing requests/s per node: a closed loop of USERS users per node,
 *   each with its own session on that node (the node owns it), CONNECTIONS
 *   connections per node, SECONDS s after a 0.5 s warm-up;
 * - bytes sent per committed write: the channel bytes all nodes sent during the
 *   load, less the idle (membership) rate, over the writes;
 * - heartbeat messages/s per node: channel messages a node sends while idle
 *   (membership: heartbeats, probes, gossip), over IDLE s;
 * - SIGKILL detection time: one node killed, until every other node sees it
 *   gone (median and max over the observers);
 * - state-transfer time: a new node joins the cluster holding FILL sessions per
 *   node (~1 KiB each) and reports how long its state transfer took.
 *
 * Every process shares the machine's cores with this load generator: on a
 * small machine the absolute req/s at 16 nodes is the machine's, not the
 * cluster's. The ratios between sizes and modes are what to read.
 *
 * Env: SIZES (3,8,16), MODES (all-to-all,backup:1,backup:2), SECONDS (3),
 * IDLE (3), USERS (8 per node), CONNECTIONS (2 per node), FILL (200 per node),
 * HEAP_MB (96 per node), JSON (1: print the results as JSON too).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const here = dirname(fileURLToPath(import.meta.url));
const list = (v: string | undefined, d: string) => (v ?? d).split(',').map((s) => s.trim()).filter(Boolean);
const SIZES = list(process.env.SIZES, '3,8,16').map(Number);
const MODES = list(process.env.MODES, 'all-to-all,backup:1,backup:2');
const SECONDS = Number(process.env.SECONDS ?? 3);
const IDLE = Number(process.env.IDLE ?? 3);
const USERS = Number(process.env.USERS ?? 8);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 2);
const FILL = Number(process.env.FILL ?? 200);
const HEAP_MB = Number(process.env.HEAP_MB ?? 96);
const SECRET = 'bench-scale-secret-0123456789abcdef';
const children = new Set<ChildProcess>();

process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
});

const us = (): number => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Counters {
  messagesOut: number;
  bytesOut: number;
  cpuMs: number;
  rss: number;
}

interface Worker {
  readonly route: string;
  readonly child: ChildProcess;
  readonly http: number;
  readonly transferMs: number;
  readonly transferred: number;
  readonly gone: Array<{ route: string; at: number }>;
  ask<T>(msg: object, reply: string): Promise<T>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function worker(route: string, port: number, members: string[], mode: string, extra: Record<string, string> = {}): Promise<Worker> {
  const [m, backups] = mode.split(':') as [string, string | undefined];
  const child = fork(join(here, 'scale-node.js'), [], {
    execArgv: [`--max-old-space-size=${HEAP_MB}`],
    env: { ...process.env, ROUTE: route, SECRET, LISTEN_PORT: String(port), MEMBERS: members.join(','), MODE: m, BACKUPS: backups ?? '1', ...extra },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const gone: Worker['gone'] = [];
  child.on('message', (msg: { type: string; route: string; at: number }) => {
    if (msg.type === 'gone') gone.push({ route: msg.route, at: msg.at });
  });
  const ask = <T>(msg: object, reply: string): Promise<T> => {
    const p = new Promise<T>((resolve) => {
      const on = (r: { type: string }) => {
        if (r.type === reply) {
          child.off('message', on);
          resolve(r as T);
        }
      };
      child.on('message', on);
    });
    child.send(msg);
    return p;
  };
  const up = await new Promise<{ http: number; transferMs: number; transferred: number }>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`node ${route} exited (${code}) before it was up`));
    child.once('exit', onExit);
    const on = (msg: { type: string; http: number; transferMs: number; transferred: number }) => {
      if (msg.type !== 'up') return;
      child.off('message', on);
      child.off('exit', onExit);
      resolve(msg);
    };
    child.on('message', on);
  });
  return { route, child, gone, ask, ...up };
}

async function stop(w: Worker): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  const exited = once(w.child, 'exit');
  w.child.send({ type: 'close' });
  const timer = setTimeout(() => w.child.pid && process.kill(w.child.pid, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const counters = (ws: readonly Worker[]) => Promise.all(ws.map((w) => w.ask<Counters>({ type: 'counters' }, 'counters')));
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
const med = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** USERS users per node, each with its own session on that node. */
async function makeUsers(pool: Pool): Promise<string[]> {
  const cookies: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const r = await pool.request({ path: '/', method: 'GET' });
    await r.body.text();
    cookies.push(String(r.headers['set-cookie']).split(';')[0]!);
  }
  return cookies;
}

/** Closed loop on every node for SECONDS after a 0.5 s warm-up; returns the writes counted. */
async function load(pools: readonly Pool[], cookies: readonly string[][], secs: number): Promise<{ writes: number; all: number; ms: number }> {
  let writes = 0;
  let all = 0;
  let counting = false;
  let from = 0;
  const end = performance.now() + 500 + secs * 1000;
  setTimeout(() => {
    counting = true;
    from = performance.now();
  }, 500).unref();
  await Promise.all(pools.flatMap((pool, i) => cookies[i]!.map(async (cookie) => {
    while (performance.now() < end) {
      const r = await pool.request({ path: '/', method: 'GET', headers: { cookie } });
      await r.body.text();
      if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
      all++;
      if (counting) writes++;
    }
  })));
  return { writes, all, ms: performance.now() - from };
}

interface Row {
  nodes: number;
  mode: string;
  reqPerSecPerNode: number;
  bytesPerWrite: number;
  heartbeatMsgsPerSecPerNode: number;
  idleBytesPerSecPerNode: number;
  detectMedianMs: number;
  detectMaxMs: number;
  transferMs: number;
  transferredSessions: number;
  clusterSessions: number;
  rssMiBPerNode: number;
}

async function measure(n: number, mode: string): Promise<Row> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const addr = (p: number) => `127.0.0.1:${p}`;
  const ws = await Promise.all(ports.map((p, i) => worker(`n${i + 1}`, p, ports.filter((q) => q !== p).map(addr), mode)));
  try {
    await until(`${n} nodes to see each other`, async () => (await Promise.all(ws.map((w) => w.ask<{ members: number }>({ type: 'members' }, 'members')))).every((r) => r.members === n - 1));
    await sleep(500);
    // Idle: membership traffic only.
    const i0 = await counters(ws);
    const t0 = performance.now();
    await sleep(IDLE * 1000);
    const i1 = await counters(ws);
    const idleS = (performance.now() - t0) / 1000;
    const idleMsgs = sum(i1.map((c, k) => c.messagesOut - i0[k]!.messagesOut)) / n / idleS;
    const idleBytes = sum(i1.map((c, k) => c.bytesOut - i0[k]!.bytesOut)) / n / idleS;
    // Load: session writes on every node.
    const pools = ws.map((w) => new Pool(`http://127.0.0.1:${w.http}`, { connections: CONNECTIONS }));
    const cookies = await Promise.all(pools.map(makeUsers));
    await load(pools, cookies, 0.5);
    const l0 = await counters(ws);
    const lt0 = performance.now();
    const { writes, all, ms } = await load(pools, cookies, SECONDS);
    await sleep(200);
    const l1 = await counters(ws);
    // Every write of the loop (warm-up included) against every byte sent meanwhile, less the membership traffic.
    const sentBytes = sum(l1.map((c, k) => c.bytesOut - l0[k]!.bytesOut)) - idleBytes * n * ((performance.now() - lt0) / 1000);
    await Promise.all(pools.map((p) => p.close()));
    // Sessions for the state transfer.
    const filled = await Promise.all(ws.map((w) => w.ask<{ sessions: number }>({ type: 'fill', n: FILL }, 'filled')));
    const clusterSessions = n * (FILL + USERS);
    await sleep(300);
    // SIGKILL one node; every other node must see it gone.
    const victim = ws[n - 1]!;
    const killedAt = us();
    process.kill(victim.child.pid!, 'SIGKILL');
    await once(victim.child, 'exit');
    const observers = ws.slice(0, n - 1);
    await until(`every node to see ${victim.route} gone`, async () => observers.every((w) => w.gone.some((g) => g.route === victim.route && g.at >= killedAt)), 30_000);
    const detect = observers.map((w) => (w.gone.find((g) => g.route === victim.route && g.at >= killedAt)!.at - killedAt) / 1000);
    // A new node joins the N-1 that are left and takes its state transfer.
    const joinerPort = await freePort();
    const joiner = await worker(`j${n}`, joinerPort, ports.slice(0, n - 1).map(addr), mode, { JOINER: '1' });
    const rss = (await counters([...observers, joiner])).map((c) => c.rss);
    await stop(joiner);
    void filled;
    return {
      nodes: n,
      mode,
      reqPerSecPerNode: writes / (ms / 1000) / n,
      bytesPerWrite: sentBytes / all,
      heartbeatMsgsPerSecPerNode: idleMsgs,
      idleBytesPerSecPerNode: idleBytes,
      detectMedianMs: med(detect),
      detectMaxMs: Math.max(...detect),
      transferMs: joiner.transferMs,
      transferredSessions: joiner.transferred,
      clusterSessions,
      rssMiBPerNode: med(rss) / 1048576,
    };
  } finally {
    await Promise.all(ws.map(stop));
  }
}

function table(rows: readonly Row[]): string {
  const head = ['nodes', 'mode', 'req/s/node', 'B sent/write', 'hb msg/s/node', 'idle B/s/node', 'SIGKILL detect med/max ms', 'transfer ms (sessions)', 'RSS MiB/node'];
  // clusterSessions: the sessions the cluster held before the kill (FILL + USERS per node), for the JSON.
  const body = rows.map((r) => [
    String(r.nodes), r.mode, r.reqPerSecPerNode.toFixed(0), r.bytesPerWrite.toFixed(0), r.heartbeatMsgsPerSecPerNode.toFixed(1), r.idleBytesPerSecPerNode.toFixed(0),
    `${r.detectMedianMs.toFixed(0)} / ${r.detectMaxMs.toFixed(0)}`, `${r.transferMs.toFixed(0)} (${r.transferredSessions} received)`, r.rssMiBPerNode.toFixed(0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((cols) => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n');
}

async function main(): Promise<void> {
  process.stdout.write(`cluster scale on loopback: sizes ${SIZES.join(', ')}; modes ${MODES.join(', ')}; ${USERS} users and ${CONNECTIONS} connections per node, ${SECONDS} s load, ${IDLE} s idle, ${FILL} sessions per node for the transfer, heap ≤ ${HEAP_MB} MiB per node; node ${process.version}\n`);
  const rows: Row[] = [];
  for (const n of SIZES) {
    for (const mode of MODES) {
      const r = await measure(n, mode);
      rows.push(r);
      process.stdout.write(`  ${n} nodes, ${mode}: ${r.reqPerSecPerNode.toFixed(0)} req/s/node, ${r.bytesPerWrite.toFixed(0)} B/write, ${r.heartbeatMsgsPerSecPerNode.toFixed(1)} hb msg/s/node, detect ${r.detectMedianMs.toFixed(0)}/${r.detectMaxMs.toFixed(0)} ms, transfer ${r.transferMs.toFixed(0)} ms\n`);
    }
  }
  process.stdout.write(`\n${table(rows)}\n`);
  if (process.env.JSON === '1') process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
