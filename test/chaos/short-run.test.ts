/**
 * The CI chaos run (`npm run chaos -- --profile short`): 40 users through a
 * real balancer process to three real `cohort node` processes in sync mode;
 * one node SIGKILLed and restarted, another SIGSTOPped and resumed. Asserts
 * the targets and that nothing the run started is left behind.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { parseChaosArgs } from '../../chaos/options.js';
import { errorCount, formatReport, missedTargets, FAILOVER_GAP_TARGET_MS } from '../../chaos/report.js';
import { Resources } from '../../chaos/resources.js';
import { runChaos } from '../../chaos/scenario.js';
import { NodeSet } from '../../chaos/nodes.js';

test('chaos, short profile (sync): no session or acknowledged update lost, no error, failover gap within target, no heap growth', { timeout: 90_000 }, async (t) => {
  const res = new Resources();
  const pids: number[] = [];
  const dirs: string[] = [];
  // Remember what the run starts, to check that it is all gone afterwards.
  const origStart = NodeSet.prototype.start;
  NodeSet.prototype.start = async function (this: NodeSet, route: string, ms?: number) {
    dirs.push(this.dir);
    await origStart.call(this, route, ms);
    pids.push(...this.pids());
  };
  let report = '';
  try {
    const r = await runChaos(parseChaosArgs(['--profile', 'short']), res);
    report = formatReport(r);
    t.diagnostic(report);
    assert.ok(r.faults.length === 2, `${r.faults.length} faults ran`);
    assert.ok(r.requests > 1000, `${r.requests} requests`);
    assert.equal(r.sessionsLost, 0, 'sessions lost');
    assert.equal(r.updatesLost, 0, 'acknowledged updates lost');
    assert.equal(errorCount(r), 0, `client-visible errors ${JSON.stringify(r.errors)}`);
    assert.ok(r.failoverGapMs <= FAILOVER_GAP_TARGET_MS, `failover gap (first request served) ${r.failoverGapMs} ms`);
    assert.ok(r.failoverGapAllMs <= FAILOVER_GAP_TARGET_MS, `every user of the killed node served again after ${r.failoverGapAllMs} ms`);
    assert.ok(r.failoverGapMs <= r.failoverGapAllMs, 'the first user is served no later than the last');
    assert.deepEqual(missedTargets(r), []);
  } finally {
    NodeSet.prototype.start = origStart;
    assert.deepEqual(await res.release(), []);
  }
  for (const pid of new Set(pids)) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} still alive`);
  for (const d of dirs) assert.equal(existsSync(d), false, `${d} left behind`);
});
