/**
 * RedisPort over ioredis: `Redis` (standalone, or Sentinel with `sentinels`
 * + `name`) or `Cluster`. The package is an optional peer dependency,
 * imported only when this adapter is chosen; an application's own ioredis
 * instance can be wrapped with {@link ioredisPortFor} (not owned then).
 */
import type { Cluster, Redis } from 'ioredis';
import { RedisError, RedisErrorCode } from './errors.js';
import { reconnectDelayMs, type RedisCommand, type RedisPort, type RedisPortOptions, type RedisSender } from './port.js';

async function loadIoredis(): Promise<{ Redis: typeof Redis; Cluster: typeof Cluster }> {
  try {
    const m = await import('ioredis');
    return { Redis: m.Redis, Cluster: m.Cluster };
  } catch (err) {
    throw new RedisError(RedisErrorCode.ClientMissing, 'sessions.redis.client is "ioredis" but the "ioredis" package is not installed: npm install ioredis (or set client: node-redis)', { cause: err });
  }
}

/** Sentinel: a client still connected to a master demoted by a failover answers READONLY: reconnect (asking the sentinels for the new master) and resend. Elsewhere READONLY reaches the manager's retry (counted). */
const reconnectOnError = (err: Error): 2 | false => (/^READONLY\b/.test(err.message) ? 2 : false);

export async function ioredisPort(o: RedisPortOptions): Promise<RedisPort> {
  const { Redis, Cluster } = await loadIoredis();
  const t = o.topology;
  const common = {
    ...o.credentials,
    lazyConnect: true,
    commandTimeout: o.commandTimeoutMs,
    connectTimeout: o.commandTimeoutMs,
    ...(t.kind === 'sentinel' ? { reconnectOnError } : {}),
    ...(o.tls ? { tls: {} } : {}),
    ...o.ioredisOptions,
  };
  if (t.kind === 'cluster') {
    const cluster = new Cluster(t.nodes.map((url) => {
      const u = new URL(url);
      return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 6379) };
    }), {
      lazyConnect: true,
      redisOptions: common,
      scaleReads: 'master',
      maxRedirections: 16,
      retryDelayOnMoved: 0,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      clusterRetryStrategy: (times: number) => reconnectDelayMs(times),
    });
    return ioredisPortFor(cluster, o.onClientError, true);
  }
  const client = t.kind === 'sentinel'
    ? new Redis({
      ...common,
      sentinels: t.sentinels.map((s) => ({ host: s.host, port: s.port })),
      name: t.masterName,
      db: o.db,
      ...(o.sentinelPassword ? { sentinelPassword: o.sentinelPassword } : {}),
      sentinelRetryStrategy: (times: number) => reconnectDelayMs(times),
      retryStrategy: (times: number) => reconnectDelayMs(times),
      failoverDetector: true,
    })
    : new Redis(t.url, { ...common, db: o.db, retryStrategy: (times: number) => reconnectDelayMs(times) });
  return ioredisPortFor(client, o.onClientError, true);
}

/** Wraps an ioredis `Redis` or `Cluster`; `owned`: close() and destroy() end it. */
export function ioredisPortFor(client: Redis | Cluster, onClientError: (err: unknown) => void, owned: boolean): RedisPort {
  client.on('error', onClientError);
  const isCluster = 'nodes' in client && typeof (client as Cluster).nodes === 'function';
  const call = (c: Redis | Cluster, cmd: RedisCommand) => c.call(cmd[0]!, ...cmd.slice(1));
  let closed = false;
  return {
    topology: isCluster ? 'cluster' : (client as Redis).options.sentinels ? 'sentinel' : 'standalone',
    async connect() {
      const status = client.status;
      if (status === 'wait' || status === 'end') await client.connect();
    },
    send: (_key, cmd) => call(client, cmd),
    async sendOnOneConnection(_key, cmds) {
      if (!isCluster) {
        const out: unknown[] = [];
        for (const cmd of cmds) out.push(await call(client, cmd));
        return out;
      }
      // A cluster pipeline goes to the node of its keyed commands; keyless ones (WAIT) ride along on that connection.
      // (pipeline entries name a command method: lower case)
      const replies = (await client.pipeline(cmds.map(([name, ...args]) => [name!.toLowerCase(), ...args])).exec()) ?? [];
      return replies.map(([err, reply]) => {
        if (err) throw err;
        return reply;
      });
    },
    async masters() {
      const nodes: Redis[] = isCluster ? (client as Cluster).nodes('master') : [client as Redis];
      return nodes.map((n): RedisSender => (cmd) => call(n, cmd));
    },
    async close() {
      if (closed || !owned) return;
      closed = true;
      await client.quit().catch(() => client.disconnect());
    },
    destroy() {
      if (closed || !owned) return;
      closed = true;
      client.disconnect();
    },
  };
}
