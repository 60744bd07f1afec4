import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { hashPassword, verifyPassword } from '../../src/manager/password.js';
import { esc, jsonForScript } from '../../src/manager/html.js';
import { checkNonce, checkSameOrigin } from '../../src/manager/csrf.js';
import { Authenticator, SESSION_COOKIE } from '../../src/manager/auth.js';
import { ManagerError } from '../../src/manager/errors.js';
import { MemberLedger, StateStore } from '../../src/manager/persist.js';
import { BalancerSource } from '../../src/manager/dashboard-source.js';
import { BalancerMetrics } from '../../src/manager/metrics.js';
import { Balancer } from '../../src/balancer/balancer.js';
import { MethodRegistry } from '../../src/balancer/methods/index.js';
import { balancerSchema, balancerConfigSchema, memberSchema } from '../../src/config/balancer-schema.js';
import { ManualClock, seededRandom } from '../../src/util/clock.js';
import { tempDir } from './helpers.js';
import { FakeCluster } from './fake-cluster.js';
import { ClusterSource } from '../../src/manager/dashboard-source-cluster.js';
import { MemberState } from '../../src/cluster/types.js';

function fakeReq(headers: Record<string, string>, remote = '127.0.0.1'): IncomingMessage {
  return { headers, socket: { remoteAddress: remote } } as unknown as IncomingMessage;
}

function code(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    assert.ok(err instanceof ManagerError);
    return err.code;
  }
}

test('scrypt hashes verify the right password only', async () => {
  const h = await hashPassword('s3cret', { N: 1024 });
  assert.match(h, /^scrypt\$1024\$8\$1\$/);
  assert.equal(await verifyPassword('s3cret', h), true);
  assert.equal(await verifyPassword('s3cret ', h), false);
  assert.equal(await verifyPassword('s3cret', 'plain'), false);
  assert.notEqual(await hashPassword('s3cret', { N: 1024 }), h, 'salted');
  // The config schema accepts the hash format and rejects a plain password.
  const base = { balancers: [{ name: 'b', members: [{ url: 'http://127.0.0.1:1' }] }] };
  assert.equal(balancerConfigSchema.safeParse({ ...base, manager: { users: [{ name: 'a', password: h }] } }).success, true);
  assert.equal(balancerConfigSchema.safeParse({ ...base, manager: { users: [{ name: 'a', password: 'hunter2' }] } }).success, false);
  assert.equal(balancerConfigSchema.safeParse({ ...base, manager: { bogus: 1 } }).success, false);
  const parsed = balancerConfigSchema.parse({ ...base, manager: {} });
  assert.deepEqual(parsed.manager && { listen: parsed.manager.listen, path: parsed.manager.path }, { listen: '127.0.0.1:8090', path: '/balancer-manager' });
  assert.equal(balancerConfigSchema.parse(base).manager, undefined);
});

test('esc and jsonForScript leave no markup', () => {
  assert.equal(esc('<script>"x"&\'y\'`</script>'), '&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&#96;&lt;/script&gt;');
  assert.equal(esc(undefined), '');
  const j = jsonForScript({ a: '</script><script>alert(1)</script>&\u2028' });
  assert.ok(!j.includes('<') && !j.includes('>') && !j.includes('&') && !j.includes('\u2028'));
  assert.deepEqual(JSON.parse(j), { a: '</script><script>alert(1)</script>&\u2028' });
});

test('same-origin check: Origin and Sec-Fetch-Site', () => {
  const host = '127.0.0.1:8090';
  assert.equal(code(() => checkSameOrigin(fakeReq({ host }), 'http')), undefined, 'no Origin (curl) is fine');
  assert.equal(code(() => checkSameOrigin(fakeReq({ host, origin: 'http://127.0.0.1:8090', 'sec-fetch-site': 'same-origin' }), 'http')), undefined);
  assert.equal(code(() => checkSameOrigin(fakeReq({ host, origin: 'http://127.0.0.1:8080' }), 'http')), 'COHORT_MANAGER_CROSS_ORIGIN');
  assert.equal(code(() => checkSameOrigin(fakeReq({ host, origin: 'null' }), 'http')), 'COHORT_MANAGER_CROSS_ORIGIN');
  assert.equal(code(() => checkSameOrigin(fakeReq({ host, origin: 'https://127.0.0.1:8090' }), 'http')), 'COHORT_MANAGER_CROSS_ORIGIN');
  assert.equal(code(() => checkSameOrigin(fakeReq({ host, 'sec-fetch-site': 'cross-site' }), 'http')), 'COHORT_MANAGER_CROSS_ORIGIN');
  // Behind a reverse proxy: its public origin is accepted when configured.
  assert.equal(code(() => checkSameOrigin(fakeReq({ host, origin: 'https://admin.example.com' }), 'http', ['https://admin.example.com'])), undefined);
  assert.equal(code(() => checkSameOrigin(fakeReq({ host, origin: 'https://evil.example.com' }), 'http', ['https://admin.example.com'])), 'COHORT_MANAGER_CROSS_ORIGIN');
  assert.equal(code(() => checkSameOrigin(fakeReq({ host, 'sec-fetch-site': 'same-site' }), 'http')), 'COHORT_MANAGER_CROSS_ORIGIN');
  assert.equal(code(() => checkNonce({ user: 'a', via: 'session', csrf: 'n1' }, 'n1')), undefined);
  assert.equal(code(() => checkNonce({ user: 'a', via: 'session', csrf: 'n1' }, 'n2')), 'COHORT_MANAGER_CSRF');
  assert.equal(code(() => checkNonce({ user: 'a', via: 'session', csrf: 'n1' }, undefined)), 'COHORT_MANAGER_CSRF');
  assert.equal(code(() => checkNonce({ user: 't', via: 'bearer', csrf: undefined }, undefined)), undefined);
});

test('sessions expire after the idle TTL; failed logins are rate limited', async () => {
  const clock = new ManualClock(1000);
  const auth = new Authenticator({ users: [{ name: 'a', password: await hashPassword('pw', { N: 1024 }) }], tokens: [], sessionTtlMs: 60_000, clock, maxFailuresPerMinute: 3 });
  assert.equal(await auth.login('a', 'nope'), undefined);
  const s = await auth.login('a', 'pw');
  assert.ok(s);
  const req = fakeReq({ cookie: `other=1; ${SESSION_COOKIE}=${s.sessionId}` });
  const p = await auth.authenticate(req);
  assert.equal(p?.user, 'a');
  assert.equal(p?.csrf, s.csrf);
  clock.advance(59_000);
  assert.ok(await auth.authenticate(req), 'use extends the session');
  clock.advance(61_000);
  assert.equal(await auth.authenticate(req), undefined, 'expired');
  for (let i = 0; i < 3; i++) auth.recordFailure('10.0.0.1');
  assert.equal(auth.limited('10.0.0.1'), true);
  assert.equal(auth.limited('10.0.0.2'), false);
  clock.advance(61_000);
  assert.equal(auth.limited('10.0.0.1'), false);
});

test('state file: atomic writes leave no temp files; a corrupt file is an error, not ignored', async () => {
  const t = tempDir();
  try {
    const clock = new ManualClock();
    const spec = balancerSchema.parse({ name: 'b', members: [{ url: 'http://127.0.0.1:1', route: 'r1' }] });
    const b = new Balancer(spec, new MethodRegistry(), clock, seededRandom(1));
    const store = new StateStore(join(t.dir, 'c.yaml.state.json'));
    assert.equal(await store.load(), undefined);
    const ledger = new MemberLedger();
    const specs = new Map([['b', spec]]);
    ledger.bindConfig(new Map([['b', b]]), specs);
    await Promise.all([1, 2, 3].map(() => store.save(ledger.snapshot([b], specs))));
    assert.deepEqual(readdirSync(t.dir), ['c.yaml.state.json']);
    const state = await store.load();
    assert.equal(state?.balancers[0]?.configured[0]?.now?.route, 'r1');
    writeFileSync(store.path, '{"version": 1, "bal');
    await assert.rejects(store.load(), (err: ManagerError) => err.code === 'COHORT_MANAGER_STATE_UNREADABLE');
  } finally {
    t.cleanup();
  }
});

test('saved state is a delta against the config: renames keep identity, removals stay, foreign members are left alone', () => {
  const clock = new ManualClock();
  const methods = new MethodRegistry();
  const spec = balancerSchema.parse({ name: 'b', members: [{ url: 'http://127.0.0.1:1', route: 'r1' }, { url: 'http://127.0.0.1:2', route: 'r2' }, { url: 'http://127.0.0.1:3' }] });
  const specs = new Map([['b', spec]]);
  const run1 = new Balancer(spec, methods, clock, seededRandom(1));
  const ledger1 = new MemberLedger();
  ledger1.bindConfig(new Map([['b', run1]]), specs);
  // Operator: rename r1 → r1x and disable it; remove r2; add r9. Something else (discovery) adds n1.
  const r1 = run1.findMember('r1')!;
  r1.route = 'r1x';
  r1.flags.add('disabled' as never);
  run1.removeMember('r2');
  ledger1.markAdded(run1.addMember(memberSchema.parse({ url: 'http://127.0.0.1:9', route: 'r9', lbset: 1 })));
  run1.addMember(memberSchema.parse({ url: 'http://127.0.0.1:7', route: 'n1' }));
  const state = ledger1.snapshot([run1], specs);
  assert.deepEqual(state.balancers[0]!.added.map((m) => m.route), ['r9'], 'the discovered member is not saved');
  assert.equal(state.balancers[0]!.configured[1]!.removed, true);

  // A restart: fresh balancer from the same config, plus a discovered member present before the state is applied.
  const run2 = new Balancer(spec, methods, clock, seededRandom(1));
  run2.addMember(memberSchema.parse({ url: 'http://127.0.0.1:8', route: 'n2' }));
  const ledger2 = new MemberLedger();
  ledger2.bindConfig(new Map([['b', run2]]), specs);
  const res = ledger2.apply(state, new Map([['b', run2]]), specs, methods);
  assert.deepEqual(res, { applied: ['b'], skipped: [], problems: [] });
  assert.deepEqual(run2.members.map((m) => m.route), ['r1x', '127.0.0.1:3', 'n2', 'r9']);
  assert.ok(run2.findMember('r1x')!.flags.has('disabled' as never));
  assert.equal(run2.findMember('r9')!.lbset, 1);
  // Applying twice (a reload without changes) adds nothing twice.
  ledger2.apply(state, new Map([['b', run2]]), specs, methods);
  assert.equal(run2.members.length, 4);
  // The same identities are saved again.
  const again = ledger2.snapshot([run2], specs);
  assert.deepEqual(again, { ...state, savedAt: again.savedAt });
  // A changed config section: the saved state is skipped.
  const edited = balancerSchema.parse({ ...spec, maxattempts: 3 });
  const run3 = new Balancer(edited, methods, clock, seededRandom(1));
  assert.deepEqual(new MemberLedger().apply(state, new Map([['b', run3]]), new Map([['b', edited]]), methods).skipped, ['b']);
});

test('dashboard source: rates and latency per member per tick, state changes pushed at once', () => {
  const clock = new ManualClock(0);
  const spec = balancerSchema.parse({ name: 'b', members: [{ url: 'http://127.0.0.1:1', route: 'r1' }, { url: 'http://127.0.0.1:2', route: 'r2' }] });
  const b = new Balancer(spec, new MethodRegistry(), clock, seededRandom(1));
  const src = new BalancerSource(() => new Map([['b', b]]), clock, 3, () => 42);
  const events: Array<{ type: string; data: any }> = [];
  src.subscribe((type, data) => events.push({ type, data }));
  src.tick();
  b.members[0]!.counters.requests += 10;
  src.observe({ balancer: 'b', member: 'r1', status: 200, durationMs: 4, upstreamMs: 3, attempts: 1 });
  src.observe({ balancer: 'b', member: 'r1', status: 200, durationMs: 8, upstreamMs: 7, attempts: 1 });
  clock.advance(500);
  src.tick();
  const sample = events.filter((e) => e.type === 'sample').at(-1)!.data;
  const r1 = sample.members.find((m: any) => m.route === 'r1');
  const r2 = sample.members.find((m: any) => m.route === 'r2');
  assert.equal(r1.rps, 20);
  assert.equal(r1.latencyMs, 6);
  assert.equal(r2.rps, 0);
  assert.equal(r2.latencyMs, null);
  b.setFlag(b.members[1]!, 'disabled' as never, true);
  const state = events.at(-1)!;
  assert.equal(state.type, 'state');
  assert.match(state.data.entry.text, /r2 \+disabled/);
  b.members[0]!.markError('connect', 'refused', clock.now(), 42);
  assert.equal(events.at(-1)!.data.entry.kind, 'transition');
  b.setFlag(b.members[1]!, 'disabled' as never, false);
  b.setFlag(b.members[1]!, 'drain' as never, true);
  assert.equal(src.history.length, 3, 'history is bounded');
  src.close();
});

test('metrics: own registry, per-member series and the latency histogram', async () => {
  const clock = new ManualClock(0);
  const spec = balancerSchema.parse({ name: 'b', members: [{ url: 'http://127.0.0.1:1', route: 'r1' }] });
  const b = new Balancer(spec, new MethodRegistry(), clock, seededRandom(1));
  const m1 = new BalancerMetrics(() => [b]);
  const m2 = new BalancerMetrics(() => [b]);
  b.members[0]!.counters.requests = 5;
  b.members[0]!.counters.bytesIn = 1234;
  b.members[0]!.busy = 2;
  m1.observe({ balancer: 'b', member: 'r1', status: 200, durationMs: 3, upstreamMs: 2, attempts: 1 });
  m1.observe({ balancer: 'b', member: undefined, status: 503, durationMs: 1, upstreamMs: undefined, attempts: 0 });
  const text = (await m1.render()).body;
  assert.match(text, /cohort_balancer_member_requests_total\{balancer="b",member="r1"\} 5/);
  assert.match(text, /cohort_balancer_member_received_bytes_total\{balancer="b",member="r1"\} 1234/);
  assert.match(text, /cohort_balancer_member_busy\{balancer="b",member="r1"\} 2/);
  assert.match(text, /cohort_balancer_member_health\{balancer="b",member="r1",state="ok"\} 1/);
  assert.match(text, /cohort_balancer_request_duration_seconds_bucket\{le="0.005",balancer="b",member="r1"\} 1/);
  assert.match(text, /cohort_balancer_responses_total\{balancer="b",member="none",code="5xx"\} 1/);
  assert.match(text, /cohort_balancer_unavailable_total\{balancer="b"\} 0/);
  // Each server owns its registry: the second one saw no requests.
  assert.doesNotMatch((await m2.render()).body, /cohort_balancer_request_duration_seconds_count\{[^}]*\} [1-9]/);
  // Every metric name is documented.
  const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((x) => x[1]!);
  const { readFileSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  const doc = readFileSync(fileURLToPath(new URL('../../../docs/metrics.md', import.meta.url)), 'utf8');
  for (const n of names) assert.ok(doc.includes(`\`${n}\``), `${n} documented in docs/metrics.md`);
});

test('cluster source: nodes, readiness and meta, per-peer counters, membership changes pushed at once', () => {
  const clock = new ManualClock(1000);
  const fake = new FakeCluster();
  let channel: FakeCluster | undefined;
  const src = new ClusterSource(() => channel, clock, 10, () => 7);
  assert.deepEqual(src.snapshot(), { attached: false, cluster: null, nodes: [], matrix: { columns: [], rows: [] }, history: [] });
  channel = fake;
  const events: Array<{ type: string; data: any }> = [];
  src.subscribe((type, data) => events.push({ type, data }));
  src.tick(); // attaches lazily
  fake.put('n1', MemberState.Alive, { role: 'node', http: 'http://127.0.0.1:8081', ready: 'true', sessions: '12', evil: '<x>' });
  const state = events.at(-1)!;
  assert.equal(state.type, 'state');
  assert.equal(state.data.entry.text, 'n1: added');
  const n1 = state.data.nodes.find((n: any) => n.route === 'n1');
  assert.equal(n1.state, 'alive');
  assert.equal(n1.meta.sessions, '12');
  assert.equal(n1.meta.evil, undefined, 'only documented meta keys are shown');
  assert.equal(n1.rttMs, 0.5);
  assert.equal(state.data.nodes[0].self, true);
  fake.put('n1', MemberState.Gone, {}, 'gone');
  assert.equal(events.at(-1)!.data.entry.text, 'n1: gone (test)');
  assert.equal(events.at(-1)!.data.nodes.find((n: any) => n.route === 'n1').state, 'gone', 'a gone node stays visible');
  src.close();
});
