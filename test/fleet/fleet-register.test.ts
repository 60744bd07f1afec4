import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetLedger, MAX_VERSION_JUMP, checkSender, compareStamps, judge, keyOf, type Entry } from '../../src/fleet/fleet-register.js';
import { weighEvidence } from '../../src/fleet/fleet-evidence.js';

const value = (status: string[] = [], loadfactor = 1) => ({ route: 'a', loadfactor, lbset: 0, max: 100, retry: 60, status: status as never });
const memberEntry = (version: number, writer: string, status: string[] = []): Entry =>
  ({ kind: 'member', balancer: 'tc', url: 'http://127.0.0.1:8081/', stamp: { version, writer }, value: value(status) });

test('stamps order by version, then by writer', () => {
  assert.ok(compareStamps({ version: 2, writer: 'a' }, { version: 1, writer: 'z' }) > 0);
  assert.ok(compareStamps({ version: 3, writer: 'lb-b' }, { version: 3, writer: 'lb-a' }) > 0);
  assert.equal(compareStamps({ version: 3, writer: 'lb-a' }, { version: 3, writer: 'lb-a' }), 0);
});

test('judge: newer applies, same stamp is a duplicate, older is stale', () => {
  assert.deepEqual(judge(undefined, memberEntry(1, 'x')), { kind: 'apply' });
  assert.deepEqual(judge(memberEntry(1, 'x'), memberEntry(2, 'x')), { kind: 'apply' });
  assert.deepEqual(judge(memberEntry(2, 'x'), memberEntry(2, 'x')), { kind: 'duplicate' });
  assert.deepEqual(judge(memberEntry(3, 'x'), memberEntry(2, 'y')), { kind: 'stale', current: { version: 3, writer: 'x' } });
});

test('conflicting changes converge whatever the order they arrive in', () => {
  // Two balancers disable/enable the same member concurrently (same version): every order gives the same winner.
  const changes = [memberEntry(4, 'lb-aa', ['disabled']), memberEntry(4, 'lb-bb', []), memberEntry(3, 'lb-cc', ['drain']), memberEntry(5, 'lb-aa', ['stopped'])];
  const orders = [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]];
  const results = orders.map((order) => {
    const l = new FleetLedger('lb-zz');
    for (const i of order) l.receive(changes[i]!);
    return JSON.stringify(l.get(keyOf(changes[0]!)));
  });
  assert.equal(new Set(results).size, 1);
  assert.deepEqual(JSON.parse(results[0]!).value.status, ['stopped']);
  // Without the v5 entry, the tie at v4 goes to the higher writer.
  const l = new FleetLedger('lb-zz');
  l.receive(changes[1]!);
  l.receive(changes[0]!);
  assert.deepEqual((l.get(keyOf(changes[0]!)) as { value: { status: string[] } }).value.status, []);
});

test('a local write is stamped one above the highest version seen', () => {
  const l = new FleetLedger('lb-me');
  l.receive(memberEntry(41, 'lb-other'));
  const e = l.write({ kind: 'balancer', balancer: 'tc', value: { method: 'bybusyness', stickysession: 'JSESSIONID|jsessionid', stickysessionsep: '.', nofailover: false, maxattempts: 1, timeout: 0, forcerecovery: true } } as never);
  assert.deepEqual(e.stamp, { version: 42, writer: 'lb-me' });
  assert.equal(l.highest, 42);
  // A stale entry still moves the clock (it was seen), never the register.
  l.receive(memberEntry(50, 'lb-x'));
  assert.equal(l.receive(memberEntry(7, 'lb-y')).kind, 'stale');
  assert.equal(l.highest, 50);
});

test('checkSender refuses non-balancers, changes claimed for another writer and impossible versions', () => {
  const e = memberEntry(3, 'lb-a');
  assert.equal(checkSender(e, { route: 'lb-a', role: 'balancer' }, true, 2), undefined);
  assert.match(checkSender(e, { route: 'tc1', role: 'node' }, true, 2)!, /not a balancer/);
  assert.match(checkSender(e, { route: 'lb-b', role: 'balancer' }, true, 2)!, /written by lb-a but sent by lb-b/);
  // In a state exchange a balancer relays others' entries.
  assert.equal(checkSender(e, { route: 'lb-b', role: 'balancer' }, false, 2), undefined);
  assert.match(checkSender(memberEntry(MAX_VERSION_JUMP + 10, 'lb-a'), { route: 'lb-a', role: 'balancer' }, true, 5)!, /jumps/);
});

test('weighEvidence: a peer\'s report is acted on unless this balancer has fresher evidence of its own', () => {
  assert.deepEqual(weighEvidence({ alreadyOut: false, ignoresErrors: false, lastOkAgoMs: undefined }), { kind: 'avoid' });
  assert.deepEqual(weighEvidence({ alreadyOut: false, ignoresErrors: false, lastOkAgoMs: 5000 }, 1000), { kind: 'avoid' });
  assert.equal(weighEvidence({ alreadyOut: false, ignoresErrors: false, lastOkAgoMs: 200 }, 1000).kind, 'ignore');
  assert.equal(weighEvidence({ alreadyOut: true, ignoresErrors: false, lastOkAgoMs: undefined }).kind, 'ignore');
  assert.equal(weighEvidence({ alreadyOut: false, ignoresErrors: true, lastOkAgoMs: undefined }).kind, 'ignore');
});
