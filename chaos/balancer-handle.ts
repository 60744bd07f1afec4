/**
 * The parent's side of balancer-proc: starts it, asks for stats, stops it.
 * The child is killed by PID when it does not stop by itself.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProcStats } from './balancer-proc.js';

const ENTRY = join(dirname(fileURLToPath(import.meta.url)), 'balancer-proc.js');

export class BalancerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly port: number,
    /** The manager page's URL (…/balancer-manager/) when the config has a `manager` section. */
    readonly manager: string | undefined,
  ) {}

  /** Starts a balancer with `config` (the YAML config as an object) in its own process. */
  static async start(config: unknown): Promise<BalancerProcess> {
    const child = fork(ENTRY, [], {
      execArgv: ['--expose-gc'],
      env: { ...process.env, COHORT_CHAOS_BALANCER_CONFIG: JSON.stringify(config) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
    const ready = await new Promise<{ url: string; port: number; manager?: string }>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`balancer process exited (${code}) before it was ready: ${stderr}`));
      child.once('exit', onExit);
      child.once('message', (m: { type: string; url: string; port: number; manager?: string }) => {
        child.off('exit', onExit);
        if (m.type === 'ready') resolve(m);
        else reject(new Error(`unexpected message ${JSON.stringify(m)}`));
      });
    });
    return new BalancerProcess(child, ready.url, ready.port, ready.manager);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Heap (after a forced GC when `gc`), RSS and open descriptors of the balancer process. */
  stats(gc = true): Promise<ProcStats> {
    return new Promise((resolve, reject) => {
      const onMsg = (m: { type: string; stats: ProcStats }) => {
        if (m.type !== 'stats') return;
        this.child.off('message', onMsg);
        clearTimeout(timer);
        resolve(m.stats);
      };
      const timer = setTimeout(() => {
        this.child.off('message', onMsg);
        reject(new Error('balancer process did not answer a stats request within 10 s'));
      }, 10_000);
      this.child.on('message', onMsg);
      this.child.send({ type: 'stats', gc });
    });
  }

  /** Asks the child to stop; SIGKILL by PID after 3 s. Safe to call twice. */
  async stop(): Promise<void> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    try {
      c.send({ type: 'stop' });
    } catch {
      // channel already closed: the kill below ends it
    }
    const timer = setTimeout(() => {
      if (c.exitCode === null && c.signalCode === null) process.kill(c.pid!, 'SIGKILL');
    }, 3_000);
    await exited;
    clearTimeout(timer);
  }

  /** Immediate SIGKILL by PID (used on SIGINT). */
  kill(): void {
    const c = this.child;
    if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  }
}
