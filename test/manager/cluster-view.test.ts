import { test } from 'node:test';
import assert from 'node:assert/strict';
import { membershipMatrix } from '../../src/manager/membership-matrix.js';
import { ClusterSource, parseTransfer } from '../../src/manager/dashboard-source-cluster.js';
import { parseSeenMembers } from '../../src/cluster/seen-members.js';
import { MemberState } from '../../src/cluster/types.js';
import { ManualClock } from '../../src/util/clock.js';
import { FakeCluster } from './fake-cluster.js';

const seen = (v: string) => parseSeenMembers(v);

test('membership matrix: row = observer, column = member; alive, suspect, absent, unknown, self', () => {
  const m = membershipMatrix([
    { route: 'tc2', state: 'alive', self: false, sees: seen('lb=a,tc1=s') },
    { route: 'lb', state: 'alive', self: true, sees: seen('tc1=a,tc2=a,tc3=a') },
    { route: 'tc1', state: 'suspect', self: false, sees: seen('lb=a,tc2=a,tc9=a') },
    { route: 'tc3', state: 'alive', self: false, sees: undefined },
  ]);
  assert.deepEqual(m.columns, ['lb', 'tc1', 'tc2', 'tc3', 'tc9'], 'this balancer first, then by route, then routes only others know');
  assert.deepEqual(m.rows.map((r) => [r.route, r.reported, r.cells.join(' ')]), [
    ['lb', true, 'self alive alive alive absent'],
    ['tc1', true, 'alive self alive absent alive'],
    ['tc2', true, 'alive suspect self absent absent'],
    ['tc3', false, 'unknown unknown unknown self unknown'],
  ]);
});

test('membership matrix: a gone observer reports nothing; a truncated view leaves the rest unknown; one row per route', () => {
  const m = membershipMatrix([
    { route: 'lb', state: 'alive', self: true, sees: seen('tc2=a') },
    { route: 'tc1', state: MemberState.Gone, self: false, sees: seen('lb=a,tc2=a') },
    { route: 'tc2', state: 'alive', self: false, sees: seen('lb=a,+1') },
    { route: 'tc2', state: MemberState.Gone, self: false, sees: seen('') },
  ]);
  assert.deepEqual(m.rows.map((r) => [r.route, r.state, r.cells.join(' ')]), [
    ['lb', 'alive', 'self absent alive'],
    ['tc1', 'gone', 'unknown self unknown'],
    ['tc2', 'alive', 'alive unknown self'],
  ]);
});

test('transfer meta: running with progress, done, incomplete, none', () => {
  assert.deepEqual(parseTransfer({ transfer: 'running', transferProgress: '120/500' }), { state: 'running', received: 120, total: 500, text: 'running' });
  assert.deepEqual(parseTransfer({ transfer: 'running', transferProgress: '0/0' }), { state: 'running', received: 0, total: 0, text: 'running' });
  assert.deepEqual(parseTransfer({ transfer: '500 sessions in 80 ms', transferProgress: '500/500' }), { state: 'done', received: 500, total: 500, text: '500 sessions in 80 ms' });
  assert.equal(parseTransfer({ transfer: '3 sessions in 9 ms (incomplete)', transferProgress: '3/10' })!.state, 'incomplete');
  assert.deepEqual(parseTransfer({ transfer: '0 sessions in 1 ms' }), { state: 'done', received: 0, total: 0, text: '0 sessions in 1 ms' }, 'an older node without progress');
  assert.equal(parseTransfer({ transfer: 'running', transferProgress: '<b>/x' })!.received, 0, 'malformed progress ignored');
  assert.equal(parseTransfer({ transfer: 'none' }), null);
  assert.equal(parseTransfer({}), null);
});

test('cluster source: meta updates redraw without filling the history, except readiness; the matrix and transfers are in the view', () => {
  const fake = new FakeCluster();
  const src = new ClusterSource(() => fake, new ManualClock(0), 50, () => 7);
  const events: Array<{ type: string; data: any }> = [];
  src.subscribe((type, data) => events.push({ type, data }));
  fake.put('tc1', MemberState.Alive, { role: 'node', ready: 'false', transfer: 'running', transferProgress: '0/0', sees: 'lb-1=a' });
  fake.put('tc1', MemberState.Alive, { role: 'node', ready: 'false', transfer: 'running', transferProgress: '40/100', sees: 'lb-1=a' }, 'updated');
  const update = events.at(-1)!;
  assert.equal(update.type, 'update');
  const tc1 = update.data.nodes.find((n: any) => n.route === 'tc1');
  assert.deepEqual(tc1.transfer, { state: 'running', received: 40, total: 100, text: 'running' });
  assert.equal(tc1.meta.sees, undefined, 'the view is drawn as the matrix, not listed as meta');
  assert.deepEqual(update.data.matrix.columns, ['lb-1', 'tc1']);
  assert.deepEqual(update.data.matrix.rows.map((r: any) => r.cells.join(' ')), ['self alive', 'alive self']);
  fake.put('tc1', MemberState.Alive, { role: 'node', ready: 'true', transfer: '100 sessions in 5 ms', transferProgress: '100/100', sees: 'lb-1=a' }, 'updated');
  assert.equal(events.at(-1)!.type, 'state');
  assert.equal(events.at(-1)!.data.entry.text, 'tc1: ready');
  fake.put('tc1', MemberState.Alive, { role: 'node', ready: 'true', sessions: '3', sees: 'lb-1=a' }, 'updated');
  assert.equal(events.at(-1)!.type, 'update');
  assert.deepEqual(src.snapshot().history.map((h) => h.text), ['tc1: added', 'tc1: ready']);
  src.close();
});
