/**
 * Three real node processes, 50 virtual users each incrementing a session
 * counter through a real balancer; the owner of half of them is SIGKILLed
 * mid-run. Every counter must continue on another node. In sync mode no
 * acknowledged increment may be lost; in async mode the loss is reported.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from 'undici';
import { parseBalancerConfig } from '../../src/config/load.js';
import { BalancerServer } from '../../src/proxy/balancer-server.js';
import { TestCluster, CookieJar } from '../helpers/cluster-procs.js';

const USERS = 50;
const REQUESTS_PER_USER = 30;

interface Outcome {
  readonly acknowledged: number;
  readonly lost: number;
  readonly errors: number;
  readonly usersOnVictim: number;
  readonly continued: number;
}

async function run(consistency: 'sync' | 'async'): Promise<Outcome> {
  const cluster = new TestCluster(['--consistency', consistency]);
  let lb: BalancerServer | undefined;
  let pool: Pool | undefined;
  try {
    await cluster.define(['tc1', 'tc2', 'tc3']);
    await Promise.all(['tc1', 'tc2', 'tc3'].map((r) => cluster.start(r)));
    lb = new BalancerServer(parseBalancerConfig({
      listen: '127.0.0.1:0',
      accesslog: false,
      balancers: [{
        name: 'tccluster',
        maxattempts: 2,
        // tc1 gets half of the new sessions.
        members: cluster.specs.map((s) => ({ route: s.route, url: `http://127.0.0.1:${s.httpPort}`, retry: 5, loadfactor: s.route === 'tc1' ? 2 : 1 })),
        hcheck: { path: '/.cohort/health', interval: 0.5, timeout: 1, rise: 1, fall: 2 },
      }],
      mounts: [{ path: '/examples', balancer: 'tccluster' }],
    }));
    const [addr] = await lb.start();
    pool = new Pool(addr!.url, { connections: USERS });
    const jars = Array.from({ length: USERS }, () => new CookieJar());
    const lastAck = new Array<number>(USERS).fill(0);
    let lost = 0;
    let errors = 0;
    let acknowledged = 0;
    let killed = false;
    let usersOnVictim = 0;
    const victimUsers = new Set<number>();
    const continuedUsers = new Set<number>();
    const deadline = Date.now() + 45_000;
    const user = async (u: number) => {
      for (let i = 0; i < REQUESTS_PER_USER && Date.now() < deadline; i++) {
        if (u === 0 && i === 10 && !killed) {
          // Mid-run: the owner of half of the users dies.
          killed = true;
          for (let k = 0; k < USERS; k++) if (jars[k]!.route === 'tc1') victimUsers.add(k);
          usersOnVictim = victimUsers.size;
          await cluster.kill('tc1');
        }
        const jar = jars[u]!;
        try {
          const r = await pool!.request({ path: '/examples/counter', method: 'GET', headers: { accept: 'application/json', ...(jar.cookie ? { cookie: jar.cookie } : {}) } });
          const text = await r.body.text();
          if (r.statusCode !== 200) {
            errors++;
            continue;
          }
          jar.update(r.headers['set-cookie'] as never);
          const body = JSON.parse(text) as { count: number; node: string };
          if (body.count <= lastAck[u]!) lost += lastAck[u]! - body.count + 1;
          if (killed && victimUsers.has(u) && body.node !== 'tc1' && body.count > 1) continuedUsers.add(u);
          lastAck[u] = body.count;
          acknowledged++;
        } catch {
          errors++;
        }
      }
    };
    await Promise.all(jars.map((_, u) => user(u)));
    return { acknowledged, lost, errors, usersOnVictim, continued: continuedUsers.size };
  } finally {
    await pool?.close();
    await lb?.destroy();
    await cluster.stopAll();
  }
}

test('sync mode: SIGKILL the owner of half the users mid-run: every counter continues, no acknowledged increment lost', { timeout: 120_000 }, async (t) => {
  const o = await run('sync');
  t.diagnostic(`sync: ${o.acknowledged} acknowledged increments, ${o.lost} lost, ${o.errors} client errors, ${o.usersOnVictim} users on the killed node, ${o.continued} continued elsewhere`);
  assert.ok(o.usersOnVictim >= USERS / 3, `tc1 owned ${o.usersOnVictim} users`);
  assert.equal(o.continued, o.usersOnVictim, 'every user of the killed node continued on another node');
  assert.equal(o.lost, 0, 'no acknowledged increment lost in sync mode');
  assert.equal(o.errors, 0, 'no client-visible error');
});

test('async mode: the same run reports how many acknowledged increments were lost', { timeout: 120_000 }, async (t) => {
  const o = await run('async');
  t.diagnostic(`async: ${o.acknowledged} acknowledged increments, ${o.lost} lost, ${o.errors} client errors, ${o.usersOnVictim} users on the killed node, ${o.continued} continued elsewhere`);
  assert.equal(o.continued, o.usersOnVictim, 'every user of the killed node continued on another node');
  assert.equal(o.errors, 0, 'no client-visible error');
});
