import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseBalancerConfig } from '../config/load.js';
import { BalancerServer } from '../proxy/balancer-server.js';
import { createLogger, LogOutputs, type LogFormat } from '../util/logger.js';
import { MethodRegistry } from '../balancer/methods/index.js';
import { createManager } from '../manager/start.js';
import type { ManagerServer } from '../manager/manager-server.js';

/** Package root (bin/, examples/), from dist/src/cli/. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface DemoOptions {
  /** Balancer port; nodes use port+1.. and cluster ports 4001.. (or port-4079 offsets). */
  readonly port: number;
  readonly nodes?: number;
  /** Restart a node that died, after this many seconds (0 = never). */
  readonly restartAfter?: number;
  /** Log lines of the balancer and the nodes: human-readable on a terminal unless `json` (docs/configuration.md). */
  readonly logFormat?: LogFormat;
}

interface DemoNode {
  readonly route: string;
  readonly httpPort: number;
  readonly clusterPort: number;
  child: ChildProcess | undefined;
  restarting: boolean;
}

/** Whether a child is still running: a child killed by a signal has exitCode null too, but signalCode set. */
function running(c: ChildProcess | undefined): c is ChildProcess & { pid: number } {
  return !!c && c.pid !== undefined && c.exitCode === null && c.signalCode === null;
}

/** Sends `signal` to a child we started; one that died in between is no error. */
function signalChild(c: ChildProcess | undefined, signal: NodeJS.Signals): void {
  if (!running(c)) return;
  try {
    process.kill(c.pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function waitReady(url: string, deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return true;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/**
 * `cohort demo`: the httpd + Tomcat tutorial in one command — a balancer on
 * 127.0.0.1:8080 in front of three nodes (tc1, tc2, tc3) replicating sessions
 * with a generated secret, running the demo app.
 */
export async function runDemo(opts: DemoOptions): Promise<void> {
  const started = Date.now();
  const count = opts.nodes ?? 3;
  const restartAfter = opts.restartAfter ?? 5;
  const dir = mkdtempSync(join(tmpdir(), 'cohort-demo-'));
  const secretFile = join(dir, 'cluster.secret');
  writeFileSync(secretFile, randomBytes(32).toString('base64'), { mode: 0o600 });
  // 8080 → cluster ports 4001..; other balancer ports keep the same offset (or sit 1000 above a low port)
  const clusterBase = opts.port >= 5104 ? 4000 + (opts.port - 8080) : opts.port + 1000;
  const nodes: DemoNode[] = Array.from({ length: count }, (_, i) => ({
    route: `tc${i + 1}`,
    httpPort: opts.port + 1 + i,
    clusterPort: clusterBase + 1 + i,
    child: undefined,
    restarting: false,
  }));
  let stopping = false;
  let server: BalancerServer | undefined;
  let manager: ManagerServer | undefined;
  // Installed before anything starts: Ctrl-C during start-up, or a start-up failure, stops what did start.
  const stop = (code: number): Promise<void> => {
    if (stopping) return new Promise(() => {});
    stopping = true;
    process.stdout.write('\nStopping...\n');
    for (const n of nodes) signalChild(n.child, 'SIGTERM');
    const killTimer = setTimeout(() => {
      for (const n of nodes) signalChild(n.child, 'SIGKILL');
    }, 5000);
    return Promise.all([
      server?.close(2000),
      manager?.close(),
      ...nodes.map((n) => (running(n.child) ? new Promise((r) => n.child!.once('exit', r)) : Promise.resolve())),
    ]).finally(() => {
      clearTimeout(killTimer);
      rmSync(dir, { recursive: true, force: true });
      process.exit(code);
    }) as Promise<never>;
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));
  const appPath = join(ROOT, 'examples', 'demo-app.mjs');
  const startNode = (n: DemoNode) => {
    const args = [join(ROOT, 'bin', 'cohort.js'), 'node', '--route', n.route, '--listen', `127.0.0.1:${n.httpPort}`, '--app', appPath,
      '--cluster-listen', `127.0.0.1:${n.clusterPort}`, '--secret-file', secretFile, '--log-level', 'warn', '--no-resave', '--no-save-uninitialized', ...(opts.logFormat ? ['--log-format', opts.logFormat] : [])];
    for (const o of nodes) if (o !== n) args.push('--member', `127.0.0.1:${o.clusterPort}`);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    n.child = child;
    child.on('exit', (code, signal) => {
      if (stopping) return;
      process.stdout.write(`\n[demo] node ${n.route} (pid ${child.pid}) exited (${signal ?? `code ${code}`}); the balancer fails its users over to the other nodes.\n`);
      if (restartAfter > 0 && !n.restarting) {
        n.restarting = true;
        process.stdout.write(`[demo] restarting ${n.route} in ${restartAfter} s — it will receive the sessions (state transfer) before it takes traffic.\n`);
        setTimeout(() => {
          n.restarting = false;
          if (stopping) return;
          startNode(n);
          void waitReady(`http://127.0.0.1:${n.httpPort}/.cohort/health`, 30_000).then((ok) => {
            if (ok && !stopping) process.stdout.write(`[demo] ${n.route} is back (pid ${n.child?.pid}) and ready.\n`);
          });
        }, restartAfter * 1000).unref();
      }
    });
  };
  process.stdout.write(`Starting ${count} nodes and the balancer...\n`);
  try {
    await startAll();
  } catch (err) {
    process.stderr.write(`cohort demo: ${(err as Error).message}\n`);
    await stop(1);
  }

  async function startAll(): Promise<void> {
    for (const n of nodes) startNode(n);

    const cfg = parseBalancerConfig({
      listen: `127.0.0.1:${opts.port}`,
      balancers: [{
        name: 'tccluster',
        method: 'byrequests',
        stickysession: 'JSESSIONID|jsessionid',
        maxattempts: 2,
        members: nodes.map((n) => ({ route: n.route, url: `http://127.0.0.1:${n.httpPort}`, retry: 5 })),
        hcheck: { path: '/.cohort/health', interval: 1, timeout: 1, rise: 1, fall: 2 },
      }],
      mounts: [{ path: '/examples', balancer: 'tccluster', upstream: '/examples' }],
      accesslog: false,
      // The manager and dashboard on their own loopback listener, with a generated password.
      manager: { listen: `127.0.0.1:${opts.port + 10}`, passwordfile: join(dir, 'manager-password') },
      // The balancer joins the cluster's membership too, so the dashboard shows the nodes' view.
      cluster: { listen: `127.0.0.1:${clusterBase}`, secretFile, members: nodes.map((n) => `127.0.0.1:${n.clusterPort}`) },
    });
    const log = createLogger('cohort-demo', 'warn', new LogOutputs().open(2, opts.logFormat));
    const methods = new MethodRegistry();
    server = new BalancerServer(cfg, { log, methods, onFinish: (e) => manager?.onFinish(e) });
    const managerLines: string[] = [];
    manager = await createManager(server, cfg, undefined, log, methods, (l) => managerLines.push(l));
    // The nodes first (state transfer, ready), then the balancer: its health checks find them ready.
    const ready = await Promise.all(nodes.map((n) => waitReady(`http://127.0.0.1:${n.httpPort}/.cohort/health`, 20_000)));
    const managerAddr = await manager!.start();
    const [addr] = await server.start();
    if (stopping) return;
    const base = addr!.url;
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    process.stdout.write([
      '',
      `Cohort demo is running (${ready.filter(Boolean).length}/${count} nodes ready in ${secs} s).`,
      `  which node answered:  curl ${base}/examples/instance.txt     (repeat it: tc1, tc2, tc3, ...)`,
      `  a session counter:    curl -c /tmp/cj -b /tmp/cj ${base}/examples/counter`,
      `  why that node:        curl -H 'X-Cohort-Explain: 1' -i -b /tmp/cj ${base}/examples/counter`,
      `  in a browser:         ${base}/examples/`,
      `  balancer manager:     ${managerAddr.url.replace(/\/$/, '')}/     dashboard: ${managerAddr.url.replace(/\/$/, '')}/dashboard`,
      ...managerLines.map((l) => `  ${l.trim()}`),
      '',
      'Kill the node that owns your session and keep counting — the count continues on another node:',
      ...nodes.map((n) => `  ${n.route}: pid ${n.child?.pid}   kill -9 ${n.child?.pid}     (http://127.0.0.1:${n.httpPort}, cluster 127.0.0.1:${n.clusterPort})`),
      restartAfter > 0 ? `A killed node is restarted after ${restartAfter} s and receives the sessions before it takes traffic.` : '',
      'Press Ctrl-C to stop everything.',
      '',
    ].join('\n'));
  }

}
