import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { NodeRuntime } from '../../src/node/runtime.js';
import { parseNodeConfig } from '../../src/node/config.js';
import { ReplicatedSessionManager } from '../../src/sessions/replication/replicated-manager.js';
import { ClusterSource } from '../../src/manager/dashboard-source-cluster.js';
import { systemClock } from '../../src/util/clock.js';
import { basic, startStack, type Stack } from '../manager/helpers.js';

/**
 * Real in-process nodes (NodeRuntime: HTTP listener, cluster channel,
 * replicated sessions) and a balancer that joins their membership, with its
 * manager: what each node publishes — its view of the membership, its
 * state-transfer progress, its loadfactor — reaches the balancer and the
 * dashboard's JSON and server-sent events.
 */
const APP = join(dirname(fileURLToPath(import.meta.url)), '../../../examples/demo-app.mjs');
const silent = pino({ level: 'silent' });

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface SseEvent {
  readonly source: string;
  readonly type: string;
  readonly data: any;
}

/** Reads the dashboard's event stream in the background until stopped. */
function readEvents(url: string): { events: SseEvent[]; stop: () => Promise<void> } {
  const events: SseEvent[] = [];
  const ac = new AbortController();
  const done = (async () => {
    const r = await fetch(url, { headers: { authorization: basic() }, signal: ac.signal });
    assert.equal(r.status, 200);
    const reader = r.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) return;
      buf += decoder.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const source = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (source && data) {
          const msg = JSON.parse(data) as { type: string; data: unknown };
          events.push({ source, type: msg.type, data: msg.data });
        }
      }
    }
  })().catch((err: unknown) => {
    if (!ac.signal.aborted) throw err;
  });
  return {
    events,
    stop: async () => {
      ac.abort();
      await done;
    },
  };
}

test('nodes publish what they see, their state-transfer progress and their loadfactor; the balancer and the dashboard show it', { timeout: 90_000 }, async (t) => {
  const secret = randomBytes(32).toString('base64');
  let stack: Stack | undefined;
  const nodes: NodeRuntime[] = [];
  t.after(async () => {
    for (const n of nodes.reverse()) n.destroy();
    await stack?.close();
  });
  const source = new ClusterSource(() => stack?.balancer.cluster, systemClock, 200);
  stack = await startStack({ backends: [], sampleIntervalMs: 100, sources: [source], configExtra: { cluster: { listen: '127.0.0.1:0', secret } } });
  source.snapshot(); // attach now: the membership events from here on are seen
  const lbRoute = stack.balancer.cluster!.self.route;
  const lbAddr = `127.0.0.1:${stack.balancer.cluster!.self.channelAddress.port}`;
  const balancer = stack.balancer.balancers.get('tc')!;
  const channelOf = (n: NodeRuntime) => `127.0.0.1:${n.cluster!.self.channelAddress.port}`;
  const start = async (route: string, members: string[], extra: Record<string, unknown> = {}, utilization?: () => number) => {
    const cfg = parseNodeConfig({
      route, listen: '127.0.0.1:0', app: APP, loglevel: 'silent',
      cluster: { listen: '127.0.0.1:0', secret, members },
      sessions: { replication: { transferChunk: 50 } },
      ...extra,
    });
    const n = new NodeRuntime(cfg, silent, undefined, utilization ? { utilization } : {});
    nodes.push(n);
    await n.start();
    return n;
  };

  // tc1 with a static loadfactor; tc2 reporting its load (utilization driven by the test).
  const tc1 = await start('tc1', [lbAddr], { loadfactor: 7 });
  let utilization = 0;
  const tc2 = await start('tc2', [lbAddr, channelOf(tc1)], { loadReport: true }, () => utilization);
  await until(() => balancer.members.length === 2, 10_000, 'the balancer to learn tc1 and tc2');
  assert.equal(balancer.findMember('tc1')!.loadfactor, 7, 'the static loadfactor is applied');
  assert.equal(balancer.findMember('tc2')!.loadfactor, 100, 'reporting load, an idle node starts at the ceiling');

  // Each node's view of the membership reaches the dashboard's JSON: everyone sees everyone alive.
  const api = `${stack.origin}${stack.base}/api`;
  const cluster = async () => (await (await fetch(`${api}/sources/cluster`, { headers: { authorization: basic() } })).json()) as any;
  await until(async () => {
    const m = (await cluster()).matrix;
    return m.rows.length === 3 && m.rows.every((r: any) => r.cells.every((c: string) => c === 'alive' || c === 'self'));
  }, 10_000, 'every node to see every other alive');
  const snap = await cluster();
  assert.deepEqual(snap.matrix.columns, [lbRoute, 'tc1', 'tc2']);
  assert.deepEqual(snap.matrix.rows.map((r: any) => [r.route, r.reported]), [[lbRoute, true], ['tc1', true], ['tc2', true]]);
  assert.deepEqual(tc1.cluster!.self.meta.sees?.split(',').sort(), [`${lbRoute}=a`, 'tc2=a']);
  const list = (await (await fetch(`${api}/sources`, { headers: { authorization: basic() } })).json()) as any;
  assert.deepEqual(list.sources.map((s: any) => s.id), ['balancers', 'cluster']);

  // A node changing its reported loadfactor changes the balancer member's weight, at run time.
  tc1.cluster!.setMeta({ ...tc1.cluster!.self.meta, loadfactor: '2' });
  await until(() => balancer.findMember('tc1')!.loadfactor === 2, 5_000, 'tc1\'s new loadfactor to be applied');
  utilization = 0.9; // tc2 gets busy: its next samples (every 2 s) lower its loadfactor
  await until(() => balancer.findMember('tc2')!.loadfactor < 100, 15_000, 'tc2\'s load report to lower its weight');
  const reported = Number(tc2.cluster!.self.meta.loadfactor);
  assert.ok(reported < 100 && reported >= 1, `tc2 reports ${reported}`);
  await until(() => balancer.findMember('tc2')!.loadfactor === Number(tc2.cluster!.self.meta.loadfactor), 5_000, 'the balancer to follow tc2\'s report');
  assert.match(tc2.cluster!.self.meta.load ?? '', /^0\.\d\d$/);

  // State transfer: tc3 joins and receives 500 sessions in pages of 50; the dashboard's
  // event stream shows the progress while it runs, then the final count.
  const sessions = tc1.sessions as ReplicatedSessionManager;
  for (let i = 0; i < 500; i++) {
    const s = sessions.create();
    s.attributes.i = i;
    await sessions.commit(s);
  }
  const sse = readEvents(`${api}/events`);
  await until(() => sse.events.some((e) => e.source === 'cluster' && e.type === 'snapshot'), 5_000, 'the event stream');
  const tc3 = await start('tc3', [lbAddr, channelOf(tc1)]);
  await until(() => sse.events.some((e) => e.source === 'cluster' && e.data.nodes?.some((n: any) => n.route === 'tc3' && n.transfer?.state === 'done')), 10_000, 'tc3\'s finished transfer on the stream');
  await sse.stop();
  const transfers = sse.events
    .filter((e) => e.source === 'cluster' && e.type !== 'snapshot')
    .map((e) => e.data.nodes?.find((n: any) => n.route === 'tc3')?.transfer)
    .filter((x) => x);
  const running = transfers.filter((x: any) => x.state === 'running' && x.received > 0);
  assert.ok(running.length > 0, `progress while running: ${JSON.stringify(transfers.slice(0, 5))}`);
  for (const r of running) assert.equal(r.total, 500, 'the total is the serving peer\'s frozen id list');
  assert.ok(running[0].received < 500, 'a partial count was published');
  assert.deepEqual(
    (({ state, received, total }) => ({ state, received, total }))(transfers.at(-1)),
    { state: 'done', received: 500, total: 500 },
  );
  assert.equal(tc3.cluster!.self.meta.transferProgress, '500/500');
  // tc3's view is in the matrix too. It listed only the balancer and tc1, and static membership
  // does not gossip: tc2 and tc3 don't know each other — which is what the picture is for.
  const expected = [
    [lbRoute, 'self alive alive alive'],
    ['tc1', 'alive self alive alive'],
    ['tc2', 'alive alive self absent'],
    ['tc3', 'alive alive absent self'],
  ];
  await until(async () => JSON.stringify((await cluster()).matrix.rows.map((r: any) => [r.route, r.cells.join(' ')])) === JSON.stringify(expected), 10_000, 'tc3 in the matrix');
  assert.deepEqual((await cluster()).matrix.columns, [lbRoute, 'tc1', 'tc2', 'tc3']);
});
