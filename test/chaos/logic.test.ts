/** Pure parts of the chaos run: the session ledger, percentiles and gaps, the fault plan, options, targets. */
import test from 'node:test';
import assert from 'node:assert/strict';
import { SessionLedger, sessionKey } from '../../chaos/ledger.js';
import { failoverGap, latenciesIn, percentile } from '../../chaos/latency.js';
import { FaultKind, aimAt, faultPlan } from '../../chaos/plan.js';
import { parseChaosArgs, UsageError } from '../../chaos/options.js';
import { formatReport, missedTargets, type ChaosResult } from '../../chaos/report.js';
import { seededRandom } from '../../src/util/clock.js';

test('ledger: a route change is the same session; a new id or a reset counter is a lost session; a stale count loses updates', () => {
  assert.equal(sessionKey('abc.n1'), 'abc');
  const l = new SessionLedger();
  assert.deepEqual(l.observe('abc.n1', 1), { sessionLost: false, updatesLost: 0 });
  assert.deepEqual(l.observe('abc.n1', 2), { sessionLost: false, updatesLost: 0 });
  assert.deepEqual(l.observe('abc.n2', 3), { sessionLost: false, updatesLost: 0 }, 'taken over by n2');
  assert.deepEqual(l.observe('abc.n2', 3), { sessionLost: false, updatesLost: 1 }, 'the increment acknowledged as 3 is missing');
  assert.deepEqual(l.observe('abc.n2', 2), { sessionLost: false, updatesLost: 2 });
  assert.deepEqual(l.observe('xyz.n3', 1), { sessionLost: true, updatesLost: 2 });
  assert.equal(l.acknowledged, 6);
});

test('percentile by nearest rank; latencies inside windows; failover gap first/all', () => {
  assert.equal(percentile([5, 1, 3, 2, 4], 50), 3);
  assert.equal(percentile(Array.from({ length: 100 }, (_, i) => i + 1), 99), 99);
  assert.ok(Number.isNaN(percentile([], 99)));
  const samples = [{ start: 0, end: 5, ok: true }, { start: 10, end: 40, ok: true }, { start: 50, end: 51, ok: true }];
  assert.deepEqual(latenciesIn(samples, [{ from: 8, to: 20 }]), [30]);
  const succ: Record<number, number[]> = { 1: [90, 150], 2: [300], 3: [] };
  const after = (u: number, t: number) => succ[u]!.find((x) => x > t);
  assert.deepEqual(failoverGap(100, [1, 2], after), { first: 50, all: 200, users: 2 });
  assert.equal(failoverGap(100, [1, 3], after).all, Infinity);
  assert.deepEqual(failoverGap(100, [], after), { first: 0, all: 0, users: 0 });
});

test('fault plan: short is one kill and one pause; default alternates kill/pause over every node; netns adds partitions', () => {
  const nodes = ['n1', 'n2', 'n3'];
  assert.deepEqual(faultPlan('short', nodes, 25_000, seededRandom(1)).map((f) => [f.kind, f.node]), [[FaultKind.Kill, 'n1'], [FaultKind.Pause, 'n2']]);
  const d = faultPlan('default', nodes, 120_000, seededRandom(1));
  assert.ok(d.length >= 20);
  for (const n of nodes) for (const k of [FaultKind.Kill, FaultKind.Pause]) assert.ok(d.some((f) => f.node === n && f.kind === k), `${k} ${n}`);
  const n = faultPlan('netns', nodes, 120_000, seededRandom(1));
  for (const node of nodes) assert.ok(n.some((f) => f.node === node && f.kind === FaultKind.Partition), `partition ${node}`);
  assert.ok(d.every((f) => f.holdMs >= 1000 && f.holdMs <= 4000 && f.settleMs >= 2000));
});

test('a fault aimed at a node without users moves to the busiest node', () => {
  const f = { kind: FaultKind.Kill, node: 'n2', holdMs: 1000, settleMs: 2000 };
  assert.equal(aimAt(f, { n1: 3, n2: 1, n3: 9 }), f);
  assert.deepEqual(aimAt(f, { n1: 3, n2: 0, n3: 9 }), { ...f, node: 'n3' });
  assert.equal(aimAt(f, { n1: 0, n2: 0, n3: 0 }), f);
});

test('options: profiles, bounds, usage errors', () => {
  assert.deepEqual(parseChaosArgs([]), { profile: 'default', durationMs: 120_000, users: 60, consistency: 'sync', seed: 1, json: false });
  const s = parseChaosArgs(['--profile', 'short', '--consistency=async', '--json']);
  assert.equal(s.durationMs, 25_000);
  assert.equal(s.consistency, 'async');
  assert.equal(s.json, true);
  assert.equal(parseChaosArgs(['--duration', '30']).durationMs, 30_000);
  for (const bad of [['--users', '100000'], ['--duration', '1'], ['--profile', 'x'], ['--consistency', 'eventual'], ['--bogus', '1'], ['stray']]) {
    assert.throws(() => parseChaosArgs(bad), UsageError, bad.join(' '));
  }
});

test('targets: sync losses, any error, a slow kill failover and heap growth are misses; async losses are not', () => {
  const base = {
    options: parseChaosArgs(['--profile', 'short']), trafficMs: 20_000, requests: 100, succeeded: 100, errors: {}, acknowledgedUpdates: 80, sessions: 10,
    sessionsLost: 0, updatesLost: 0, latency: { p50: 1, p99: 2, p99Failover: 3, failoverSamples: 4, max: 5 }, faults: [], failoverGapMs: 40, failoverGapAllMs: 500, pauseGapMs: 3000, partitionGapMs: 0,
    verification: { checked: 10, sessionsLost: 0, updatesLost: 0, errors: 0 },
    balancer: { idle: { heapUsed: 1, rss: 1, fds: 1, gc: true }, before: { heapUsed: 10e6, rss: 1, fds: 1, gc: true }, after: { heapUsed: 11e6, rss: 1, fds: 1, gc: true }, idleAfter: { heapUsed: 1, rss: 1, fds: 1, gc: true } },
  } satisfies ChaosResult;
  assert.deepEqual(missedTargets(base), []);
  assert.equal(missedTargets({ ...base, updatesLost: 1 }).length, 1);
  assert.equal(missedTargets({ ...base, updatesLost: 1, options: { ...base.options, consistency: 'async' } }).length, 0);
  assert.equal(missedTargets({ ...base, errors: { 'HTTP 502': 1 } }).length, 1);
  assert.equal(missedTargets({ ...base, failoverGapMs: 2001, failoverGapAllMs: 2001 }).length, 2);
  assert.match(missedTargets({ ...base, failoverGapMs: 2001, failoverGapAllMs: 2001 })[0]!, /failover gap \(kills\) 2001 ms: first successful request/);
  // Some users of a killed node waiting longer than the target is a miss too, even when the first was served at once.
  assert.equal(missedTargets({ ...base, failoverGapAllMs: 2001 }).length, 1);
  assert.equal(missedTargets({ ...base, failoverGapAllMs: Infinity }).length, 1);
  const text = formatReport(base);
  assert.match(text, /^failover gap \(kills\) +40 ms worst, from SIGKILL to the first successful request for the killed node's users \(target ≤ 2000 ms\)$/m);
  assert.match(text, /^all users served \(kills\) 500 ms worst, from SIGKILL until every user of the killed node was served again \(target ≤ 2000 ms\)$/m);
  assert.equal(missedTargets({ ...base, balancer: { ...base.balancer, after: { ...base.balancer.after, heapUsed: 40e6 } } }).length, 1);
});
