/**
 * Real cluster processes for end-to-end tests: `cohort node` children on
 * free loopback ports with a shared secret in a temp dir. Everything started
 * here is killed by PID and the temp dir removed by `stopAll()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { freePort } from './ports.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BIN = join(ROOT, 'bin', 'cohort.js');
export const DEMO_APP = join(ROOT, 'examples', 'demo-app.mjs');

export { freePort };

export interface NodeSpec {
  readonly route: string;
  readonly httpPort: number;
  readonly clusterPort: number;
}

export interface RunningNode extends NodeSpec {
  child: ChildProcess;
  readonly url: string;
  stderr: string;
}

/** A `cohort balancer --config FILE` child process. */
export interface RunningBalancer {
  readonly child: ChildProcess;
  readonly configFile: string;
  /** The front listener, e.g. http://127.0.0.1:41234 (from the "listening on" line). */
  readonly url: string;
  /** The manager's base URL (e.g. http://127.0.0.1:41235), when the config has a `manager:` section. */
  readonly manager: string | undefined;
  stderr: string;
}

export class TestCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'cohort-e2e-'));
  readonly secretFile = join(this.dir, 'secret');
  readonly specs: NodeSpec[] = [];
  readonly nodes = new Map<string, RunningNode>();
  private readonly children = new Set<ChildProcess>();
  private balancerSeq = 0;

  constructor(readonly extraArgs: readonly string[] = []) {
    writeFileSync(this.secretFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  }

  async define(routes: readonly string[]): Promise<NodeSpec[]> {
    for (const route of routes) this.specs.push({ route, httpPort: await freePort(), clusterPort: await freePort() });
    return this.specs;
  }

  spec(route: string): NodeSpec {
    const s = this.specs.find((x) => x.route === route);
    if (!s) throw new Error(`no node ${route}`);
    return s;
  }

  /** Starts (or restarts) a node; resolves when its health says ready. */
  async start(route: string, app = DEMO_APP, extra: readonly string[] = []): Promise<RunningNode> {
    const s = this.spec(route);
    const args = [BIN, 'node', '--route', s.route, '--listen', `127.0.0.1:${s.httpPort}`, '--app', app,
      '--cluster-listen', `127.0.0.1:${s.clusterPort}`, '--secret-file', this.secretFile, '--log-level', 'warn', ...this.extraArgs, ...extra];
    for (const o of this.specs) if (o !== s) args.push('--member', `127.0.0.1:${o.clusterPort}`);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    const node: RunningNode = { ...s, child, url: `http://127.0.0.1:${s.httpPort}`, stderr: '' };
    child.stderr!.on('data', (d: Buffer) => {
      node.stderr += d.toString();
      if (node.stderr.length > 100_000) node.stderr = node.stderr.slice(-50_000);
    });
    this.nodes.set(route, node);
    await waitFor(async () => (await health(node.url))?.ready === true, 20_000, `node ${route} ready (stderr: ${node.stderr.slice(-500)})`);
    return node;
  }

  /**
   * Starts `cohort balancer --config <dir>/balancer-N.yaml` as a child process
   * (killed by `stopAll()`). `listen` should be `127.0.0.1:0` (and the
   * manager's too): the ports are read from the balancer's stderr lines
   * "cohort balancer listening on URL" / "cohort balancer manager on URL".
   */
  async startBalancer(config: Record<string, unknown>): Promise<RunningBalancer> {
    const configFile = join(this.dir, `balancer-${this.balancerSeq++}.yaml`);
    writeFileSync(configFile, stringify(config));
    const child = spawn(process.execPath, [BIN, 'balancer', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.length > 100_000) stderr = stderr.slice(-50_000);
    });
    const wantManager = config['manager'] !== undefined && config['manager'] !== false;
    let front: string | undefined;
    let manager: string | undefined;
    await waitFor(() => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`cohort balancer exited (${child.exitCode ?? child.signalCode}): ${stderr.slice(-2000)}`);
      front = /cohort balancer listening on (http:\/\/\S+)/.exec(stderr)?.[1];
      manager = /cohort balancer manager on (https?:\/\/[^/\s]+)/.exec(stderr)?.[1];
      return front !== undefined && (!wantManager || manager !== undefined);
    }, 20_000, 'cohort balancer to listen').catch((err: Error) => {
      throw new Error(`${err.message} (stderr: ${stderr.slice(-2000)})`);
    });
    const running: RunningBalancer = { child, configFile, url: front!, manager, stderr };
    child.stderr!.on('data', () => { running.stderr = stderr; });
    return running;
  }

  /** SIGKILL, and wait for the process to be gone. */
  async kill(route: string): Promise<void> {
    const n = this.nodes.get(route);
    if (!n || n.child.exitCode !== null || n.child.signalCode !== null) return;
    const exited = new Promise((r) => n.child.once('exit', r));
    process.kill(n.child.pid!, 'SIGKILL');
    await exited;
  }

  async stopAll(): Promise<void> {
    const waits: Promise<unknown>[] = [];
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null && c.pid) {
        waits.push(new Promise((r) => c.once('exit', r)));
        process.kill(c.pid, 'SIGKILL');
      }
    }
    await Promise.all(waits);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function health(url: string): Promise<{ ready: boolean; sessions?: number; members: { route: string; state: string }[] } | undefined> {
  try {
    const r = await fetch(`${url}/.cohort/health`, { signal: AbortSignal.timeout(1000) });
    return (await r.json()) as never;
  } catch {
    return undefined;
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A tiny cookie jar for one virtual user. */
export class CookieJar {
  cookie: string | undefined;
  update(setCookie: string | string[] | null | undefined): void {
    const list = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
    for (const sc of list) {
      const m = /^JSESSIONID=([^;]*)/.exec(sc);
      if (m) this.cookie = `JSESSIONID=${m[1]}`;
    }
  }
  get route(): string | undefined {
    return this.cookie ? /\.([^.;]+)$/.exec(this.cookie)?.[1] : undefined;
  }
}
