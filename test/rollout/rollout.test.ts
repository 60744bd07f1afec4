import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StepKind, planRollout } from '../../src/rollout/plan.js';
import { runRollout, type BalancersPort, type NodesPort } from '../../src/rollout/rollout.js';
import { parseNodes } from '../../src/cli/rollout-command.js';

test('the plan takes one node at a time out, back in, then the next', () => {
  const steps = planRollout(['n1', 'n2'], { drainWaitMs: 500, disable: true, settleMs: 1000 });
  assert.deepEqual(steps.map((s) => `${s.kind} ${s.node}`), [
    'drain n1', 'wait n1', 'disable n1', 'stop n1', 'start n1', 'ready n1', 'enable n1', 'usable n1', 'settle n1',
    'drain n2', 'wait n2', 'disable n2', 'stop n2', 'start n2', 'ready n2', 'enable n2', 'usable n2',
  ]);
  assert.deepEqual(planRollout(['n1'], { drainWaitMs: 0, disable: false, settleMs: 0 }).map((s) => s.kind), [StepKind.Drain, StepKind.Stop, StepKind.Start, StepKind.Ready, StepKind.Enable, StepKind.Usable]);
  assert.throws(() => planRollout(['n1', 'n1'], { drainWaitMs: 0, disable: true, settleMs: 0 }), /listed twice/);
});

/** A fake cluster: nodes that take `startMs` (virtual) to be ready; a log of every call in order. */
function fakeCluster(opts: { neverReady?: string; notReadyAtStart?: string; crashAfterStart?: { started: string; crashes: string } } = {}) {
  let t = 0;
  const calls: string[] = [];
  const up = new Map<string, number>([['n1', 0], ['n2', 0], ['n3', 0]]);
  const flags = new Map<string, { drain: boolean; disabled: boolean }>();
  if (opts.notReadyAtStart) up.delete(opts.notReadyAtStart);
  const balancers: BalancersPort = {
    setFlags: async (route, f) => {
      calls.push(`flags ${route} drain=${f.drain} disabled=${f.disabled}`);
      flags.set(route, { ...f });
    },
    usable: async (route) => up.has(route) && !(flags.get(route)?.disabled ?? false),
  };
  const nodes: NodesPort = {
    stop: async (route) => {
      // Only one node is ever out, and it was disabled at the balancers first.
      assert.equal([...up.keys()].length, 3, 'every other node is up when one stops');
      assert.equal(flags.get(route)?.disabled, true, 'disabled before stopped');
      calls.push(`stop ${route}`);
      up.delete(route);
    },
    start: async (route) => {
      calls.push(`start ${route}`);
      if (route !== opts.neverReady) up.set(route, t + 300);
      if (opts.crashAfterStart?.started === route) up.delete(opts.crashAfterStart.crashes);
    },
    ready: async (route) => up.has(route) && t >= up.get(route)!,
  };
  return { calls, balancers, nodes, now: () => t, sleep: async (ms: number) => void (t += ms) };
}

test('runRollout restarts every node in order, never two out at once, and reports per-node times', async () => {
  const c = fakeCluster();
  const r = await runRollout(planRollout(['n1', 'n2', 'n3'], { drainWaitMs: 0, disable: true, settleMs: 1000 }), c.balancers, c.nodes, { readyTimeoutMs: 5000, pollMs: 100, now: c.now, sleep: c.sleep });
  assert.deepEqual(c.calls.slice(0, 5), ['flags n1 drain=true disabled=false', 'flags n1 drain=true disabled=true', 'stop n1', 'start n1', 'flags n1 drain=false disabled=false']);
  assert.deepEqual(c.calls.filter((x) => x.startsWith('stop')), ['stop n1', 'stop n2', 'stop n3']);
  assert.deepEqual(r.nodes.map((n) => n.node), ['n1', 'n2', 'n3']);
  assert.equal(r.nodes[0]!.readyMs, 300);
  assert.equal(r.totalMs, 3 * 300 + 2 * 1000);
});

test('runRollout refuses to start on a cluster that is already short of a node, and stops at a node that never gets ready', async () => {
  const short = fakeCluster({ notReadyAtStart: 'n2' });
  await assert.rejects(runRollout(planRollout(['n1', 'n2', 'n3'], { drainWaitMs: 0, disable: true, settleMs: 0 }), short.balancers, short.nodes, { readyTimeoutMs: 1000, now: short.now, sleep: short.sleep }), { code: 'COHORT_ROLLOUT_NOT_READY', message: /node n2 is not ready/ });
  assert.deepEqual(short.calls, [], 'nothing touched');
  const stuck = fakeCluster({ neverReady: 'n2' });
  await assert.rejects(runRollout(planRollout(['n1', 'n2', 'n3'], { drainWaitMs: 0, disable: true, settleMs: 0 }), stuck.balancers, stuck.nodes, { readyTimeoutMs: 1000, now: stuck.now, sleep: stuck.sleep }), { code: 'COHORT_ROLLOUT_NOT_READY', message: /n2 ready after restart not within 1000 ms/ });
  assert.ok(!stuck.calls.includes('stop n3'), 'the next node is never touched');
});

test('runRollout does not take a node out while another one is down (it crashed during the rollout)', async () => {
  const c = fakeCluster({ crashAfterStart: { started: 'n1', crashes: 'n3' } });
  await assert.rejects(runRollout(planRollout(['n1', 'n2', 'n3'], { drainWaitMs: 0, disable: true, settleMs: 0 }), c.balancers, c.nodes, { readyTimeoutMs: 1000, now: c.now, sleep: c.sleep }), { code: 'COHORT_ROLLOUT_NOT_READY', message: /node n3 ready and usable before n2 is taken out/ });
  assert.ok(!c.calls.some((x) => x.startsWith('flags n2')), 'n2 never drained');
});

test('--node ROUTE=URL is parsed in order; bad entries are usage errors', () => {
  assert.deepEqual([...parseNodes(['tc2=http://10.0.0.12:8080', 'tc1=http://10.0.0.11:8080'])], [['tc2', 'http://10.0.0.12:8080'], ['tc1', 'http://10.0.0.11:8080']]);
  assert.throws(() => parseNodes(['tc1']), { code: 'COHORT_ROLLOUT_USAGE' });
  assert.throws(() => parseNodes(['tc1=nope']), { code: 'COHORT_ROLLOUT_USAGE' });
  assert.throws(() => parseNodes(['a=http://x', 'a=http://y']), { code: 'COHORT_ROLLOUT_USAGE' });
});
