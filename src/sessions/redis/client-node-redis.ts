/**
 * RedisPort over node-redis v5 (the `redis` package): createClient,
 * createCluster or createSentinel by topology. The package is an optional
 * peer dependency, imported only when this adapter is chosen.
 */
import { RedisError, RedisErrorCode } from './errors.js';
import { reconnectDelayMs, type RedisCommand, type RedisPort, type RedisPortOptions, type RedisSender } from './port.js';

type NodeRedis = typeof import('redis');

async function loadNodeRedis(): Promise<NodeRedis> {
  try {
    return await import('redis');
  } catch (err) {
    throw new RedisError(RedisErrorCode.ClientMissing, 'sessions.redis.client is "node-redis" but the "redis" package (v5) is not installed: npm install redis@5 (or set client: ioredis)', { cause: err });
  }
}

interface Sendable {
  sendCommand(args: string[], options?: { timeout?: number }): Promise<unknown>;
}

export async function nodeRedisPort(o: RedisPortOptions): Promise<RedisPort> {
  const redis = await loadNodeRedis();
  const t = o.topology;
  const timeout = o.commandTimeoutMs;
  const socket = {
    connectTimeout: o.commandTimeoutMs,
    reconnectStrategy: (retries: number) => reconnectDelayMs(retries + 1),
    ...(o.tls ? { tls: true as const } : {}),
  };
  const auth = { ...o.credentials };
  const opts = { timeout };
  let closed = false;

  if (t.kind === 'cluster') {
    const cluster = redis.createCluster({
      rootNodes: t.nodes.map((url) => ({ url })),
      defaults: { ...auth, socket },
      useReplicas: false,
      maxCommandRedirections: 16,
    });
    cluster.on('error', o.onClientError);
    const one = (c: Sendable): RedisSender => (cmd) => c.sendCommand([...cmd], opts);
    return {
      topology: 'cluster',
      async connect() { await cluster.connect(); },
      send: (key, cmd) => cluster.sendCommand(key, false, [...cmd], opts),
      // Every command with this key goes to the same master client (one connection per master).
      async sendOnOneConnection(key, cmds) {
        const out: unknown[] = [];
        for (const cmd of cmds) out.push(await cluster.sendCommand(key, false, [...cmd], opts));
        return out;
      },
      async masters() {
        return Promise.all(cluster.masters.map(async (m) => one((await cluster.nodeClient(m)) as unknown as Sendable)));
      },
      async close() { if (!closed) { closed = true; await cluster.close().catch(() => cluster.destroy()); } },
      destroy() { if (!closed) { closed = true; cluster.destroy(); } },
    };
  }

  if (t.kind === 'sentinel') {
    const sentinel = redis.createSentinel({
      name: t.masterName,
      sentinelRootNodes: t.sentinels.map((s) => ({ host: s.host, port: s.port })),
      nodeClientOptions: { ...auth, database: o.db, socket },
      sentinelClientOptions: { ...(o.sentinelPassword ? { password: o.sentinelPassword } : {}), socket },
      masterPoolSize: 1,
      maxCommandRediscovers: 16,
    });
    sentinel.on('error', o.onClientError);
    const send: RedisSender = (cmd) => sentinel.sendCommand(false, [...cmd], opts);
    return {
      topology: 'sentinel',
      async connect() { await sentinel.connect(); },
      send: (_key, cmd) => send(cmd),
      sendOnOneConnection: (_key, cmds) => sentinel.use(async (c) => {
        const out: unknown[] = [];
        // A lease client's sendCommand takes isReadonly first.
        for (const cmd of cmds) out.push(await c.sendCommand(false, [...cmd], opts));
        return out;
      }),
      async masters() { return [send]; },
      async close() { if (!closed) { closed = true; await sentinel.close().catch(() => sentinel.destroy()); } },
      destroy() { if (!closed) { closed = true; void sentinel.destroy().catch(() => {}); } },
    };
  }

  const client = redis.createClient({ url: t.url, ...auth, ...(o.db ? { database: o.db } : {}), socket });
  client.on('error', o.onClientError);
  const send: RedisSender = (cmd: RedisCommand) => client.sendCommand([...cmd], opts);
  return {
    topology: 'standalone',
    async connect() { await client.connect(); },
    send: (_key, cmd) => send(cmd),
    async sendOnOneConnection(_key, cmds) {
      const out: unknown[] = [];
      for (const cmd of cmds) out.push(await send(cmd));
      return out;
    },
    async masters() { return [send]; },
    async close() { if (!closed) { closed = true; await client.close().catch(() => client.destroy()); } },
    destroy() { if (!closed) { closed = true; client.destroy(); } },
  };
}
