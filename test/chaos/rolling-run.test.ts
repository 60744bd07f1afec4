/**
 * The rolling profile, bounded (`npm run chaos -- --profile rolling --users 20`): every node of three is
 * restarted in turn through cohort rollout's steps (drain, disable, SIGTERM handoff, start, ready, enable)
 * under load in sync mode. Asserts 0 logged-out users, 0 lost acknowledged updates, 0 client-visible errors,
 * a total time, and that nothing the run started is left behind.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { parseChaosArgs } from '../../chaos/options.js';
import { errorCount, formatReport, missedTargets } from '../../chaos/report.js';
import { Resources } from '../../chaos/resources.js';
import { runChaos } from '../../chaos/scenario.js';
import { NodeSet } from '../../chaos/nodes.js';

test('chaos, rolling profile (sync): a rolling restart of every node logs no one out, loses no acknowledged update, shows no error', { timeout: 150_000 }, async (t) => {
  const res = new Resources();
  const pids: number[] = [];
  const dirs: string[] = [];
  const origStart = NodeSet.prototype.start;
  NodeSet.prototype.start = async function (this: NodeSet, route: string, ms?: number) {
    dirs.push(this.dir);
    await origStart.call(this, route, ms);
    pids.push(...this.pids());
  };
  try {
    const r = await runChaos(parseChaosArgs(['--profile', 'rolling', '--users', '20']), res);
    t.diagnostic(formatReport(r));
    assert.deepEqual(r.rollout?.nodes.map((n) => n.node), ['n1', 'n2', 'n3'], 'every node restarted, in order');
    assert.ok(r.rollout!.totalMs > 0);
    assert.equal(r.faults.length, 3);
    assert.ok(r.faults.every((f) => f.kind === 'restart'));
    assert.ok(r.requests > 500, `${r.requests} requests`);
    assert.equal(r.sessionsLost, 0, 'logged-out users');
    assert.equal(r.updatesLost, 0, 'acknowledged updates lost');
    assert.equal(errorCount(r), 0, `client-visible errors ${JSON.stringify(r.errors)}`);
    assert.equal(r.verification.checked, r.sessions);
    assert.deepEqual(missedTargets(r), []);
  } finally {
    NodeSet.prototype.start = origStart;
    assert.deepEqual(await res.release(), []);
  }
  for (const pid of new Set(pids)) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} still alive`);
  for (const d of dirs) assert.equal(existsSync(d), false, `${d} left behind`);
});
