import test from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/util/clock.js';
import { DnsMembership, type DnsMembershipConfig, type DnsRecordType, type DnsResolver } from '../../src/cluster/membership-dns.js';
import { parseClusterConfig } from '../../src/cluster/config.js';
import type { Address, DiscoverySink } from '../../src/cluster/membership.js';
import type { CohortError } from '../../src/errors.js';
import type { MemberInfo } from '../../src/cluster/types.js';

const self: MemberInfo = { id: 'me', route: 'me', incarnation: 0, clusterName: 'cohort', channelAddress: { host: '127.0.0.1', port: 4000 }, startTime: 0, meta: {} };

function noData(type: string): Error {
  return Object.assign(new Error(`query${type === 'AAAA' ? 'Aaaa' : 'A'} ENODATA cohort.svc`), { code: 'ENODATA' });
}

async function round(config: Omit<DnsMembershipConfig, 'type' | 'name' | 'intervalMs'>, answer: (t: DnsRecordType, port: number) => Address[] | Error) {
  const calls: DnsRecordType[] = [];
  const resolver: DnsResolver = async (name, t, port) => {
    assert.equal(name, 'cohort.svc');
    calls.push(t);
    const a = answer(t, port);
    if (a instanceof Error) throw a;
    return a;
  };
  const clock = new ManualClock();
  const m = new DnsMembership({ type: 'dns', name: 'cohort.svc', intervalMs: 5000, ...config }, { clock, self: () => self, keys: undefined, deps: { dnsResolver: resolver } });
  const candidates: Address[][] = [];
  const errors: CohortError[] = [];
  const sink: DiscoverySink = { candidates: (a) => candidates.push([...a]), evidence: () => {}, isKnown: () => false, error: (e) => errors.push(e) };
  await m.start(sink);
  m.close();
  return { calls, candidates, errors };
}

const v4 = (port: number): Address[] => [{ host: '10.0.0.1', port }, { host: '10.0.0.2', port }];
const v6 = (port: number): Address[] => [{ host: 'fd00::1', port }];

test('dns: A+AAAA resolves both families each round and merges them (duplicates once)', async () => {
  const r = await round({ rrtype: 'A+AAAA' }, (t, port) => (t === 'A' ? [...v4(port), v4(port)[0]!] : v6(port)));
  assert.deepEqual(r.calls.sort(), ['A', 'AAAA']);
  assert.deepEqual(r.candidates, [[...v4(4000), ...v6(4000)]], 'default port: this node\'s channel port');
  assert.deepEqual(r.errors, []);
});

test('dns: A+AAAA on a name with one family only: the other family\'s ENODATA is not an error', async () => {
  const onlyV4 = await round({ rrtype: 'A+AAAA', port: 4100 }, (t, port) => (t === 'A' ? v4(port) : noData(t)));
  assert.deepEqual(onlyV4.candidates, [v4(4100)]);
  assert.deepEqual(onlyV4.errors, []);
  const onlyV6 = await round({ rrtype: 'A+AAAA' }, (t, port) => (t === 'AAAA' ? v6(port) : noData(t)));
  assert.deepEqual(onlyV6.candidates, [v6(4000)]);
  assert.deepEqual(onlyV6.errors, []);
});

test('dns: A+AAAA: a real failure of one family is reported, the other family\'s addresses are still used', async () => {
  const r = await round({ rrtype: 'A+AAAA' }, (t, port) => (t === 'A' ? v4(port) : Object.assign(new Error('queryAaaa ETIMEOUT cohort.svc'), { code: 'ETIMEOUT' })));
  assert.deepEqual(r.candidates, [v4(4000)]);
  assert.equal(r.errors.length, 1);
  assert.equal(r.errors[0]!.code, 'COHORT_DNS_FAILED');
  assert.match(r.errors[0]!.message, /A\+AAAA cohort\.svc failed: AAAA: queryAaaa ETIMEOUT/);
});

test('dns: A+AAAA: both families failing is one error and no candidates (even if both are ENODATA)', async () => {
  const r = await round({ rrtype: 'A+AAAA' }, (t) => noData(t));
  assert.deepEqual(r.candidates, []);
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]!.message, /A: queryA ENODATA.*; AAAA: queryAaaa ENODATA/);
});

test('dns: a single record type asks only for it, as before', async () => {
  const a = await round({ rrtype: 'AAAA' }, (t, port) => (t === 'AAAA' ? v6(port) : new Error('not asked')));
  assert.deepEqual(a.calls, ['AAAA']);
  assert.deepEqual(a.candidates, [v6(4000)]);
  const srv = await round({ rrtype: 'SRV' }, () => [{ host: 'n1.cohort.svc', port: 4001 }]);
  assert.deepEqual(srv.calls, ['SRV']);
  assert.deepEqual(srv.candidates, [[{ host: 'n1.cohort.svc', port: 4001 }]]);
  const failed = await round({ rrtype: 'A' }, (t) => noData(t));
  assert.deepEqual(failed.candidates, []);
  assert.match(failed.errors[0]!.message, /^resolving A cohort\.svc failed: queryA ENODATA/);
});

test('dns config: rrtype A+AAAA is accepted; the library default stays A', () => {
  const c = parseClusterConfig({ route: 'a', membership: { type: 'dns', name: 'cohort.svc', rrtype: 'A+AAAA' } });
  assert.equal(c.membership.type === 'dns' && c.membership.rrtype, 'A+AAAA');
  const d = parseClusterConfig({ route: 'a', membership: { type: 'dns', name: 'cohort.svc' } });
  assert.equal(d.membership.type === 'dns' && d.membership.rrtype, 'A');
  assert.throws(() => parseClusterConfig({ route: 'a', membership: { type: 'dns', name: 'x', rrtype: 'ANY' } }), /cluster\.membership/);
});
