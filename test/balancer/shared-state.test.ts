import test from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/util/clock.js';
import { MemberFlag, MemberHealth } from '../../src/balancer/member.js';
import { adoptHealth, applyBalancer, exportBalancer, exportMember } from '../../src/balancer/workers/shared-state.js';
import { makeBalancer } from './helpers.js';

const MEMBERS = [
  { url: 'http://127.0.0.1:8081', route: 'tc1' },
  { url: 'http://127.0.0.1:8082', route: 'tc2', loadfactor: 3 },
];

test('shared state: a worker whose clock has another origin gets the same health, retry deadline and slow start', () => {
  // The owner's monotonic clock at 1,000,000 ms, the worker's at 5,000: state travels as durations.
  const owner = makeBalancer({ members: MEMBERS, slowstart: 10 }, new ManualClock(1_000_000));
  const worker = makeBalancer({ members: [MEMBERS[0]!], slowstart: 10 }, new ManualClock(5_000));
  const tc1 = owner.b.findMember('tc1')!;
  tc1.markError('connect', 'ECONNREFUSED', owner.clock.now(), Date.now());
  const tc2 = owner.b.findMember('tc2')!;
  tc2.recoveredAt = owner.clock.now() - 4_000;
  owner.b.setFlag(tc2, MemberFlag.Drain, true);
  const added = applyBalancer(worker.b, exportBalancer(owner.b, owner.clock.now()), worker.clock.now());
  assert.deepEqual(added.map((m) => m.route), ['tc2'], 'a member the worker lacked is added');
  const w1 = worker.b.findMember('tc1')!;
  const w2 = worker.b.findMember('tc2')!;
  assert.equal(w1.health, MemberHealth.Error);
  assert.equal(w1.outUntil - worker.clock.now(), 60_000, 'out for the same retry (60 s) in the worker');
  assert.equal(w1.usable(worker.clock.now()), false);
  assert.equal(w2.loadfactor, 3);
  assert.ok(w2.flags.has(MemberFlag.Drain));
  // Slow start: 4 s into 10 s, the same weight in both processes.
  assert.equal(w2.effectiveWeight(worker.clock.now(), 10_000), tc2.effectiveWeight(owner.clock.now(), 10_000));
  assert.equal(w2.effectiveWeight(worker.clock.now(), 10_000), 1.2);
  // A member the owner removed leaves the worker too.
  owner.b.removeMember('tc1');
  applyBalancer(worker.b, exportBalancer(owner.b, owner.clock.now()), worker.clock.now());
  assert.deepEqual(worker.b.members.map((m) => m.route), ['tc2']);
});

test('adopting a worker\'s health change: one transition event; a check failure (the owner\'s verdict) is not overridden', () => {
  const table: Array<{ name: string; ownerHealth: MemberHealth; workerHealth: MemberHealth; adopted: boolean; events: number }> = [
    { name: 'worker saw an error', ownerHealth: MemberHealth.Ok, workerHealth: MemberHealth.Error, adopted: true, events: 1 },
    { name: 'worker saw the trial succeed', ownerHealth: MemberHealth.Error, workerHealth: MemberHealth.Ok, adopted: true, events: 1 },
    { name: 'worker ejected it', ownerHealth: MemberHealth.Ok, workerHealth: MemberHealth.Ejected, adopted: true, events: 1 },
    { name: 'nothing new', ownerHealth: MemberHealth.Ok, workerHealth: MemberHealth.Ok, adopted: false, events: 0 },
    { name: 'owner has it check-failed', ownerHealth: MemberHealth.CheckFailed, workerHealth: MemberHealth.Ok, adopted: false, events: 0 },
  ];
  for (const c of table) {
    const owner = makeBalancer({ members: MEMBERS });
    const worker = makeBalancer({ members: MEMBERS }, new ManualClock(42));
    const om = owner.b.findMember('tc1')!;
    om.health = c.ownerHealth;
    const wm = worker.b.findMember('tc1')!;
    if (c.workerHealth === MemberHealth.Error) wm.markError('reset', 'ECONNRESET', worker.clock.now(), Date.now());
    else if (c.workerHealth === MemberHealth.Ejected) wm.eject(30_000, '5 consecutive 5xx', worker.clock.now(), Date.now());
    let events = 0;
    owner.b.on('transition', (t) => {
      events++;
      assert.equal(t.to, c.workerHealth, c.name);
    });
    assert.equal(adoptHealth(owner.b, exportMember(wm, worker.clock.now()), owner.clock.now()), c.adopted, c.name);
    assert.equal(events, c.events, c.name);
    assert.equal(om.health, c.adopted ? c.workerHealth : c.ownerHealth, c.name);
    if (c.workerHealth !== MemberHealth.Ok && c.adopted) assert.ok(!om.usable(owner.clock.now()), `${c.name}: out in the owner too`);
  }
});
