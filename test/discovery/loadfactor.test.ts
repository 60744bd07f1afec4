import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { BalancerDiscovery } from '../../src/discovery/balancer-discovery.js';
import { MemberState } from '../../src/cluster/types.js';
import { FakeCluster } from '../manager/fake-cluster.js';
import { counts, makeBalancer, pickMany } from '../balancer/helpers.js';

const node = (port: number, extra: Record<string, string> = {}) => ({ role: 'node', http: `http://127.0.0.1:${port}`, ready: 'true', ...extra });

test('discovery: a node\'s reported loadfactor sets its weight, and a new report changes it at run time', () => {
  const { b } = makeBalancer({ members: [] });
  const cluster = new FakeCluster();
  const d = new BalancerDiscovery({ members: () => cluster.members(), onMembership: (l) => cluster.onMembership(l) }, b, pino({ level: 'silent' }));
  d.start();
  try {
    cluster.put('tc1', MemberState.Alive, node(9001, { loadfactor: '3' }));
    cluster.put('tc2', MemberState.Alive, node(9002));
    assert.equal(b.findMember('tc1')!.loadfactor, 3);
    assert.equal(b.findMember('tc2')!.loadfactor, 1, 'no report: 1');
    assert.deepEqual(counts(pickMany(b, 400)), { tc1: 300, tc2: 100 });
    // tc1 reports a new loadfactor (e.g. loadReport: it got busy).
    cluster.put('tc1', MemberState.Alive, node(9001, { loadfactor: '1' }), 'updated');
    assert.equal(b.findMember('tc1')!.loadfactor, 1);
    cluster.put('tc2', MemberState.Alive, node(9002, { loadfactor: '4' }), 'updated');
    assert.deepEqual(counts(pickMany(b, 500)), { tc1: 100, tc2: 400 });
    // Out-of-range or malformed reports are ignored.
    for (const bad of ['0', '101', '2.5', 'x', '']) {
      cluster.put('tc2', MemberState.Alive, node(9002, { loadfactor: bad }), 'updated');
      assert.equal(b.findMember('tc2')!.loadfactor, 4, `loadfactor "${bad}" ignored`);
    }
  } finally {
    d.stop();
  }
});

test('discovery: an operator\'s loadfactor holds over unrelated meta updates, until the node reports a different one', () => {
  const { b } = makeBalancer({ members: [] });
  const cluster = new FakeCluster();
  const d = new BalancerDiscovery({ members: () => cluster.members(), onMembership: (l) => cluster.onMembership(l) }, b, pino({ level: 'silent' }));
  d.start();
  try {
    cluster.put('tc1', MemberState.Alive, node(9001, { loadfactor: '5' }));
    b.findMember('tc1')!.loadfactor = 9; // the manager's "set loadfactor"
    cluster.put('tc1', MemberState.Alive, node(9001, { loadfactor: '5', sessions: '12' }), 'updated');
    assert.equal(b.findMember('tc1')!.loadfactor, 9, 'same report, other meta changed: the operator\'s value holds');
    cluster.put('tc1', MemberState.Alive, node(9001, { loadfactor: '6', sessions: '12' }), 'updated');
    assert.equal(b.findMember('tc1')!.loadfactor, 6, 'a new report wins');
  } finally {
    d.stop();
  }
});
