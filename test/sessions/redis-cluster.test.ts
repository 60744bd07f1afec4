/**
 * Redis Cluster (3 masters, real processes on loopback) with both clients:
 * the contract, every commit in one slot (no CROSSSLOT), listing over every
 * master, and a slot migrated while sessions are used (ASK, then MOVED).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisSessionManager, type RedisManagerOptions } from '../../src/sessions/redis/redis-manager.js';
import { sessionKey } from '../../src/sessions/redis/scripts.js';
import { runRedisContract } from './helpers/redis-contract.js';
import { cli, clusterNodeId, redisTopologyUnavailable, startRedisCluster, type RedisClusterInstance } from './helpers/redis-topology.js';

const skip = redisTopologyUnavailable();
let cluster: RedisClusterInstance | undefined;
const managers: RedisSessionManager[] = [];

before(async () => {
  if (!skip) cluster = await startRedisCluster();
});
after(async () => {
  for (const m of managers) await m.close();
  await cluster?.stop();
});

for (const client of ['node-redis', 'ioredis'] as const) {
  describe(`redis cluster, ${client}`, { skip }, () => {
    const prefix = `c-${client}:`;
    const node = async (route: string, extra: Partial<RedisManagerOptions> = {}) => {
      const m = new RedisSessionManager({ route, client, nodes: [cluster!.nodes[0]!], prefix, ...extra });
      await m.start();
      managers.push(m);
      return m;
    };

    test('the session contract', async () => {
      await runRedisContract(node);
      assert.equal((await node('r3')).getStats().topology, 'cluster');
    });

    test('sessions spread over every master; ids() and count() see them all', async () => {
      const a = await node('r1');
      const bases: string[] = [];
      for (let i = 0; i < 30; i++) {
        const s = a.create();
        s.attributes.i = i;
        await a.commit(s);
        bases.push(s.base);
      }
      const perMaster = await Promise.all(cluster!.masters.map(async (m) => Number(await cli(m.port, 'EVAL', `return #redis.call('KEYS', ARGV[1])`, '0', `${prefix}*`))));
      assert.ok(perMaster.every((n) => n > 0), `every master holds sessions: ${perMaster.join(', ')}`);
      assert.equal(perMaster.reduce((x, y) => x + y, 0), 30);
      assert.equal(await a.count(), 30);
      assert.equal((await a.ids()).length, 30);
      await a.clear();
      assert.equal(await a.count(), 0);
    });

    test('waitReplicas on a cluster without replicas: WAIT runs on the writing master and says 0, a clear error', async () => {
      const m = await node('w1', { waitReplicas: 1, waitTimeoutMs: 100 });
      const s = m.create();
      s.attributes.a = 1;
      await assert.rejects(m.commit(s), (e: { cause?: { code?: string; message?: string } }) => e.cause?.code === 'COHORT_REDIS_NOT_REPLICATED' && /0 of 1 replicas/.test(e.cause.message ?? ''));
      assert.equal((await m.load(s.id))?.rawAttributes.a, 1, 'the write itself reached its master');
    });

    test('a slot migrated mid-use (ASK while migrating, then MOVED): no session lost, no error', async () => {
      const a = await node('r1');
      const s = a.create();
      s.attributes.n = 0;
      await a.commit(s);
      const key = sessionKey(prefix, s.base);
      const slot = await cli(cluster!.masters[0]!.port, 'CLUSTER', 'KEYSLOT', key);
      const shards = await Promise.all(cluster!.masters.map(async (m) => ({ m, has: (await cli(m.port, 'CLUSTER', 'COUNTKEYSINSLOT', slot)) !== '0' })));
      const from = shards.find((x) => x.has)!.m;
      const to = cluster!.masters.find((m) => m !== from)!;
      const fromId = await clusterNodeId(from.port);
      const toId = await clusterNodeId(to.port);
      // Step by step as redis-cli --cluster reshard does it.
      await cli(to.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
      await cli(from.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
      await cli(from.port, 'MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', key);
      // The key now lives on `to` while the slot is still `from`'s: `from` answers ASK.
      for (let i = 1; i <= 5; i++) {
        const got = (await a.load(s.id))!;
        (got.attributes as { n: number }).n = i;
        await a.commit(got);
      }
      for (const m of cluster!.masters) await cli(m.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
      // The client's slot map is stale: `from` answers MOVED.
      for (let i = 6; i <= 10; i++) {
        const got = (await a.load(s.id))!;
        (got.attributes as { n: number }).n = i;
        await a.commit(got);
      }
      assert.equal((await a.load(s.id))?.rawAttributes.n, 10);
      assert.equal(await cli(to.port, 'CLUSTER', 'COUNTKEYSINSLOT', slot), '1', 'the session moved with its slot');
      assert.deepEqual(a.getStats().failures, {});
      await a.invalidate((await a.load(s.id))!);
    });
  });
}

if (skip) test(`redis cluster tests skipped: ${skip}`, { skip }, () => {});
