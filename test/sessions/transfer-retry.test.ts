/**
 * A joining node is ready only when its state transfer is done: a peer that
 * stalls the transfer keeps it not ready (retrying with backoff) until the
 * stall ends, another peer serves, or no peer is left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settle } from './helpers/fixture.js';
import { MemoryHub, type MemoryChannel } from './helpers/memory-cluster.js';
import { ReplicatedSessionManager, ManagerState } from '../../src/sessions/replication/replicated-manager.js';
import { retryDelay, DEFAULT_TRANSFER_RETRY } from '../../src/sessions/replication/transfer-retry.js';
import type { ReplicationConfigInput } from '../../src/sessions/config.js';
import type { JsonValue, MemberView } from '../../src/cluster/types.js';
import { systemClock } from '../../src/util/clock.js';

interface Node {
  readonly route: string;
  readonly channel: MemoryChannel;
  readonly manager: ReplicatedSessionManager;
  readonly lines: string[];
  readonly started: Promise<void>;
}

const fast: ReplicationConfigInput = { transferChunk: 20, transferTimeoutMs: 400, transferRequestTimeoutMs: 150 };

/** A node on the real clock (the retry waits are real), logging into `lines`. */
async function node(hub: MemoryHub, route: string, mode: 'all-to-all' | 'backup' = 'all-to-all'): Promise<Node> {
  const channel = hub.channel(route);
  const lines: string[] = [];
  const log = (level: string) => (_o: object, m: string) => void lines.push(`${level} ${m}`);
  const manager = new ReplicatedSessionManager({
    channel,
    clock: systemClock,
    config: { ...fast, mode },
    logger: { debug: () => {}, info: log('info'), warn: log('warn'), error: log('error') },
    transferRetry: { initialMs: 50, maxMs: 200 },
  });
  await channel.start();
  const started = manager.start();
  return { route, channel, manager, lines, started };
}

/** Makes `ch` answer no transfer page while the returned gate is closed. */
function stallTransfers(ch: MemoryChannel): { open: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const orig = ch.dispatch.bind(ch);
  ch.dispatch = async (from: MemberView, topic: string, payload: JsonValue) => {
    if (topic === 'sessions.transfer') await gate;
    return orig(from, topic, payload);
  };
  return { open: () => release() };
}

async function fill(n: Node, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const s = n.manager.create();
    s.attributes.i = i;
    await n.manager.commit(s);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function readyWithin(n: Node, ms: number): Promise<number> {
  const t0 = performance.now();
  await Promise.race([n.started, sleep(ms).then(() => assert.fail(`${n.route} not ready within ${ms} ms`))]);
  assert.equal(n.manager.ready, true);
  return performance.now() - t0;
}

function stop(nodes: Node[]): void {
  for (const n of nodes) {
    n.manager.destroy();
    n.channel.destroy();
  }
}

test('retry backoff doubles from initialMs up to maxMs', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((a) => retryDelay({ initialMs: 500, maxMs: 10_000 }, a)), [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
  assert.equal(retryDelay(DEFAULT_TRANSFER_RETRY, 1000), DEFAULT_TRANSFER_RETRY.maxMs);
});

for (const mode of ['all-to-all', 'backup'] as const) {
  test(`${mode}: a peer that stalls the transfer keeps the joining node not ready; when the stall ends it becomes ready with every session`, async () => {
    const hub = new MemoryHub();
    const nodes: Node[] = [];
    try {
      const a = await node(hub, 'n1', mode);
      nodes.push(a);
      await a.started;
      await fill(a, 100);
      const stall = stallTransfers(a.channel);
      const b = await node(hub, 'n2', mode);
      nodes.push(b);
      // several transfer timeouts (400 ms) and retries later, still not ready
      await sleep(1_200);
      assert.equal(b.manager.ready, false, 'not ready while the transfer is incomplete');
      assert.equal(b.manager.lifecycle, ManagerState.Starting);
      assert.equal(b.channel.self.meta.ready, undefined, 'ready=true not published');
      assert.ok(b.lines.some((l) => /state transfer incomplete \(attempt \d+\): not ready yet, retrying in \d+ ms from n1/.test(l)), b.lines.join('\n'));
      stall.open();
      await readyWithin(b, 3_000);
      assert.equal(b.channel.self.meta.ready, 'true');
      const st = b.manager.getStats();
      assert.equal(st.lastTransfer?.complete, true);
      assert.ok((st.lastTransfer?.attempts ?? 0) >= 2, `attempts: ${st.lastTransfer?.attempts}`);
      // backup mode with two nodes: n2 is the backup of everything n1 owns
      assert.equal(st.sessions, 100);
      assert.ok(b.lines.some((l) => /state transfer complete after \d+ attempts/.test(l)));
    } finally {
      stop(nodes);
    }
  });
}

test('all-to-all: the oldest peer stalls, another peer serves on a later attempt → ready', async () => {
  const hub = new MemoryHub();
  const nodes: Node[] = [];
  try {
    const a = await node(hub, 'n1');
    nodes.push(a);
    await a.started;
    const c = await node(hub, 'n3');
    nodes.push(c);
    await c.started;
    await fill(a, 60);
    await settle();
    assert.equal(c.manager.getStats().sessions, 60);
    const stallA = stallTransfers(a.channel);
    const stallC = stallTransfers(c.channel);
    const b = await node(hub, 'n2');
    nodes.push(b);
    await sleep(900);
    assert.equal(b.manager.ready, false, 'both peers stall');
    stallC.open(); // n3 serves from now on; n1 (the oldest, asked first) still stalls
    await readyWithin(b, 4_000);
    const st = b.manager.getStats();
    assert.equal(st.sessions, 60);
    assert.deepEqual(st.lastTransfer?.peers, ['n3']);
    assert.equal(st.lastTransfer?.complete, true);
    stallA.open();
  } finally {
    stop(nodes);
  }
});

test('the only peer stalls and then leaves: no peer is left to transfer from → ready, reported incomplete', async () => {
  const hub = new MemoryHub();
  const nodes: Node[] = [];
  try {
    const a = await node(hub, 'n1');
    nodes.push(a);
    await a.started;
    await fill(a, 30);
    stallTransfers(a.channel);
    const b = await node(hub, 'n2');
    nodes.push(b);
    await sleep(600);
    assert.equal(b.manager.ready, false);
    hub.kill(a.channel);
    a.manager.destroy();
    await readyWithin(b, 2_000);
    const st = b.manager.getStats().lastTransfer!;
    assert.equal(st.complete, false);
    assert.equal(st.gaveUp, 'no peer left');
    assert.ok(b.lines.some((l) => /no peer left to transfer from/.test(l)), b.lines.join('\n'));
  } finally {
    stop(nodes);
  }
});

test('a node alone is ready at once; a node closed while retrying stops retrying and never becomes ready', async () => {
  const hub = new MemoryHub();
  const nodes: Node[] = [];
  try {
    const a = await node(hub, 'n1');
    nodes.push(a);
    await readyWithin(a, 500);
    assert.equal(a.manager.getStats().lastTransfer?.complete, true);
    await fill(a, 10);
    stallTransfers(a.channel);
    const b = await node(hub, 'n2');
    nodes.push(b);
    await sleep(500);
    b.manager.destroy();
    await Promise.race([b.started, sleep(2_000).then(() => assert.fail('start() still pending after close'))]);
    assert.equal(b.manager.ready, false);
    assert.equal(b.manager.lifecycle, ManagerState.Closed);
    assert.equal(b.manager.getStats().lastTransfer?.gaveUp, 'closed');
  } finally {
    stop(nodes);
  }
});
