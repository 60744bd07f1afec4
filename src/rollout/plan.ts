/**
 * The rolling upgrade as data: for each node in turn, the steps that take it
 * out of traffic, restart it and bring it back, so that at most one node is
 * ever out and no session is left without a live copy. Pure: node routes and
 * options in, steps out; the executor (rollout.ts) runs them against ports.
 *
 * Per node:
 *   drain      balancers: flag `drain` — no new sessions go to it
 *   wait       `drainWaitMs` (0 by default): sessions that end by themselves
 *   disable    balancers: flag `disabled` — no request at all; its sessions'
 *              next requests go to nodes that hold copies (replication)
 *   stop       SIGTERM (the stop command): the node finishes in-flight
 *              requests, hands the sessions it owns over, leaves, exits
 *   start      the start command: the new version
 *   ready      its /.cohort/health says ready (state transfer done)
 *   enable     balancers: clear `disabled` and `drain`
 *   usable     every balancer reports the member usable again
 *   settle     `settleMs` before the next node
 */

export enum StepKind {
  Drain = 'drain',
  Wait = 'wait',
  Disable = 'disable',
  Stop = 'stop',
  Start = 'start',
  Ready = 'ready',
  Enable = 'enable',
  Usable = 'usable',
  Settle = 'settle',
}

export interface Step {
  readonly kind: StepKind;
  readonly node: string;
  /** For wait and settle: ms. */
  readonly ms?: number;
}

export interface PlanOptions {
  /** ms between drain and disable. */
  readonly drainWaitMs: number;
  /** false: never set `disabled` (requests keep going to the node until it stops; the balancer fails them over). */
  readonly disable: boolean;
  /** ms after a node is usable again before the next one. */
  readonly settleMs: number;
}

export function planRollout(nodes: readonly string[], o: PlanOptions): Step[] {
  const seen = new Set<string>();
  for (const n of nodes) {
    if (seen.has(n)) throw new Error(`node ${n} is listed twice`);
    seen.add(n);
  }
  const out: Step[] = [];
  nodes.forEach((node, i) => {
    out.push({ kind: StepKind.Drain, node });
    if (o.drainWaitMs > 0) out.push({ kind: StepKind.Wait, node, ms: o.drainWaitMs });
    if (o.disable) out.push({ kind: StepKind.Disable, node });
    out.push({ kind: StepKind.Stop, node }, { kind: StepKind.Start, node }, { kind: StepKind.Ready, node }, { kind: StepKind.Enable, node }, { kind: StepKind.Usable, node });
    if (i < nodes.length - 1 && o.settleMs > 0) out.push({ kind: StepKind.Settle, node, ms: o.settleMs });
  });
  return out;
}
