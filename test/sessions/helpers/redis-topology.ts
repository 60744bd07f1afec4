/**
 * Real Redis topologies on free loopback ports, for one test: a 3-master
 * Redis Cluster (`redis-server --cluster-enabled yes` ×3 + `redis-cli
 * --cluster create`), and a master + replica + three `redis-sentinel`s.
 * Every process is started here and killed by PID in `stop()`; every temp
 * dir is removed. `redisTopologyUnavailable()` names a missing binary.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canBind, freePort } from '../../helpers/ports.js';

const has = (b: string) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0;

/** Why the topology tests must skip, or undefined (Debian: apt-get install redis-server redis-tools redis-sentinel). */
export function redisTopologyUnavailable(sentinel = false): string | undefined {
  const need = ['redis-server', 'redis-cli', ...(sentinel ? ['redis-sentinel'] : [])];
  const missing = need.filter((b) => !has(b));
  return missing.length ? `missing ${missing.join(', ')} (apt-get install redis-server redis-tools${sentinel ? ' redis-sentinel' : ''})` : undefined;
}

export { freePort } from '../../helpers/ports.js';

/**
 * A free port for a Redis Cluster node: its cluster bus listens on port + 10000,
 * so the port must be at most 55535 and port + 10000 free as well.
 */
export async function freeClusterPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = await freePort();
    if (p <= 55535 && (await canBind(p + 10000))) return p;
  }
  for (let i = 0; i < 200; i++) {
    const p = 20000 + Math.floor(Math.random() * 30000);
    if ((await canBind(p)) && (await canBind(p + 10000))) return p;
  }
  throw new Error('no free port pair (port, port + 10000) for a cluster node');
}

/** redis-cli against a loopback port; resolves to its stdout. */
export function cli(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`redis-cli -p ${port} ${args.join(' ')}: ${stderr || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

export async function waitFor(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface RedisProcess {
  readonly port: number;
  readonly child: ChildProcess;
  /** Starts the same command again (after kill()), e.g. a killed cluster master that rejoins as a replica. */
  again(): Promise<RedisProcess>;
  /** SIGKILL by PID, resolves once it exited. */
  kill(): Promise<void>;
}

/** Starts `bin args` (redis-server or redis-sentinel) and waits until the port answers PING. */
export async function startProcess(bin: string, port: number, args: string[]): Promise<RedisProcess> {
  const child = spawn(bin, args, { stdio: 'ignore' });
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(child.pid!, 'SIGKILL');
    await exited;
  };
  try {
    await waitFor(`${bin} on ${port}`, 10_000, async () => {
      if (child.exitCode !== null) throw new Error(`${bin} exited with ${child.exitCode}`);
      return (await cli(port, 'PING')) === 'PONG';
    });
  } catch (e) {
    await kill();
    throw e;
  }
  return { port, child, kill, again: () => startProcess(bin, port, args) };
}

export function serverArgs(port: number, dir: string, extra: string[] = []): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', ...extra];
}

export interface RedisClusterInstance {
  /** Seed nodes, `127.0.0.1:port`. */
  readonly nodes: readonly string[];
  /** Every server process (with replicas: masters and replicas; ask each its role). */
  readonly masters: RedisProcess[];
  /** Restarts a killed process on its port as a new, empty node and adds it as a replica (of the master that has none: its successor). */
  rejoin(p: RedisProcess): Promise<void>;
  stop(): Promise<void>;
}

/** Three masters, slots split evenly; `replicas`: 1 gives each master a replica (6 processes). */
export async function startRedisCluster(replicas: 0 | 1 = 0): Promise<RedisClusterInstance> {
  const root = mkdtempSync(join(tmpdir(), 'cohort-redis-cluster-'));
  const masters: RedisProcess[] = [];
  const stop = async () => {
    for (const m of masters) await m.kill();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3 * (1 + replicas); i++) {
      const port = await freeClusterPort();
      const dir = join(root, String(port));
      mkdirSync(dir);
      masters.push(await startProcess('redis-server', port, serverArgs(port, dir, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000'])));
    }
    const nodes = masters.map((m) => `127.0.0.1:${m.port}`);
    await new Promise<void>((resolve, reject) => {
      execFile('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 30_000 }, (err, _o, stderr) => (err ? reject(new Error(`redis-cli --cluster create: ${stderr || err.message}`)) : resolve()));
    });
    for (const m of masters) await waitFor(`cluster_state:ok on ${m.port}`, 15_000, async () => (await cli(m.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok'));
    if (replicas) {
      for (const m of masters) {
        await waitFor(`replication link up on ${m.port}`, 20_000, async () => {
          const info = await cli(m.port, 'INFO', 'replication');
          // A master counts a replica for WAIT once it is online (after the replica's first ACK), not when it connects.
          return info.includes('role:master') ? /slave0:[^\n]*state=online/.test(info) : info.includes('master_link_status:up');
        });
      }
    }
    const rejoin = async (p: RedisProcess) => {
      // Without persistence a restarted master must not come back with its old nodes.conf: it would claim its
      // old slots and answer them empty until the cluster demotes it. It joins as a new, empty replica instead.
      const i = masters.indexOf(p);
      const dir = join(root, String(p.port));
      rmSync(join(dir, 'nodes.conf'), { force: true });
      const back = await p.again();
      masters[i] = back;
      const alive = masters.find((m) => m !== back)!;
      // CLUSTER NODES lines: id addr flags master-id ...; the master that no live replica follows is the successor.
      const lines = (await cli(alive.port, 'CLUSTER', 'NODES')).split('\n').map((l) => l.split(' '));
      const live = lines.filter((f) => !/fail/.test(f[2] ?? ''));
      const followed = new Set(live.filter((f) => /slave/.test(f[2] ?? '')).map((f) => f[3]));
      const successor = live.find((f) => /master/.test(f[2] ?? '') && !followed.has(f[0]))?.[0];
      if (!successor) throw new Error(`no master without a replica to rejoin:\n${lines.map((f) => f.join(' ')).join('\n')}`);
      await cli(back.port, 'CLUSTER', 'MEET', '127.0.0.1', String(alive.port));
      await waitFor(`${back.port} knows the successor`, 20_000, async () => (await cli(back.port, 'CLUSTER', 'NODES')).includes(successor));
      await cli(back.port, 'CLUSTER', 'REPLICATE', successor);
      await waitFor(`${back.port} rejoined as a replica`, 30_000, async () => (await cli(back.port, 'INFO', 'replication')).includes('master_link_status:up'));
      const port = /master_port:(\d+)/.exec(await cli(back.port, 'INFO', 'replication'))?.[1];
      await waitFor(`${back.port} online at its master ${port}`, 30_000, async () => new RegExp(`slave\\d+:ip=[^,]+,port=${back.port},state=online`).test(await cli(Number(port), 'INFO', 'replication')));
    };
    return { nodes, masters, rejoin, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The node id of the master on `port`. */
export async function clusterNodeId(port: number): Promise<string> {
  return cli(port, 'CLUSTER', 'MYID');
}

export interface SentinelInstance {
  readonly masterName: string;
  /** `127.0.0.1:port` of each sentinel. */
  readonly sentinels: readonly string[];
  master: RedisProcess;
  replica: RedisProcess;
  /** The master's port as the sentinels see it. */
  masterPort(): Promise<number>;
  /** SIGKILL the master; once the sentinels promoted the replica, restart the old one as a replica of the new master. */
  killMasterAndRejoin(): Promise<{ oldPort: number; newPort: number }>;
  /** For a failure message: each server's role and whether it has `key`, and what each sentinel says the master is. */
  whereIs(key: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startSentinels(masterName = 'cohortmaster'): Promise<SentinelInstance> {
  const root = mkdtempSync(join(tmpdir(), 'cohort-redis-sentinel-'));
  const procs: RedisProcess[] = [];
  const sentinelProcs: RedisProcess[] = [];
  const stop = async () => {
    for (const p of [...sentinelProcs, ...procs]) await p.kill();
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const mp = await freePort();
    const rp = await freePort();
    const logOf = (port: number) => ['--logfile', join(root, `server-${port}-${Date.now()}.log`)];
    const master = await startProcess('redis-server', mp, serverArgs(mp, root, ['--dbfilename', `m${mp}.rdb`, ...logOf(mp)]));
    procs.push(master);
    // Replicas as docs/redis.md advises: one that is not in sync answers MASTERDOWN (retried), not a stale or empty
    // dataset — node-redis's master client can reconnect to the old master's address, where the old master comes
    // back as a replica, before it hears of the failover.
    const replicaArgs = ['--replica-serve-stale-data', 'no'];
    const replica = await startProcess('redis-server', rp, serverArgs(rp, root, ['--dbfilename', `r${rp}.rdb`, '--replicaof', '127.0.0.1', String(mp), ...replicaArgs, ...logOf(rp)]));
    procs.push(replica);
    await waitFor('replica in sync', 15_000, async () => /slave0:[^\n]*state=online/.test(await cli(mp, 'INFO', 'replication')));
    const sentinels: string[] = [];
    for (let i = 0; i < 3; i++) {
      const sp = await freePort();
      const conf = join(root, `sentinel-${sp}.conf`);
      writeFileSync(conf, [
        `port ${sp}`, 'bind 127.0.0.1', `dir ${root}`, `logfile ${join(root, `sentinel-${sp}.log`)}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${mp} 2`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        `sentinel parallel-syncs ${masterName} 1`, '',
      ].join('\n'));
      sentinelProcs.push(await startProcess('redis-sentinel', sp, [conf]));
      sentinels.push(`127.0.0.1:${sp}`);
    }
    // Each sentinel must know the replica and the two other sentinels before a failover can be agreed.
    for (const s of sentinelProcs) {
      await waitFor(`sentinel ${s.port} sees the replica and 2 sentinels`, 20_000, async () => {
        const info = await cli(s.port, 'SENTINEL', 'MASTER', masterName);
        const lines = info.split('\n');
        const field = (k: string) => Number(lines[lines.indexOf(k) + 1]);
        return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2;
      });
    }
    const inst: SentinelInstance = {
      masterName,
      sentinels,
      master,
      replica,
      async masterPort() {
        const out = await cli(sentinelProcs[0]!.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName);
        return Number(out.split('\n')[1]);
      },
      async killMasterAndRejoin() {
        const oldPort = inst.master.port;
        await inst.master.kill();
        await waitFor('failover to the replica', 20_000, async () => (await inst.masterPort()) !== oldPort);
        const newPort = await inst.masterPort();
        const promoted = inst.replica;
        // replica-priority 0 until its first sync is done, as docs/redis.md advises: an empty replica must not be
        // promoted. With down-after 1000 ms on a loaded host the sentinels can find the just-promoted master down
        // (their links to it are new) and fail over again, to the only replica — seen in a full suite: every session
        // gone, two masters.
        const rejoined = await startProcess('redis-server', oldPort, serverArgs(oldPort, root, ['--dbfilename', `x${oldPort}.rdb`, '--replicaof', '127.0.0.1', String(newPort), '--replica-priority', '0', ...replicaArgs, ...logOf(oldPort)]));
        procs.push(rejoined);
        await waitFor('old master re-joined as a replica', 20_000, async () => /slave0:[^\n]*state=online/.test(await cli(newPort, 'INFO', 'replication')));
        await cli(oldPort, 'CONFIG', 'SET', 'replica-priority', '100');
        inst.master = promoted;
        inst.replica = rejoined;
        return { oldPort, newPort };
      },
      async whereIs(key) {
        const ask = (port: number, ...args: string[]) => cli(port, ...args).then((x) => x.replace(/\n/g, ' '), (e: Error) => `(${e.message.split('\n')[0]})`);
        const lines: string[] = [];
        for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) lines.push(`server ${p.port}: ROLE ${await ask(p.port, 'ROLE')}; EXISTS ${await ask(p.port, 'EXISTS', key)}`);
        for (const s of sentinelProcs) lines.push(`sentinel ${s.port}: master ${await ask(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName)}`);
        for (const f of readdirSync(root).filter((x) => x.endsWith('.log')).sort()) {
          lines.push(`--- ${f}`, ...readFileSync(join(root, f), 'utf8').trim().split('\n').slice(-40));
        }
        return lines.join('\n');
      },
      stop,
    };
    return inst;
  } catch (e) {
    await stop();
    throw e;
  }
}
