/**
 * `cohort node` in Redis mode: no cluster section and no cluster secret
 * (no channel is started), the same session settings as the replicated
 * modes (max inactive, cookie), one client per node (node-redis and
 * ioredis share the data), the Redis metrics; and the node command's
 * Redis flags.
 */
import { after, before, test } from 'node:test';
import type { RedisConfig } from '../../src/sessions/redis/config.js';
import assert from 'node:assert/strict';
import { NodeRuntime } from '../../src/node/runtime.js';
import { parseNodeConfig } from '../../src/node/config.js';
import { resolveNodeConfig } from '../../src/cli/node-command.js';
import { silentLogger } from '../../src/util/logger.js';
import { BIN, DEMO_APP } from '../helpers/cluster-procs.js';
import { spawnNode } from './helpers/node-process.js';
import { sessionKey } from '../../src/sessions/redis/scripts.js';
import { cli } from './helpers/redis-topology.js';
import { redisUnavailableReason, startRedis, type RedisInstance } from './helpers/redis-server.js';
import { cookieFrom, get } from './helpers/http.js';

const skip = redisUnavailableReason();
let redis: RedisInstance | undefined;
const nodes: NodeRuntime[] = [];
before(async () => {
  if (!skip) redis = await startRedis();
});
after(async () => {
  for (const n of nodes) await n.close();
  await redis?.stop();
});

test('node flags: --redis-cluster / --redis-sentinel + --redis-master / --redis-client / --redis-password-file / --redis-wait-replicas', () => {
  const c = resolveNodeConfig({ route: 'n1', app: DEMO_APP, redisCluster: ['10.0.0.1:7000', '10.0.0.2:7000'], redisClient: 'ioredis', redisPasswordFile: '/run/secrets/redis', redisWaitReplicas: '1' });
  assert.equal(c.sessions.store, 'redis');
  const redisOf = (x: { sessions: object }) => (x.sessions as { redis?: RedisConfig }).redis;
  const r = redisOf(c)!;
  assert.deepEqual([r.nodes, r.url, r.client, r.passwordFile, r.waitReplicas], [['10.0.0.1:7000', '10.0.0.2:7000'], undefined, 'ioredis', '/run/secrets/redis', 1]);
  const s = resolveNodeConfig({ route: 'n1', app: DEMO_APP, redisSentinel: ['10.0.0.1:26379'], redisMaster: 'mymaster' });
  assert.deepEqual([redisOf(s)?.sentinels, redisOf(s)?.masterName, redisOf(s)?.client], [['10.0.0.1:26379'], 'mymaster', 'node-redis']);
  assert.equal(redisOf(resolveNodeConfig({ route: 'n1', app: DEMO_APP, redis: 'redis://h:1' }))?.url, 'redis://h:1');
  assert.throws(() => resolveNodeConfig({ route: 'n1', app: DEMO_APP, redisSentinel: ['h:1'] }), /node\.sessions\.redis\.masterName: expected the master name/);
  assert.throws(() => parseNodeConfig({ route: 'n1', app: DEMO_APP, sessions: { store: 'redis', redis: { url: 'redis://a:1', nodes: ['b:2'] } } }), /node\.sessions\.redis: expected one of url, nodes/);
});

test('Redis mode: no cluster channel and no secret; max inactive and cookie settings honoured; node-redis and ioredis nodes share the sessions; metrics', { skip }, async () => {
  const start = async (route: string, client: 'node-redis' | 'ioredis') => {
    const cfg = parseNodeConfig({
      route, app: DEMO_APP, listen: '127.0.0.1:0', shutdownTimeout: 1, loglevel: 'silent',
      sessions: { store: 'redis', redis: { url: redis!.url, client, prefix: 'node:' }, replication: { maxInactiveMs: 90_000 }, cookie: { name: 'SID' } },
    });
    const n = new NodeRuntime(cfg, silentLogger(), undefined, { cluster: { env: {} } });
    nodes.push(n);
    await n.start();
    return n;
  };
  const a = await start('n1', 'node-redis');
  const b = await start('n2', 'ioredis');
  assert.equal(a.cluster, undefined, 'no cluster channel in Redis mode without a cluster section');
  const json = { accept: 'application/json' };
  const r1 = await get(`${a.httpUrl}/examples/counter`, undefined, json);
  const sid = cookieFrom(r1.setCookie, 'SID');
  assert.ok(sid, `cookie named SID: ${r1.setCookie.join(' | ')}`);
  assert.match(sid, /\.n1$/);
  assert.equal((JSON.parse(r1.body) as { count: number }).count, 1);
  const r2 = await get(`${b.httpUrl}/examples/counter`, sid, json);
  assert.equal((JSON.parse(r2.body) as { count: number }).count, 2, 'the ioredis node continues the node-redis node\'s session');
  const r3 = await get(`${a.httpUrl}/examples/counter`, cookieFrom(r2.setCookie, 'SID') ?? sid, json);
  assert.equal((JSON.parse(r3.body) as { count: number }).count, 3);
  const base = sid.slice('SID='.length).split('.')[0]!;
  const ttl = Number(await cli(redis!.port, 'PTTL', sessionKey('node:', base)));
  assert.ok(ttl > 80_000 && ttl <= 90_000, `sessions.replication.maxInactiveMs applies in Redis: PTTL ${ttl}`);
  const metrics = await (await fetch(`${b.httpUrl}/.cohort/metrics`)).text();
  assert.match(metrics, /cohort_node_redis_operations_total\{node="n2"\} [1-9]/);
  assert.match(metrics, /cohort_node_redis_failures_total/);
  const health = (await (await fetch(`${a.httpUrl}/.cohort/health`)).json()) as { ready: boolean };
  assert.equal(health.ready, true);
});

test('the real command: cohort node --redis URL --redis-client ioredis starts without a cluster secret and serves sessions', { skip }, async () => {
  const env = { ...process.env };
  delete env.COHORT_CLUSTER_SECRET;
  const n = await spawnNode(process.execPath, [BIN, 'node', '--route', 'p1', '--app', DEMO_APP, '--listen', '127.0.0.1:0', '--redis', redis!.url, '--redis-client', 'ioredis', '--log-level', 'warn'], {
    route: 'p1', env, readyPattern: /ready on (http:\/\/[\d.:]+)/, timeoutMs: 20_000,
  });
  try {
    assert.ok(n.output.some((l) => /sessions in Redis, no cluster channel/.test(l)), n.output.join('\n'));
    const json = { accept: 'application/json' };
    const r1 = await get(`${n.url}/examples/counter`, undefined, json);
    const c = cookieFrom(r1.setCookie)!;
    assert.equal((JSON.parse((await get(`${n.url}/examples/counter`, c, json)).body) as { count: number }).count, 2);
  } finally {
    await n.kill('SIGTERM');
  }
});

if (skip) test(`redis node tests skipped: ${skip}`, { skip }, () => {});
