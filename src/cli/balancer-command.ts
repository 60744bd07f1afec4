import cluster from 'node:cluster';
import { ConfigError } from '../errors.js';
import { loadBalancerConfig, parseBalancerConfig } from '../config/load.js';
import type { BalancerConfig } from '../config/balancer-schema.js';
import { BalancerServer } from '../proxy/balancer-server.js';
import { createLogger } from '../util/logger.js';
import { BufferedAccessLog } from '../proxy/access-log.js';
import { createManager } from '../manager/start.js';
import type { ManagerServer } from '../manager/manager-server.js';
import { MethodRegistry } from '../balancer/methods/index.js';

export interface BalancerCliOptions {
  config?: string;
  listen?: string[];
  member?: string[];
  method?: string;
  stickysession?: string;
  logLevel?: string;
  accessLog?: boolean;
  /** Quick mode: serve the balancer manager on this host:port. */
  manager?: string;
  /** Engines sharing the listeners and member state (overrides the config's `workers`). */
  workers?: string;
}

/** Builds the quick-mode config: `--member tc1=http://127.0.0.1:8081`, sticky on JSESSIONID|jsessionid, byrequests, mounted at /. */
export function quickConfig(opts: BalancerCliOptions): BalancerConfig {
  const members = (opts.member ?? []).map((m, i) => {
    const eq = m.indexOf('=');
    if (eq <= 0) throw new ConfigError(undefined, [`--member[${i}]: expected ROUTE=URL, e.g. tc1=http://127.0.0.1:8081, got "${m}"`]);
    return { route: m.slice(0, eq), url: m.slice(eq + 1) };
  });
  if (members.length === 0) throw new ConfigError(undefined, ['--member: expected at least one --member ROUTE=URL (or --config FILE)']);
  return parseBalancerConfig({
    listen: opts.listen && opts.listen.length > 0 ? (opts.listen.length === 1 ? opts.listen[0] : opts.listen) : undefined,
    balancers: [{ name: 'default', method: opts.method ?? 'byrequests', stickysession: opts.stickysession ?? 'JSESSIONID|jsessionid', members }],
    mounts: [{ path: '/', balancer: 'default' }],
    ...(opts.logLevel ? { loglevel: opts.logLevel } : {}),
    ...(opts.accessLog === false ? { accesslog: false } : {}),
    ...(opts.manager ? { manager: { listen: opts.manager } } : {}),
  });
}

export function resolveBalancerConfig(opts: BalancerCliOptions): BalancerConfig {
  if (opts.config) {
    const cfg = loadBalancerConfig(opts.config);
    if (opts.accessLog === false) cfg.accesslog = false;
    return cfg;
  }
  return quickConfig(opts);
}

/** `--workers N` over the config's `workers` key. */
function workersOf(opts: BalancerCliOptions, cfg: BalancerConfig): number {
  if (opts.workers === undefined) return cfg.workers;
  const n = Number(opts.workers);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new ConfigError(undefined, [`--workers: expected an integer 1..64, got "${opts.workers}"`]);
  return n;
}

function accessLogger(cfg: BalancerConfig): BufferedAccessLog | undefined {
  if (cfg.accesslog === false) return undefined;
  if (cfg.accesslog === true) return new BufferedAccessLog(1, 'json');
  return new BufferedAccessLog(cfg.accesslog.path ?? 1, cfg.accesslog.format);
}

/** `cohort balancer`: runs until SIGTERM/SIGINT; SIGHUP reloads the config file. */
export async function runBalancer(opts: BalancerCliOptions): Promise<BalancerServer> {
  const cfg = resolveBalancerConfig(opts);
  const workers = workersOf(opts, cfg);
  if (workers > 1) {
    cfg.workers = workers;
    // Loaded only here: a single engine runs none of the workers code.
    const { runStateOwner, runWorkerProcess } = await import('./balancer-workers.js');
    return cluster.isPrimary ? runStateOwner(opts, cfg) : runWorkerProcess(cfg, () => resolveBalancerConfig(opts), accessLogger(cfg));
  }
  const log = createLogger('cohort-balancer', cfg.loglevel as never, 2);
  let manager: ManagerServer | undefined;
  const methods = new MethodRegistry();
  const server = new BalancerServer(cfg, { log, methods, accessLog: accessLogger(cfg), ...(cfg.manager ? { onFinish: (e) => manager?.onFinish(e) } : {}) });
  // Signal handlers go in before anything listens: a SIGHUP that arrives just after the
  // "listening" line must reload, not kill the process (SIGHUP's default action).
  let started = false;
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) {
      process.stderr.write(`cohort balancer: ${sig} again, stopping now\n`);
      process.exit(1);
    }
    stopping = true;
    log.info({ signal: sig }, 'shutting down: finishing in-flight requests');
    void Promise.all([server.close(), manager?.close()]).then(() => {
      log.flush();
      setImmediate(() => process.exit(0));
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    if (!opts.config) {
      log.warn('SIGHUP ignored: no --config file to reload');
      return;
    }
    if (!started || stopping) {
      log.warn('SIGHUP ignored: the balancer is not running (starting or stopping)');
      return;
    }
    try {
      const next = loadBalancerConfig(opts.config);
      void server.reload(next).then(() => manager?.applyPersistedState()).catch((err) => log.error({ err }, 'reload failed; keeping the previous configuration'));
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reload refused: invalid configuration; keeping the previous one');
    }
  });
  // The manager starts first so that saved changes are in place before traffic flows.
  manager = await createManager(server, cfg, opts.config, log, methods);
  if (manager) {
    const m = await manager.start();
    process.stderr.write(`cohort balancer manager on ${m.url}\n`);
  }
  const addrs = await server.start().catch(async (err) => {
    await manager?.destroy();
    throw err;
  });
  started = true;
  for (const a of addrs) process.stderr.write(`cohort balancer listening on ${a.url}\n`);
  return server;
}
