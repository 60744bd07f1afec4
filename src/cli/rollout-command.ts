/**
 * `cohort rollout`: restarts the nodes one at a time — drain and disable at
 * the balancers (manager API), SIGTERM handoff (the stop command), start the
 * new version (the start command), wait for ready, enable, next. See
 * docs/rollout.md.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { planRollout } from '../rollout/plan.js';
import { CommandNodes, ManagerApiBalancers } from '../rollout/ports.js';
import { runRollout, type RolloutReport } from '../rollout/rollout.js';
import { RolloutError } from '../rollout/errors.js';

export interface RolloutCliOptions {
  node?: string[];
  manager?: string[];
  balancer?: string;
  tokenFile?: string;
  stop?: string;
  start?: string;
  drainWait: string;
  settle: string;
  readyTimeout: string;
  commandTimeout: string;
  disable: boolean;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function seconds(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new RolloutError('COHORT_ROLLOUT_USAGE', `--${name}: expected seconds ≥ 0, got "${v}"`);
  return n * 1000;
}

/** Parses `--node ROUTE=URL`. */
export function parseNodes(specs: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  specs.forEach((s, i) => {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new RolloutError('COHORT_ROLLOUT_USAGE', `--node[${i}]: expected ROUTE=URL (the node's app URL), e.g. tc1=http://10.0.0.11:8080, got "${s}"`);
    const route = s.slice(0, eq);
    const url = s.slice(eq + 1);
    try {
      new URL(url);
    } catch {
      throw new RolloutError('COHORT_ROLLOUT_USAGE', `--node[${i}]: "${url}" is not a URL`);
    }
    if (out.has(route)) throw new RolloutError('COHORT_ROLLOUT_USAGE', `--node: ${route} is listed twice`);
    out.set(route, url);
  });
  return out;
}

function readToken(file: string | undefined): string {
  const fromEnv = process.env['COHORT_MANAGER_TOKEN'];
  if (file === undefined) {
    if (fromEnv) return fromEnv.trim();
    throw new RolloutError('COHORT_ROLLOUT_USAGE', '--token-file FILE (or COHORT_MANAGER_TOKEN): the managers\' API token (manager.token / tokenfile)');
  }
  try {
    return readFileSync(file, 'utf8').split('\n')[0]!.trim();
  } catch (err) {
    throw new RolloutError('COHORT_ROLLOUT_USAGE', `--token-file: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** The balancer to act on: --balancer, or the only one the first manager has. */
async function resolveBalancer(manager: string, token: string, name: string | undefined): Promise<string> {
  if (name !== undefined) return name;
  const res = await fetch(`${manager.replace(/\/+$/, '')}/api/balancers`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) }).catch((err: Error) => {
    throw new RolloutError('COHORT_ROLLOUT_MANAGER', `${manager}: ${err.message}`, { cause: err });
  });
  if (res.status !== 200) throw new RolloutError('COHORT_ROLLOUT_MANAGER', `${manager}/api/balancers answered ${res.status}`);
  const names = ((await res.json()) as { balancers: { name: string }[] }).balancers.map((b) => b.name);
  if (names.length !== 1) throw new RolloutError('COHORT_ROLLOUT_USAGE', `--balancer: the manager has ${names.length} balancers (${names.join(', ')}); name one`);
  return names[0]!;
}

export function formatRolloutReport(r: RolloutReport): string {
  const lines = r.nodes.map((n) => `  ${n.node.padEnd(12)} out of traffic ${(n.totalMs / 1000).toFixed(1).padStart(6)} s   stop (handoff) ${(n.stopMs / 1000).toFixed(1).padStart(5)} s   start → ready ${(n.readyMs / 1000).toFixed(1).padStart(5)} s`);
  return `cohort rollout: ${r.nodes.length} node(s) restarted one at a time in ${(r.totalMs / 1000).toFixed(1)} s\n${lines.join('\n')}`;
}

export async function runRolloutCommand(opts: RolloutCliOptions): Promise<RolloutReport> {
  const nodes = parseNodes(opts.node ?? []);
  if (nodes.size === 0) throw new RolloutError('COHORT_ROLLOUT_USAGE', '--node ROUTE=URL: at least one node, in the order to restart them');
  const managers = opts.manager ?? [];
  if (managers.length === 0) throw new RolloutError('COHORT_ROLLOUT_USAGE', '--manager URL: at least one balancer manager (e.g. http://127.0.0.1:8081/balancer-manager)');
  if (!opts.stop || !opts.start) throw new RolloutError('COHORT_ROLLOUT_USAGE', '--stop CMD and --start CMD: how to SIGTERM a node and wait for its exit, and how to start it ({route} is replaced by its route)');
  const token = readToken(opts.tokenFile);
  const balancer = await resolveBalancer(managers[0]!, token, opts.balancer);
  const steps = planRollout([...nodes.keys()], { drainWaitMs: seconds('drain-wait', opts.drainWait), disable: opts.disable, settleMs: seconds('settle', opts.settle) });
  const report = await runRollout(steps, new ManagerApiBalancers(managers, balancer, token), new CommandNodes(nodes, opts.stop, opts.start, seconds('command-timeout', opts.commandTimeout)), {
    readyTimeoutMs: seconds('ready-timeout', opts.readyTimeout),
    log: (line) => process.stderr.write(`cohort rollout: ${line}\n`),
  });
  process.stdout.write(`${formatRolloutReport(report)}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return report;
}

export function registerRolloutCommand(program: Command): void {
  program
    .command('rollout')
    .description('rolling restart/upgrade: each node in turn is drained and disabled at the balancers, stopped (SIGTERM handoff), started, and enabled once ready (docs/rollout.md)')
    .option('--node <route=url>', 'a node and its app URL, in restart order (repeatable)', collect)
    .option('--manager <url>', 'a balancer manager, e.g. http://127.0.0.1:8081/balancer-manager (repeatable; one is enough for a fleet)', collect)
    .option('--balancer <name>', 'the balancer whose members the nodes are (default: the only one)')
    .option('--token-file <file>', 'the managers\' API token (or COHORT_MANAGER_TOKEN)')
    .option('--stop <command>', 'sh command that SIGTERMs node {route} and waits for it to exit, e.g. "systemctl stop cohort-node@{route}"')
    .option('--start <command>', 'sh command that starts node {route} (the new version), e.g. "systemctl start cohort-node@{route}"')
    .option('--drain-wait <s>', 'seconds between drain (no new sessions) and disable (no requests)', '0')
    .option('--settle <s>', 'seconds after a node is back before the next one', '2')
    .option('--ready-timeout <s>', 'seconds a node may take to be ready and usable after its start', '60')
    .option('--command-timeout <s>', 'seconds a stop or start command may take', '120')
    .option('--no-disable', 'do not disable the node before stopping it (drain only; the balancers fail its requests over)')
    .option('--json', 'print the report as JSON too')
    .action(async (opts: RolloutCliOptions) => {
      try {
        await runRolloutCommand(opts);
      } catch (err) {
        // A bad command line exits 2, like the other commands' usage errors (docs/errors.md).
        if (!(err instanceof RolloutError) || err.code !== 'COHORT_ROLLOUT_USAGE') throw err;
        process.stderr.write(`cohort: ${err.code}: ${err.message}\n`);
        process.exitCode = 2;
      }
    });
}
