import test from 'node:test';
import assert from 'node:assert/strict';
import { admit } from '../../src/cluster/admission.js';
import { MemberState, type MemberInfo, type MemberView } from '../../src/cluster/types.js';

const info = (id: string, route: string, clusterName = 'cohort'): MemberInfo => ({ id, route, incarnation: 0, clusterName, channelAddress: { host: '127.0.0.1', port: 4000 }, startTime: 0, meta: {} });
const view = (m: MemberInfo, state = MemberState.Alive): MemberView => ({ ...m, state, lastSeen: 0 });
const self = info('me', 'r0');

test('admission: decision table', () => {
  const rows: Array<[string, ReturnType<typeof admit>['kind'], ReturnType<typeof admit>]> = [
    ['other cluster', 'other-cluster', admit(self, info('x', 'r1', 'other'), undefined, false)],
    ['self', 'self', admit(self, info('me', 'r0'), undefined, false)],
    ['same route as self', 'refuse', admit(self, info('x', 'r0'), undefined, false)],
    ['new route', 'admit', admit(self, info('x', 'r1'), undefined, false)],
    ['same id again', 'admit', admit(self, info('x', 'r1'), view(info('x', 'r1')), true)],
    ['route held by a live connected member', 'refuse', admit(self, info('y', 'r1'), view(info('x', 'r1')), true)],
    ['route held by an unconnected member (restart)', 'admit', admit(self, info('y', 'r1'), view(info('x', 'r1')), false)],
    ['route held by a suspect member', 'admit', admit(self, info('y', 'r1'), view(info('x', 'r1'), MemberState.Suspect), true)],
  ];
  for (const [name, kind, got] of rows) assert.equal(got.kind, kind, name);
  assert.deepEqual(rows[6]![2], { kind: 'admit', replaces: 'x' });
  assert.match((rows[5]![2] as { message: string }).message, /route "r1" is already used by live node x/);
});
