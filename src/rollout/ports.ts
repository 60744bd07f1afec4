/**
 * The real ports of `cohort rollout`: the balancers' manager JSON API
 * (docs/manager.md; Bearer token) and the nodes' start/stop commands and
 * health endpoint.
 */
import { spawn } from 'node:child_process';
import { RolloutError } from './errors.js';
import type { BalancersPort, NodesPort } from './rollout.js';

const HTTP_TIMEOUT_MS = 5000;

/** Managers by base URL (e.g. http://127.0.0.1:8081/balancer-manager) and the balancer name in each. */
export class ManagerApiBalancers implements BalancersPort {
  constructor(
    private readonly managers: readonly string[],
    private readonly balancer: string,
    private readonly token: string,
  ) {}

  private url(base: string, route: string): string {
    return `${base.replace(/\/+$/, '')}/api/balancers/${encodeURIComponent(this.balancer)}/members/${encodeURIComponent(route)}`;
  }

  async setFlags(route: string, flags: Readonly<Record<'drain' | 'disabled', boolean>>): Promise<void> {
    for (const m of this.managers) {
      let res: Response;
      try {
        res = await fetch(this.url(m, route), {
          method: 'POST',
          headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ status: flags }),
          signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
        });
      } catch (err) {
        throw new RolloutError('COHORT_ROLLOUT_MANAGER', `${m}: ${(err as Error).message}`, { cause: err });
      }
      if (res.status !== 200) throw new RolloutError('COHORT_ROLLOUT_MANAGER', `${m}: setting ${JSON.stringify(flags)} on ${route} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
      await res.arrayBuffer();
    }
  }

  async usable(route: string): Promise<boolean> {
    for (const m of this.managers) {
      const res = await fetch(this.url(m, route), { headers: { authorization: `Bearer ${this.token}` }, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
      if (res.status !== 200) {
        await res.arrayBuffer();
        return false;
      }
      const body = (await res.json()) as { usable?: boolean };
      if (body.usable !== true) return false;
    }
    return true;
  }
}

/** Runs `command` with `sh -c`, `{route}` replaced by the node's route; rejects on a non-zero exit. */
export function runCommand(template: string, route: string, timeoutMs: number): Promise<void> {
  const command = template.replaceAll('{route}', route);
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-2000)));
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new RolloutError('COHORT_ROLLOUT_COMMAND', `${command}: ${err.message}`, { cause: err }));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new RolloutError('COHORT_ROLLOUT_COMMAND', `${command}: exited ${code ?? signal}${stderr ? `: ${stderr.trim()}` : ''}`));
    });
  });
}

/** Nodes driven by shell commands; readiness from `<url>/.cohort/health`. */
export class CommandNodes implements NodesPort {
  constructor(
    private readonly urls: ReadonlyMap<string, string>,
    private readonly stopCommand: string,
    private readonly startCommand: string,
    private readonly commandTimeoutMs: number,
  ) {}

  stop(route: string): Promise<void> {
    return runCommand(this.stopCommand, route, this.commandTimeoutMs);
  }

  start(route: string): Promise<void> {
    return runCommand(this.startCommand, route, this.commandTimeoutMs);
  }

  ready(route: string): Promise<boolean> {
    return nodeReady(this.urls.get(route)!);
  }
}

/** The node's own word: GET /.cohort/health answers {ready: true}. */
export async function nodeReady(url: string): Promise<boolean> {
  try {
    const r = await fetch(`${url.replace(/\/+$/, '')}/.cohort/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await r.json()) as { ready?: boolean };
    return body.ready === true;
  } catch {
    return false;
  }
}
