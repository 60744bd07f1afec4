/**
 * FleetSync over an in-memory channel (same ClusterChannel contract, no
 * sockets) and real Balancers on a manual clock: changes apply on the peer,
 * pending entries wait for their member, failure reports are weighed against
 * the peer's own evidence, and a state exchange catches a late joiner up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetSync } from '../../src/fleet/fleet-sync.js';
import { MemberState, type JsonValue, type MemberView, type MembershipEvent, type MessageHandler } from '../../src/cluster/types.js';
import { MemberHealth } from '../../src/balancer/member.js';
import { MethodRegistry } from '../../src/balancer/methods/index.js';
import { ManualClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { makeBalancer } from '../balancer/helpers.js';
import type { Balancer } from '../../src/balancer/balancer.js';

class Hub {
  readonly channels: FakeChannel[] = [];
}

class FakeChannel {
  readonly handlers = new Map<string, MessageHandler>();
  readonly listeners = new Set<(e: MembershipEvent) => void>();
  self: MemberView;
  constructor(private readonly hub: Hub, route: string, role = 'balancer') {
    this.self = { id: `id-${route}`, route, incarnation: 0, clusterName: 'cohort', channelAddress: { host: '127.0.0.1', port: 1 }, startTime: 0, meta: { role }, state: MemberState.Alive, lastSeen: 0 };
    hub.channels.push(this);
    for (const c of hub.channels) if (c !== this) for (const l of c.listeners) l({ type: 'added', member: this.self });
  }
  members(): MemberView[] {
    return this.hub.channels.filter((c) => c !== this).map((c) => c.self);
  }
  onMembership(l: (e: MembershipEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  setMeta(meta: Record<string, string>): void {
    this.self = { ...this.self, meta };
  }
  handle(topic: string, h: MessageHandler): void {
    this.handlers.set(topic, h);
  }
  private peer(id: string): FakeChannel {
    return this.hub.channels.find((c) => c.self.id === id)!;
  }
  async send(to: string, topic: string, payload: JsonValue): Promise<void> {
    const h = this.peer(to).handlers.get(topic);
    if (!h) throw new Error(`no handler for topic ${topic}`);
    await h(this.self, JSON.parse(JSON.stringify(payload)));
  }
  async request(to: string, topic: string, payload: JsonValue): Promise<JsonValue> {
    const h = this.peer(to).handlers.get(topic);
    if (!h) throw new Error(`no handler for topic ${topic}`);
    return JSON.parse(JSON.stringify((await h(this.self, payload)) ?? null));
  }
}

function balancerPair(clock: ManualClock) {
  const spec = { name: 'tc', members: [{ url: 'http://127.0.0.1:8081', route: 'a' }, { url: 'http://127.0.0.1:8082', route: 'b' }] };
  return [makeBalancer(spec, clock).b, makeBalancer(spec, clock).b];
}

function fleetOf(hub: Hub, route: string, b: Balancer, clock: ManualClock, saves: { n: number }) {
  return new FleetSync({
    channel: new FakeChannel(hub, route),
    balancers: () => new Map([[b.name, b]]),
    methods: new MethodRegistry(),
    clock,
    wallNow: () => 1_700_000_000_000 + clock.now(),
    log: silentLogger(),
    persist: async () => {
      saves.n++;
    },
  });
}

const settle = () => new Promise((r) => setImmediate(r));

test('a change on one balancer applies on the other and is saved there', async () => {
  const clock = new ManualClock(10_000);
  const hub = new Hub();
  const [b1, b2] = balancerPair(clock);
  const saves = { n: 0 };
  const f1 = fleetOf(hub, 'lb-1', b1!, clock, { n: 0 });
  const f2 = fleetOf(hub, 'lb-2', b2!, clock, saves);
  await f1.start();
  await f2.start();
  const a1 = b1!.findMember('a')!;
  b1!.setFlag(a1, 'disabled' as never, true);
  a1.loadfactor = 9;
  f1.localChange({ balancer: 'tc', kind: 'member', url: a1.url.href });
  await settle();
  const a2 = b2!.findMember('a')!;
  assert.ok(a2.flags.has('disabled' as never));
  assert.equal(a2.loadfactor, 9);
  assert.equal(saves.n, 1);
  assert.equal(f2.counters.applied, 1);
  assert.equal(f1.counters.sent, 1);
  // Both hold the same register.
  assert.deepEqual(f1.ledger.all(), f2.ledger.all());
});

test('a late joiner catches up by state exchange; a re-delivered change is a duplicate, not a refusal', async () => {
  const clock = new ManualClock(10_000);
  const hub = new Hub();
  const [b1, b2] = balancerPair(clock);
  const f1 = fleetOf(hub, 'lb-1', b1!, clock, { n: 0 });
  await f1.start();
  b1!.setFlag(b1!.findMember('b')!, 'drain' as never, true);
  f1.localChange({ balancer: 'tc', kind: 'member', url: b1!.findMember('b')!.url.href });
  b1!.maxattempts = 3;
  f1.localChange({ balancer: 'tc', kind: 'balancer' });
  const f2 = fleetOf(hub, 'lb-2', b2!, clock, { n: 0 });
  await f2.start();
  assert.ok(b2!.findMember('b')!.flags.has('drain' as never));
  assert.equal(b2!.maxattempts, 3);
  assert.equal(f2.counters.exchanges, 1);
  assert.equal(f2.ledger.highest, 2);
  // f1 also learns of f2 (membership 'added') and exchanges back: same entries, duplicates only.
  await settle();
  assert.equal(f1.counters.stale + f1.counters.forged + f1.counters.invalid, 0);
});

test('an entry for a member this balancer has not discovered yet waits for it', async () => {
  const clock = new ManualClock(10_000);
  const hub = new Hub();
  const [b1, b2] = balancerPair(clock);
  const f1 = fleetOf(hub, 'lb-1', b1!, clock, { n: 0 });
  const f2 = fleetOf(hub, 'lb-2', b2!, clock, { n: 0 });
  await f1.start();
  await f2.start();
  const c1 = b1!.addMember({ url: 'http://127.0.0.1:8083', route: 'c', loadfactor: 1, max: 100, retry: 10, lbset: 0, status: [] } as never);
  b1!.setFlag(c1, 'disabled' as never, true);
  f1.localChange({ balancer: 'tc', kind: 'member', url: c1.url.href });
  await settle();
  assert.equal(b2!.findMember('c'), undefined, 'not added: it was discovered, not added in a manager');
  b2!.addMember({ url: 'http://127.0.0.1:8083', route: 'c', loadfactor: 1, max: 100, retry: 10, lbset: 0, status: [] } as never);
  assert.ok(b2!.findMember('c')!.flags.has('disabled' as never), 'the fleet\'s settings apply when it appears');
});

test('a member one balancer saw fail is avoided by the other unless its own evidence is fresher', async () => {
  const clock = new ManualClock(10_000);
  const hub = new Hub();
  const [b1, b2] = balancerPair(clock);
  const f1 = fleetOf(hub, 'lb-1', b1!, clock, { n: 0 });
  const f2 = fleetOf(hub, 'lb-2', b2!, clock, { n: 0 });
  await f1.start();
  await f2.start();
  // b2 saw b answer 200 ms ago: its own evidence outweighs the report about b.
  b2!.findMember('b')!.recordLatency(3, clock.now() - 200);
  b1!.findMember('a')!.markError('connect', 'ECONNREFUSED', clock.now(), 0);
  b1!.findMember('b')!.markError('connect', 'ECONNREFUSED', clock.now(), 0);
  await settle();
  const a2 = b2!.findMember('a')!;
  assert.equal(a2.health, MemberHealth.Error);
  assert.match(a2.reason!.message, /lb-1 saw it fail \(connect: ECONNREFUSED\)/);
  assert.equal(b2!.findMember('b')!.health, MemberHealth.Ok);
  assert.equal(f2.counters.evidenceAvoided, 1);
  assert.equal(f2.counters.evidenceIgnored, 1);
  // Not relayed back (source 'fleet'), and not trusted for recovery: b2's own trial request decides.
  assert.equal(f2.counters.evidenceSent, 0);
  assert.equal(a2.usable(clock.now()), false);
  clock.advance(a2.retryMs);
  assert.equal(a2.usable(clock.now()), true, 'after retry, the next request is this balancer\'s own trial');
  a2.markSuccess(clock.now(), 0);
  assert.equal(a2.health, MemberHealth.Ok);
});

test('changes from a non-balancer, for another writer, or older than the register are refused and counted', async () => {
  const clock = new ManualClock(10_000);
  const hub = new Hub();
  const [b1] = balancerPair(clock);
  const f1 = fleetOf(hub, 'lb-1', b1!, clock, { n: 0 });
  await f1.start();
  const ch = hub.channels[0]!;
  const change = ch.handlers.get('fleet.change')!;
  const url = b1!.findMember('a')!.url.href;
  const entry = (writer: string, version: number, status: string[]) => ({ kind: 'member', balancer: 'tc', url, stamp: { version, writer }, value: { route: 'a', loadfactor: 1, lbset: 0, max: 100, retry: 60, status } });
  const node: MemberView = { ...ch.self, id: 'n', route: 'tc1', meta: { role: 'node' } };
  const peer: MemberView = { ...ch.self, id: 'p', route: 'lb-2', meta: { role: 'balancer' } };
  await assert.rejects(Promise.resolve(change(node, { entries: [entry('tc1', 1, ['disabled'])] })), { code: 'COHORT_FLEET_FORGED' });
  await assert.rejects(Promise.resolve(change(peer, { entries: [entry('lb-9', 1, ['disabled'])] })), { code: 'COHORT_FLEET_FORGED' });
  await assert.rejects(Promise.resolve(change(peer, { entries: [entry('lb-2', 2 ** 40, ['disabled'])] })), { code: 'COHORT_FLEET_FORGED' });
  await assert.rejects(Promise.resolve(change(peer, { entries: [{ kind: 'member', balancer: 'tc' }] })), { code: 'COHORT_FLEET_INVALID' });
  await assert.rejects(Promise.resolve(change(peer, 'hello')), { code: 'COHORT_FLEET_INVALID' });
  assert.equal(b1!.findMember('a')!.flags.size, 0, 'nothing refused was applied');
  await change(peer, { entries: [entry('lb-2', 5, ['drain'])] });
  assert.ok(b1!.findMember('a')!.flags.has('drain' as never));
  await assert.rejects(Promise.resolve(change(peer, { entries: [entry('lb-2', 4, ['disabled'])] })), { code: 'COHORT_FLEET_STALE' });
  assert.ok(!b1!.findMember('a')!.flags.has('disabled' as never));
  assert.deepEqual({ forged: f1.counters.forged, invalid: f1.counters.invalid, stale: f1.counters.stale, applied: f1.counters.applied }, { forged: 3, invalid: 2, stale: 1, applied: 1 });
});

test('the registers\' stamps survive a restart: a change made after it outranks what returning peers bring back', async () => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { FleetStore } = await import('../../src/fleet/fleet-store.js');
  const dir = mkdtempSync(join(tmpdir(), 'cohort-fleet-store-'));
  try {
    const clock = new ManualClock(10_000);
    const [b1, b2] = balancerPair(clock);
    const a1 = () => b1!.findMember('a')!;
    // Two balancers agree on seven changes; then both stop.
    let hub = new Hub();
    const storeB1 = new FleetStore(join(dir, 'b1.fleet.json'));
    const mk = (h: Hub, route: string, b: Balancer, store?: InstanceType<typeof FleetStore>) =>
      new FleetSync({ channel: new FakeChannel(h, route), balancers: () => new Map([[b.name, b]]), methods: new MethodRegistry(), clock, log: silentLogger(), ...(store ? { store } : {}) });
    const f1 = mk(hub, 'lb-1', b1!, storeB1);
    const f2 = mk(hub, 'lb-2', b2!);
    await f1.start();
    await f2.start();
    for (let i = 1; i <= 7; i++) {
      b2!.findMember('a')!.loadfactor = i;
      f2.localChange({ balancer: 'tc', kind: 'member', url: a1().url.href });
      await settle();
    }
    assert.equal(a1().loadfactor, 7);
    await f1.flush();
    // Balancer 1 restarts alone (a new route), reads its stamps, and the operator changes a there.
    hub = new Hub();
    const f1b = mk(hub, 'lb-1-restarted', b1!, new FleetStore(storeB1.path));
    await f1b.start();
    assert.equal(f1b.ledger.highest, 7);
    a1().loadfactor = 42;
    const e = f1b.localChange({ balancer: 'tc', kind: 'member', url: a1().url.href })!;
    assert.equal(e.stamp.version, 8);
    // Balancer 2 comes back with its v7: the newer change stays everywhere.
    const f2b = mk(hub, 'lb-2', b2!);
    await f2b.start();
    await settle();
    assert.equal(a1().loadfactor, 42);
    assert.equal(b2!.findMember('a')!.loadfactor, 42);
    // A corrupt file is reported, not fatal. Every sync stops first and f1b's saves (it saves what
    // lb-2 brought back too) are on disk, or a late save would overwrite the corrupt file.
    for (const f of [f1, f2, f1b, f2b]) f.stop();
    await f1b.flush();
    writeFileSync(storeB1.path, '{not json');
    await assert.rejects(new FleetStore(storeB1.path).load(), { code: 'COHORT_FLEET_INVALID' });
    const f1c = mk(new Hub(), 'lb-1-again', b1!, new FleetStore(storeB1.path));
    await f1c.start();
    assert.equal(f1c.ledger.highest, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
