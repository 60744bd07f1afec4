/**
 * Sentinel (a master, a replica, three redis-sentinels; real processes on
 * loopback) with both clients: the contract, then the master SIGKILLed
 * while virtual users keep incrementing their counters. With
 * `waitReplicas: 1` no acknowledged increment is lost: the promoted replica
 * has every write WAIT confirmed. The sessions continue on the new master.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisSessionManager, type RedisManagerOptions } from '../../src/sessions/redis/redis-manager.js';
import { runRedisContract } from './helpers/redis-contract.js';
import { cli, redisTopologyUnavailable, startSentinels, type SentinelInstance } from './helpers/redis-topology.js';

const skip = redisTopologyUnavailable(true);
const managers: RedisSessionManager[] = [];
const topologies: SentinelInstance[] = [];

after(async () => {
  for (const m of managers) m.destroy();
  for (const t of topologies) await t.stop();
});

/** Users, increments each after the kill, and a bound on the whole run (ms). */
const USERS = 8;
const AFTER_KILL = 15;
const RUN_BOUND_MS = 60_000;

for (const client of ['node-redis', 'ioredis'] as const) {
  describe(`redis sentinel, ${client}`, { skip }, () => {
    let topo: SentinelInstance;
    const node = async (route: string, extra: Partial<RedisManagerOptions> = {}) => {
      topo ??= await startSentinels();
      if (!topologies.includes(topo)) topologies.push(topo);
      const m = new RedisSessionManager({ route, client, sentinels: [...topo.sentinels], masterName: topo.masterName, prefix: `s-${client}:`, ...extra });
      await m.start();
      managers.push(m);
      return m;
    };

    test('the session contract', async () => {
      await runRedisContract(node);
      assert.equal((await node('r3')).getStats().topology, 'sentinel');
    });

    test('master SIGKILLed mid-run: the client follows the failover; with waitReplicas: 1 no acknowledged write is lost', async (t) => {
      const a = await node('r1', { waitReplicas: 1, waitTimeoutMs: 500, commandTimeoutMs: 2_000, retryWindowMs: 15_000 });
      const ids: string[] = [];
      const acked = new Map<string, number>();
      for (let u = 0; u < USERS; u++) {
        const s = a.create();
        s.attributes.n = 0;
        await a.commit(s);
        ids.push(s.id);
        acked.set(s.id, 0);
      }
      let killed = false;
      let afterKill = 0;
      let errors = 0;
      const started = Date.now();
      const user = async (id: string) => {
        let mine = 0;
        while (mine < AFTER_KILL && Date.now() - started < RUN_BOUND_MS) {
          try {
            const s = await a.load(id);
            if (!s) assert.fail(`session ${id} exists (${killed ? 'after' : 'before'} the kill)\n${await topo.whereIs(`s-${client}:{${id.split('.')[0]}}`)}`);
            const n = (s.rawAttributes.n as number) + 1;
            s.attributes.n = n;
            await a.commit(s);
            // acknowledged: the user saw this value
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
      const { oldPort, newPort } = await topo.killMasterAndRejoin();
      killed = true;
      await users;
      assert.notEqual(oldPort, newPort);
      assert.equal(afterKill, USERS * AFTER_KILL, 'every user went on after the failover');
      for (const id of ids) {
        const s = await a.load(id);
        assert.equal(s?.rawAttributes.n, acked.get(id), `session ${id}: the last acknowledged value`);
        // The client follows the failover: the promoted master holds it (a failover can also go unseen by the
        // app — node-redis queues commands while it reconnects — so counted retries prove nothing either way).
        const key = `s-${client}:{${id.split('.')[0]}}`;
        assert.equal(await cli(newPort, 'HGET', key, 'a:n'), String(acked.get(id)), `${key} on the promoted master ${newPort}`);
      }
      const stats = a.getStats();
      const failed = Object.values(stats.failures).reduce((x, y) => x + y, 0);
      t.diagnostic(`failover ${oldPort} -> ${newPort}; users saw ${errors} errors; stats ${JSON.stringify(stats)}`);
      assert.equal(failed, errors, 'every error the users saw is counted');
    });
  });
}

if (skip) test(`redis sentinel tests skipped: ${skip}`, { skip }, () => {});
