/**
 * Runs a rollout plan (plan.ts) against two narrow ports: the balancers (their
 * managers' JSON API) and the nodes (stop, start, readiness). Before anything
 * is touched, every node must be ready and usable at every balancer: a
 * rollout never starts on a cluster that is already short of a node. Before
 * each node is drained, every other node must be up again (waited for up to
 * the ready timeout): never two nodes out at once, even if one crashed.
 */
import { RolloutError } from './errors.js';
import { StepKind, type Step } from './plan.js';

/** The balancers, as one: every call applies to each of them. */
export interface BalancersPort {
  /** Sets (true) or clears (false) flags on a member at every balancer. */
  setFlags(route: string, flags: Readonly<Record<'drain' | 'disabled', boolean>>): Promise<void>;
  /** True when every balancer has the member and it may take requests. */
  usable(route: string): Promise<boolean>;
}

export interface NodesPort {
  /** SIGTERM the node and resolve when it has exited (the stop command). */
  stop(route: string): Promise<void>;
  /** Start the (new) node; resolves once started, not necessarily ready. */
  start(route: string): Promise<void>;
  ready(route: string): Promise<boolean>;
}

export interface RolloutOptions {
  /** ms a node may take to be ready after start, and to be usable at the balancers. */
  readonly readyTimeoutMs: number;
  /** ms between readiness polls. */
  readonly pollMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** One line per step. */
  readonly log?: (line: string) => void;
  /** Called before each step runs (e.g. a load test notes who is on a node when it is drained). */
  readonly onStep?: (step: Step, at: number) => void;
}

export interface NodeReport {
  readonly node: string;
  /** ms from drain to usable again. */
  readonly totalMs: number;
  /** ms the stop command took (in-flight requests + handoff). */
  readonly stopMs: number;
  /** ms from start to ready. */
  readonly readyMs: number;
}

export interface RolloutReport {
  readonly nodes: NodeReport[];
  readonly totalMs: number;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runRollout(steps: readonly Step[], balancers: BalancersPort, nodes: NodesPort, o: RolloutOptions): Promise<RolloutReport> {
  const now = o.now ?? (() => performance.now());
  const sleep = o.sleep ?? defaultSleep;
  const log = o.log ?? (() => undefined);
  const poll = o.pollMs ?? 100;
  const waitFor = async (what: string, cond: () => Promise<boolean>): Promise<void> => {
    const end = now() + o.readyTimeoutMs;
    for (;;) {
      if (await cond().catch(() => false)) return;
      if (now() >= end) throw new RolloutError('COHORT_ROLLOUT_NOT_READY', `${what} not within ${o.readyTimeoutMs} ms; the rollout stopped here (the other nodes are untouched)`);
      await sleep(poll);
    }
  };

  const routes = [...new Set(steps.map((s) => s.node))];
  for (const r of routes) {
    if (!(await nodes.ready(r).catch(() => false))) throw new RolloutError('COHORT_ROLLOUT_NOT_READY', `node ${r} is not ready: not starting a rollout on a cluster that is already short of a node`);
    if (!(await balancers.usable(r).catch(() => false))) throw new RolloutError('COHORT_ROLLOUT_NOT_READY', `node ${r} is not usable at every balancer: not starting a rollout on a cluster that is already short of a node`);
  }

  const t0 = now();
  const reports: NodeReport[] = [];
  let started = 0;
  let stopMs = 0;
  let readyFrom = 0;
  let readyMs = 0;
  for (const step of steps) {
    const at = now();
    o.onStep?.(step, at);
    switch (step.kind) {
      case StepKind.Drain: {
        // Never two out at once: every other node must be up (one may have crashed since the last step).
        for (const other of routes.filter((r) => r !== step.node)) {
          await waitFor(`node ${other} ready and usable before ${step.node} is taken out`, async () => (await nodes.ready(other)) && (await balancers.usable(other)));
        }
        started = now();
        await balancers.setFlags(step.node, { drain: true, disabled: false });
        break;
      }
      case StepKind.Wait:
      case StepKind.Settle:
        await sleep(step.ms ?? 0);
        break;
      case StepKind.Disable:
        await balancers.setFlags(step.node, { drain: true, disabled: true });
        break;
      case StepKind.Stop:
        await nodes.stop(step.node);
        stopMs = now() - at;
        break;
      case StepKind.Start:
        readyFrom = at;
        await nodes.start(step.node);
        break;
      case StepKind.Ready:
        await waitFor(`node ${step.node} ready after restart`, () => nodes.ready(step.node));
        readyMs = now() - readyFrom;
        break;
      case StepKind.Enable:
        // A balancer that learns nodes from the cluster may not have re-added it yet: retry until the timeout.
        await waitFor(`node ${step.node} known to every balancer`, async () => {
          await balancers.setFlags(step.node, { drain: false, disabled: false });
          return true;
        });
        break;
      case StepKind.Usable:
        await waitFor(`node ${step.node} usable at every balancer`, () => balancers.usable(step.node));
        reports.push({ node: step.node, totalMs: now() - started, stopMs, readyMs });
        break;
    }
    log(`${((now() - t0) / 1000).toFixed(1)} s: ${step.kind} ${step.node}${step.ms ? ` ${step.ms} ms` : ''} (${Math.round(now() - at)} ms)`);
  }
  return { nodes: reports, totalMs: now() - t0 };
}
