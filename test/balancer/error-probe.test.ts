/**
 * The error-probe policy (src/balancer/error-probe.ts): which members are
 * probed, when, what passes, when the retry time is cut short.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorProbePolicy, probePasses, type ProbeSubject } from '../../src/balancer/error-probe.js';

const spec = { interval: 1, timeout: 1, path: '/.cohort/health', rise: 2 };

function member(over: Partial<ProbeSubject> = {}): ProbeSubject & { outUntil: number } {
  return { health: 'error', reason: { source: 'connect' }, outUntil: 60_000, administrativelyOut: false, ...over };
}

test('probePasses: any answer below 500 (a cohort node\'s 200, another server\'s 404); 5xx and no answer fail', () => {
  for (const s of [200, 204, 301, 404]) assert.equal(probePasses(s), true, String(s));
  for (const s of [500, 502, 503, undefined]) assert.equal(probePasses(s), false, String(s));
});

test('only members out after a connection-level failure are probed', () => {
  const p = new ErrorProbePolicy(spec);
  const later = 5_000;
  assert.equal(p.wanted(member(), later), true);
  assert.equal(p.wanted(member({ reason: { source: 'reset' } }), later), true);
  assert.equal(p.wanted(member({ reason: { source: 'timeout' } }), later), true);
  assert.equal(p.wanted(member({ reason: { source: 'status' } }), later), false, 'failonstatus: it answered');
  assert.equal(p.wanted(member({ health: 'ok', reason: undefined }), later), false);
  assert.equal(p.wanted(member({ health: 'check-failed' }), later), false);
  assert.equal(p.wanted(member({ administrativelyOut: true }), later), false);
  assert.equal(p.wanted(member({ outUntil: 4_000 }), later), false, 'already eligible (retry elapsed)');
});

test('probe sequence: first one interval after the failure, one at a time, rise passes in a row recover', () => {
  const p = new ErrorProbePolicy(spec);
  const m = member();
  assert.equal(p.begin(m, 0), false, 'not at once');
  assert.equal(p.begin(m, 999), false);
  assert.equal(p.begin(m, 1000), true);
  assert.equal(p.begin(m, 1100), false, 'one in flight');
  assert.deepEqual(p.complete(m, undefined, 1200), { kind: 'failed', nextAt: 2200 });
  assert.equal(p.begin(m, 2100), false);
  assert.equal(p.begin(m, 2200), true);
  assert.deepEqual(p.complete(m, 200, 2300), { kind: 'passed', passes: 1, nextAt: 3300 });
  assert.equal(p.begin(m, 3300), true);
  assert.deepEqual(p.complete(m, 503, 3400), { kind: 'failed', nextAt: 4400 }, 'a 503 (node not ready) resets the streak');
  assert.equal(p.begin(m, 4400), true);
  assert.equal(p.complete(m, 200, 4500).kind, 'passed');
  assert.equal(p.begin(m, 5500), true);
  assert.deepEqual(p.complete(m, 404, 5600), { kind: 'recover', passes: 2 });
});

test('a new failure while probing starts over; a member that recovered meanwhile goes idle', () => {
  const p = new ErrorProbePolicy({ ...spec, rise: 1 });
  const m = member();
  p.begin(m, 0);
  assert.equal(p.begin(m, 1000), true);
  m.outUntil = 61_000; // failed again (a request), new episode
  assert.deepEqual(p.complete(m, 200, 1100), { kind: 'idle' });
  assert.equal(p.begin(m, 1200), false, 'first probe of the new episode one interval later');
  assert.equal(p.begin(m, 2200), true);
  const ok = m as { health: string };
  ok.health = 'ok';
  assert.deepEqual(p.complete(m, 200, 2300), { kind: 'idle' });
  assert.equal(p.begin(m, 9000), false);
});
