/**
 * The `cohort node` processes of a chaos run: started, SIGKILLed, restarted,
 * paused and resumed by PID. Everything started here is killed by PID and the
 * temp dir (the cluster secret) removed by `destroy()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'cohort.js');
export const DEMO_APP = join(ROOT, 'examples', 'demo-app.mjs');

/** Where one node listens; `netns` runs it inside that network namespace. */
export interface NodeSpec {
  readonly route: string;
  readonly host: string;
  readonly httpPort: number;
  readonly clusterPort: number;
  readonly netns?: string;
}

/** A free port on `host` (bound then released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface NodeHealth {
  readonly ready: boolean;
  readonly sessions?: number;
}

export async function nodeHealth(url: string, timeoutMs = 1000): Promise<NodeHealth | undefined> {
  try {
    const r = await fetch(`${url}/.cohort/health`, { signal: AbortSignal.timeout(timeoutMs) });
    return (await r.json()) as NodeHealth;
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class NodeSet {
  readonly dir = mkdtempSync(join(tmpdir(), 'cohort-chaos-'));
  private readonly secretFile = join(this.dir, 'secret');
  private readonly procs = new Map<string, ChildProcess>();
  private readonly all = new Set<ChildProcess>();
  private readonly paused = new Set<ChildProcess>();
  /** Set by destroy(): a run interrupted mid-restart must not start a process nobody will kill. */
  private destroyed = false;
  /** Last stderr lines per node, for failure messages. */
  readonly stderr = new Map<string, string>();

  constructor(
    readonly specs: readonly NodeSpec[],
    private readonly extraArgs: readonly string[],
  ) {
    writeFileSync(this.secretFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  }

  url(route: string): string {
    const s = this.spec(route);
    return `http://${s.host}:${s.httpPort}`;
  }

  spec(route: string): NodeSpec {
    const s = this.specs.find((x) => x.route === route);
    if (!s) throw new Error(`no node ${route}`);
    return s;
  }

  /** PIDs of the live processes (for the report and for cleanup checks). */
  pids(): number[] {
    return [...this.all].map((c) => c.pid!).filter((p) => p !== undefined);
  }

  /** Starts (or restarts) a node; resolves when its health says ready. */
  async start(route: string, readyTimeoutMs = 20_000): Promise<void> {
    if (this.destroyed) throw new Error(`node set destroyed; not starting ${route}`);
    const s = this.spec(route);
    const args = [BIN, 'node', '--route', s.route, '--listen', `${s.host}:${s.httpPort}`, '--app', DEMO_APP,
      '--cluster-listen', `${s.host}:${s.clusterPort}`, '--secret-file', this.secretFile, '--log-level', 'warn', ...this.extraArgs];
    for (const o of this.specs) if (o !== s) args.push('--member', `${o.host}:${o.clusterPort}`);
    // `ip netns exec` execs the command in place: the PID is the node's.
    const child = s.netns
      ? spawn('ip', ['netns', 'exec', s.netns, process.execPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.all.add(child);
    this.procs.set(route, child);
    this.stderr.set(route, '');
    child.once('exit', () => {
      this.all.delete(child);
      this.paused.delete(child);
    });
    child.stderr!.on('data', (d: Buffer) => this.stderr.set(route, ((this.stderr.get(route) ?? '') + d.toString()).slice(-4000)));
    const url = this.url(route);
    const end = Date.now() + readyTimeoutMs;
    while (Date.now() < end) {
      if (child.exitCode !== null) throw new Error(`node ${route} exited with ${child.exitCode}: ${this.stderr.get(route)}`);
      if ((await nodeHealth(url))?.ready === true) return;
      await sleep(50);
    }
    throw new Error(`node ${route} not ready after ${readyTimeoutMs} ms: ${this.stderr.get(route)}`);
  }

  /** SIGKILL by PID; resolves when the process is gone. */
  async kill(route: string): Promise<void> {
    const c = this.procs.get(route);
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    process.kill(c.pid!, 'SIGKILL');
    await exited;
  }

  /** SIGTERM by PID (the node's graceful stop: in-flight requests, session handoff); resolves when it has exited. */
  async terminate(route: string): Promise<void> {
    const c = this.procs.get(route);
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    process.kill(c.pid!, 'SIGTERM');
    await exited;
  }

  pause(route: string): void {
    const c = this.procs.get(route);
    if (!c?.pid || c.exitCode !== null) return;
    this.paused.add(c);
    process.kill(c.pid, 'SIGSTOP');
  }

  resume(route: string): void {
    const c = this.procs.get(route);
    if (!c?.pid || !this.paused.has(c)) return;
    this.paused.delete(c);
    process.kill(c.pid, 'SIGCONT');
  }

  /** SIGKILL (after SIGCONT, for a paused one) every process started here, by PID; removes the temp dir. */
  async destroy(): Promise<void> {
    this.destroyed = true;
    const waits: Promise<unknown>[] = [];
    for (const c of this.all) {
      if (c.exitCode !== null || c.signalCode !== null || !c.pid) continue;
      waits.push(new Promise((r) => c.once('exit', r)));
      try {
        if (this.paused.has(c)) process.kill(c.pid, 'SIGCONT');
        process.kill(c.pid, 'SIGKILL');
      } catch {
        // already gone between the check and the kill
      }
    }
    await Promise.all(waits);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
