/**
 * Redis Cluster with a replica per master (6 real processes): WAIT on the
 * writing master's connection sees its replica; a master SIGKILLed while
 * virtual users increment their counters — the cluster promotes its
 * replica, both clients follow, and with `waitReplicas: 1` no acknowledged
 * write is lost. Until the killed master rejoins (restarted, as a replica of
 * its successor) the promoted master has no replica: its commits fail with
 * COHORT_REDIS_NOT_REPLICATED, counted, and the users retry.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisSessionManager } from '../../src/sessions/redis/redis-manager.js';
import { sessionKey } from '../../src/sessions/redis/scripts.js';
import { cli, redisTopologyUnavailable, startRedisCluster, waitFor, type RedisClusterInstance } from './helpers/redis-topology.js';

const skip = redisTopologyUnavailable();
const managers: RedisSessionManager[] = [];
const clusters: RedisClusterInstance[] = [];
after(async () => {
  for (const m of managers) m.destroy();
  for (const c of clusters) await c.stop();
});

const USERS = 12;
const AFTER_KILL = 10;
const RUN_BOUND_MS = 60_000;

for (const client of ['node-redis', 'ioredis'] as const) {
  describe(`redis cluster failover, ${client}`, { skip }, () => {
    test('a master SIGKILLed mid-run: its replica takes over, sessions continue, no acknowledged write lost (waitReplicas: 1)', async (t) => {
      const cluster = await startRedisCluster(1);
      clusters.push(cluster);
      const prefix = `cf-${client}:`;
      const m = new RedisSessionManager({ route: 'r1', client, nodes: [...cluster.nodes], prefix, waitReplicas: 1, waitTimeoutMs: 500, commandTimeoutMs: 2_000, retryWindowMs: 20_000 });
      managers.push(m);
      await m.start();
      const ids: string[] = [];
      const acked = new Map<string, number>();
      for (let u = 0; u < USERS; u++) {
        const s = m.create();
        s.attributes.n = 0;
        await m.commit(s); // WAIT 1 saw the master's replica
        ids.push(s.id);
        acked.set(s.id, 0);
      }
      // The victim: a master holding the first user's session.
      const slot = await cli(cluster.masters[0]!.port, 'CLUSTER', 'KEYSLOT', sessionKey(prefix, ids[0]!.split('.')[0]!));
      let victim: (typeof cluster.masters)[number] | undefined;
      for (const p of cluster.masters) {
        const info = await cli(p.port, 'INFO', 'replication');
        if (info.includes('role:master') && (await cli(p.port, 'CLUSTER', 'COUNTKEYSINSLOT', slot)) !== '0') victim = p;
      }
      assert.ok(victim, 'found the master of the first session');
      let killed = false;
      let afterKill = 0;
      let errors = 0;
      const started = Date.now();
      const user = async (id: string) => {
        let mine = 0;
        while (mine < AFTER_KILL && Date.now() - started < RUN_BOUND_MS) {
          try {
            const s = (await m.load(id))!;
            assert.ok(s, `session ${id} exists`);
            const n = (s.rawAttributes.n as number) + 1;
            s.attributes.n = n;
            await m.commit(s);
            acked.set(id, n);
            if (killed) mine++;
          } catch (err) {
            if ((err as { code?: string }).code !== 'COHORT_SESSION_STORE_FAILED') throw err;
            errors++;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        if (killed) afterKill += mine;
      };
      const users = Promise.all(ids.map(user));
      await new Promise((r) => setTimeout(r, 300));
      const victimPort = victim.port;
      await victim.kill();
      killed = true;
      const alive = cluster.masters.find((p) => p !== victim)!;
      // The cluster marks the master failed (cluster-node-timeout 2 s) and promotes its replica.
      await waitFor('the replica promoted', 30_000, async () => {
        // CLUSTER NODES: id addr flags master-id ping pong epoch link slot-ranges...; the dead master keeps no slots.
        const lines = (await cli(alive.port, 'CLUSTER', 'NODES')).split('\n').map((l) => l.split(' '));
        const dead = lines.find((f) => (f[1] ?? '').startsWith(`127.0.0.1:${victimPort}@`));
        return dead !== undefined && /(^|,)fail(,|$)/.test(dead[2] ?? '') && dead.length <= 8 && (await cli(alive.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok');
      });
      await cluster.rejoin(victim);
      await users;
      assert.equal(afterKill, USERS * AFTER_KILL, 'every user went on after the failover');
      for (const id of ids) assert.equal((await m.load(id))?.rawAttributes.n, acked.get(id), `session ${id}: its last acknowledged value`);
      const stats = m.getStats();
      t.diagnostic(`users saw ${errors} errors; stats ${JSON.stringify(stats)}`);
      assert.equal(Object.values(stats.failures).reduce((x, y) => x + y, 0), errors, 'every error the users saw is counted');
      assert.ok(Object.values(stats.retries).reduce((x, y) => x + y, 0) + errors > 0, 'the failover was noticed');
    });
  });
}

if (skip) test(`redis cluster failover tests skipped: ${skip}`, { skip }, () => {});
