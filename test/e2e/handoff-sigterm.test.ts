/**
 * SIGTERM on a real `cohort node` child process: before it exits it hands the
 * sessions it owns over to the other nodes, which own them afterwards (their
 * metrics say so) and serve the users' next requests with the count intact.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, CookieJar, DEMO_APP, waitFor } from '../helpers/cluster-procs.js';

const USERS = 20;

interface Counter {
  readonly node: string;
  readonly count: number;
}

async function counter(url: string, jar: CookieJar): Promise<Counter> {
  const r = await fetch(`${url}/examples/counter`, { headers: { accept: 'application/json', ...(jar.cookie ? { cookie: jar.cookie } : {}) }, signal: AbortSignal.timeout(5_000) });
  assert.equal(r.status, 200);
  jar.update(r.headers.getSetCookie());
  return (await r.json()) as Counter;
}

/** Sum of a metric's samples, from a node's /.cohort/metrics. */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/.cohort/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

test('SIGTERM on a cohort node: it hands its sessions over before leaving; the survivors own them and the counts continue', { timeout: 120_000 }, async (t) => {
  const cluster = new TestCluster();
  try {
    await cluster.define(['tc1', 'tc2', 'tc3']);
    const [tc1, tc2, tc3] = await Promise.all([cluster.start('tc1', DEMO_APP, ['--log-level', 'info']), cluster.start('tc2'), cluster.start('tc3')]);
    const jars = Array.from({ length: USERS }, () => new CookieJar());
    for (const jar of jars) {
      for (let i = 1; i <= 3; i++) assert.equal((await counter(tc1.url, jar)).count, i);
      assert.equal(jar.route, 'tc1');
    }

    const exited = new Promise<number | null>((r) => tc1.child.once('exit', (code) => r(code)));
    const t0 = performance.now();
    process.kill(tc1.child.pid!, 'SIGTERM');
    assert.equal(await exited, 0, `tc1 exits 0 (stderr: ${tc1.stderr.slice(-1000)})`);
    const exitMs = performance.now() - t0;

    // Its log names the handoff: every session handed, none failed.
    const lines = tc1.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('handed '));
    assert.ok(summary, `a handoff summary in tc1's log: ${tc1.stderr.slice(-2000)}`);
    assert.equal(summary.handed, USERS);
    assert.equal(summary.failed, 0);
    t.diagnostic(`tc1: ${String(summary.msg)}; SIGTERM to exit ${Math.round(exitMs)} ms`);

    // The survivors own the sessions now (before any user comes back).
    await waitFor(async () => (await metric(tc2.url, 'cohort_node_sessions_owned')) + (await metric(tc3.url, 'cohort_node_sessions_owned')) === USERS, 10_000, 'tc2 + tc3 own every session');
    assert.equal((await metric(tc2.url, 'cohort_node_handoff_received_total')) + (await metric(tc3.url, 'cohort_node_handoff_received_total')), USERS);
    assert.equal((await metric(tc2.url, 'cohort_node_takeovers_total')) + (await metric(tc3.url, 'cohort_node_takeovers_total')), 0, 'no take-over was needed');

    // Each user's next request, at either survivor: the count continues and the cookie names a survivor.
    for (const [i, jar] of jars.entries()) {
      const at = i % 2 === 0 ? tc2 : tc3;
      const c = await counter(at.url, jar);
      assert.equal(c.count, 4, `user ${i}`);
      assert.equal(c.node, at.route);
      assert.equal(jar.route, at.route, 'the cookie names the node that answered');
    }
  } finally {
    await cluster.stopAll();
  }
});
