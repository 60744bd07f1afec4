/**
 * One chaos run: three `cohort node` processes behind a balancer in its own
 * process, virtual users through it, and the fault plan executed against the
 * nodes. Everything it creates is registered in {@link Resources} and
 * released at the end (or by the caller on SIGINT).
 */
import { seededRandom } from '../src/util/clock.js';
import { BalancerProcess } from './balancer-handle.js';
import { failoverGap, latenciesIn, percentile, type Window } from './latency.js';
import { NetnsLab, checkNetns } from './netns.js';
import { NodeSet, freePort, sleep, type NodeSpec } from './nodes.js';
import type { ChaosOptions } from './options.js';
import { FaultKind, WARMUP_MS, aimAt, faultPlan, type Fault } from './plan.js';
import type { BalancerFigures, ChaosResult, FaultRecord } from './report.js';
import { Resources } from './resources.js';
import { VirtualUsers } from './users.js';
import { planRollout, StepKind } from '../src/rollout/plan.js';
import { ManagerApiBalancers } from '../src/rollout/ports.js';
import { runRollout, type RolloutReport } from '../src/rollout/rollout.js';
import { nodeHealth as health } from './nodes.js';

const ROUTES = ['n1', 'n2', 'n3'] as const;
/** Latency samples within this long after a node is back still count as "during failover", ms. */
const FAILOVER_TAIL_MS = 2_000;
/** Fixed ports inside the namespaces (each has its own port space). */
const NETNS_HTTP_PORT = 8080;
const NETNS_CLUSTER_PORT = 4000;

/** The rolling profile's manager API token (the manager listens on loopback only, for this run). */
const CHAOS_MANAGER_TOKEN = 'cohort-chaos-rolling-token';

/**
 * The balancer config of the run: fast health checks and timeouts so that faults are seen within the target.
 * `manager`: also serve the manager API (the rolling profile drives drain and disable through it).
 */
export function chaosBalancerConfig(members: readonly { route: string; url: string }[], manager = false): unknown {
  return {
    ...(manager ? { manager: { listen: '127.0.0.1:0', token: CHAOS_MANAGER_TOKEN } } : {}),
    listen: '127.0.0.1:0',
    accesslog: false,
    loglevel: 'warn',
    timeouts: { connect: 1, firstbyte: 1.5 },
    balancers: [{
      name: 'chaos',
      maxattempts: 2,
      slowstart: 0,
      members: members.map((m) => ({ ...m, retry: 2 })),
      hcheck: { path: '/.cohort/health', interval: 0.5, timeout: 0.5, rise: 1, fall: 2 },
    }],
    mounts: [{ path: '/examples', balancer: 'chaos' }],
  };
}

const figures = (s: BalancerFigures): BalancerFigures => ({ heapUsed: s.heapUsed, rss: s.rss, fds: s.fds, gc: s.gc });

export async function runChaos(o: ChaosOptions, res: Resources, log: (line: string) => void = () => undefined): Promise<ChaosResult> {
  const random = seededRandom(o.seed);
  let lab: NetnsLab | undefined;
  let specs: NodeSpec[];
  if (o.profile === 'netns') {
    checkNetns();
    const l = new NetnsLab();
    lab = l;
    res.add('network namespaces', () => l.destroy());
    const nss = l.create(ROUTES.length);
    specs = ROUTES.map((route, i) => ({ route, host: nss[i]!.address, httpPort: NETNS_HTTP_PORT, clusterPort: NETNS_CLUSTER_PORT, netns: nss[i]!.ns }));
  } else {
    specs = [];
    for (const route of ROUTES) specs.push({ route, host: '127.0.0.1', httpPort: await freePort(), clusterPort: await freePort() });
  }
  const nodes = new NodeSet(specs, ['--consistency', o.consistency]);
  res.add('node processes', () => nodes.destroy());
  log(`starting ${ROUTES.length} nodes (${o.consistency})${lab ? ` in network namespaces on ${lab.bridge}` : ''}…`);
  await Promise.all(ROUTES.map((r) => nodes.start(r)));
  const rolling = o.profile === 'rolling';
  const bal = await BalancerProcess.start(chaosBalancerConfig(ROUTES.map((route) => ({ route, url: nodes.url(route) })), rolling));
  res.add('balancer process', () => bal.stop());
  log(`balancer pid ${bal.pid} at ${bal.url}; node pids ${nodes.pids().join(', ')}`);
  const idle = figures(await bal.stats(true));

  const users = new VirtualUsers(bal.url, o.users, random);
  res.add('virtual users', () => users.close());
  const t0 = performance.now();
  const end = t0 + o.durationMs;
  users.start();
  await sleep(WARMUP_MS);
  const before = figures(await bal.stats(true));

  const faults: FaultRecord[] = [];
  const windows: Window[] = [];
  /** Per fault kind, each fault's gap until its first affected user was served (first) and until all were (all). */
  const gaps: Record<FaultKind, { first: number; all: number }[]> = { [FaultKind.Kill]: [], [FaultKind.Pause]: [], [FaultKind.Partition]: [], [FaultKind.Restart]: [] };
  const pending: { fault: Fault; at: number; backAt: number; affected: number[] }[] = [];
  let rollout: RolloutReport | undefined;
  if (rolling) {
    // cohort rollout's own steps and ports (src/rollout/), with the nodes of this run as the stop/start commands.
    const drained = new Map<string, { at: number; affected: number[] }>();
    const base = bal.manager!.replace(/\/+$/, '');
    rollout = await runRollout(planRollout(ROUTES, { drainWaitMs: 0, disable: true, settleMs: 1_000 }), new ManagerApiBalancers([base], 'chaos', CHAOS_MANAGER_TOKEN), {
      stop: (r) => nodes.terminate(r),
      start: (r) => nodes.start(r),
      ready: async (r) => (await health(nodes.url(r)))?.ready === true,
    }, {
      readyTimeoutMs: 30_000,
      log: (line) => log(`rollout: ${line}`),
      onStep: (step, at) => {
        if (step.kind === StepKind.Drain) drained.set(step.node, { at, affected: users.usersOf(step.node) });
      },
    });
    for (const n of rollout.nodes) {
      const d = drained.get(n.node)!;
      pending.push({ fault: { kind: FaultKind.Restart, node: n.node, holdMs: Math.round(n.stopMs), settleMs: 0 }, at: d.at, backAt: d.at + n.totalMs, affected: d.affected });
    }
    for (const p of pending) windows.push({ from: p.at, to: p.backAt + FAILOVER_TAIL_MS });
    await sleep(2_000);
  }
  for (const planned of faultPlan(o.profile, ROUTES, o.durationMs, random)) {
    // Room for the fault, a restart and the settle time, or stop.
    if (performance.now() + planned.holdMs + planned.settleMs + 3_000 > end) break;
    const fault = aimAt(planned, Object.fromEntries(ROUTES.map((r) => [r, users.usersOf(r).length])));
    const affected = users.usersOf(fault.node);
    const at = performance.now();
    log(`${((at - t0) / 1000).toFixed(1)} s: ${fault.kind} ${fault.node} for ${fault.holdMs} ms (${affected.length} users on it)`);
    await applyFault(fault, nodes, lab, specs);
    const backAt = performance.now();
    pending.push({ fault, at, backAt, affected });
    windows.push({ from: at, to: backAt + FAILOVER_TAIL_MS });
    await sleep(fault.settleMs);
  }
  const rest = end - performance.now();
  if (rest > 0 && !rolling) await sleep(rest);
  await users.stop();
  const trafficMs = performance.now() - t0;
  const after = figures(await bal.stats(true));

  for (const p of pending) {
    const g = failoverGap(p.at, p.affected, (u, t) => users.firstSuccessAfter(u, t));
    if (g.users > 0) gaps[p.fault.kind].push({ first: g.first, all: g.all });
    faults.push({ kind: p.fault.kind, node: p.fault.node, atS: (p.at - t0) / 1000, holdMs: p.fault.holdMs, backAfterMs: p.backAt - p.at, affectedUsers: g.users, gapFirstMs: g.first, gapAllMs: g.all });
  }
  const succeededBeforeCheck = users.samples.filter((s) => s.ok).length;
  const requestsBeforeCheck = users.requests;
  const lostBefore = { sessions: users.sessionsLost, updates: users.updatesLost };
  const errorsBefore = Object.fromEntries(users.errors);
  const latencies = users.samples.map((s) => s.end - s.start);
  const failoverLatencies = latenciesIn(users.samples, windows);
  // Every node is up again: read every session back once.
  const verification = await users.verifyAll();
  const acknowledgedUpdates = users.ledgers.reduce((a, l) => a + l.acknowledged, 0) - (verification.checked - verification.errors);
  const sessions = users.ledgers.filter((l) => l.session !== undefined).length;
  await users.close();
  await sleep(1_000);
  const idleAfter = figures(await bal.stats(true));

  return {
    options: o,
    trafficMs,
    requests: requestsBeforeCheck,
    succeeded: succeededBeforeCheck,
    errors: errorsBefore,
    acknowledgedUpdates,
    sessions,
    sessionsLost: lostBefore.sessions + verification.sessionsLost,
    updatesLost: lostBefore.updates + verification.updatesLost,
    latency: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.reduce((a, b) => Math.max(a, b), 0), p99Failover: percentile(failoverLatencies, 99), failoverSamples: failoverLatencies.length },
    faults,
    failoverGapMs: Math.max(0, ...gaps[FaultKind.Kill].map((g) => g.first)),
    failoverGapAllMs: Math.max(0, ...gaps[FaultKind.Kill].map((g) => g.all)),
    pauseGapMs: Math.max(0, ...gaps[FaultKind.Pause].map((g) => g.all)),
    partitionGapMs: Math.max(0, ...gaps[FaultKind.Partition].map((g) => g.all)),
    verification,
    balancer: { idle, before, after, idleAfter },
    ...(rollout ? { rollout: { totalMs: rollout.totalMs, nodes: rollout.nodes } } : {}),
  };
}

async function applyFault(f: Fault, nodes: NodeSet, lab: NetnsLab | undefined, specs: readonly NodeSpec[]): Promise<void> {
  switch (f.kind) {
    case FaultKind.Kill:
      await nodes.kill(f.node);
      await sleep(f.holdMs);
      await nodes.start(f.node);
      return;
    case FaultKind.Pause:
      nodes.pause(f.node);
      await sleep(f.holdMs);
      nodes.resume(f.node);
      return;
    case FaultKind.Partition: {
      const i = specs.findIndex((s) => s.route === f.node);
      const n = lab!.nodes[i]!;
      lab!.partition(n);
      await sleep(f.holdMs);
      lab!.heal(n);
      return;
    }
  }
}
