import { readFileSync } from 'node:fs';
import cluster from 'node:cluster';
import { ConfigError } from '../errors.js';
import { loadBalancerConfig, parseBalancerConfig } from '../config/load.js';
import type { BalancerConfig } from '../config/balancer-schema.js';
import { BalancerServer } from '../proxy/balancer-server.js';
import { createLogger, LogOutputs, type LogFormat } from '../util/logger.js';
import { configFileFrom } from './check-config.js';
import type { Logger } from 'pino';
import { BalancerPhase, BalancerStatusServer } from '../status/balancer-status.js';
import { ErrorProber } from '../probe/error-prober.js';
import { systemClock } from '../util/clock.js';
import { BufferedAccessLog } from '../proxy/access-log.js';
import { createManager } from '../manager/start.js';
import type { ManagerServer } from '../manager/manager-server.js';
import { MethodRegistry } from '../balancer/methods/index.js';
import { fleetPathFor, startFleet } from '../fleet/start.js';
import type { FleetSync } from '../fleet/fleet-sync.js';
import type { FinishedExchange } from '../proxy/forward.js';
import type { StateOwner } from '../proxy/workers/state-owner.js';

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
  /** Quick mode: serve /metrics, /health and /live on this host:port. */
  status?: string;
  /** Append the log here (reopened on SIGUSR2) instead of stderr. */
  logFile?: string;
  logFormat?: LogFormat;
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
    ...(opts.status ? { status: { listen: opts.status } } : {}),
  });
}

export function resolveBalancerConfig(opts: BalancerCliOptions): BalancerConfig {
  if (opts.config) {
    const cfg = loadBalancerConfig(opts.config);
    if (opts.accessLog === false) cfg.accesslog = false;
    if (opts.status) cfg.status = { listen: opts.status, from: cfg.status?.from ?? [] };
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
/**
 * The access log: the engine's buffered writer (src/proxy/access-log.ts). A file is checked at start like
 * every log file (a ConfigError naming `accesslog.path`) and reopened with the others on SIGUSR2.
 */
function accessLogger(cfg: BalancerConfig, outputs: LogOutputs): BufferedAccessLog | undefined {
  if (cfg.accesslog === false) return undefined;
  if (cfg.accesslog === true) return new BufferedAccessLog(1, 'json');
  const dest = cfg.accesslog.path ?? 1;
  if (typeof dest === 'string') outputs.check(dest, 'accesslog.path');
  const log = new BufferedAccessLog(dest, cfg.accesslog.format);
  if (typeof dest === 'string') outputs.onReopen(dest, () => log.reopen());
  return log;
}

type FinishHook = (e: FinishedExchange) => void;

/** One onFinish for the manager and the status listener (undefined when neither: the proxy then skips the call). */
function finishHook(a: FinishHook | undefined, b: FinishHook | undefined): FinishHook | undefined {
  if (a && b) return (e) => {
    a(e);
    b(e);
  };
  return a ?? b;
}

/**
 * `cohort balancer`: runs until SIGTERM/SIGINT; SIGHUP reloads the config
 * file; SIGUSR2 reopens the log files (`--log-file`, `accesslog.path`).
 */
export async function runBalancer(options: BalancerCliOptions): Promise<BalancerServer> {
  const opts = { ...options, config: configFileFrom(options.config) };
  const cfg = resolveBalancerConfig(opts);
  let log: Logger | undefined;
  const outputs = new LogOutputs((message, err) => {
    process.stderr.write(`cohort balancer: ${message}: ${err.message}\n`);
    log?.warn({ err: err.message }, message);
  });
  const workers = workersOf(opts, cfg);
  if (workers > 1 && cluster.isWorker) {
    // A worker of `--workers N`: one engine, driven by the state owner (the primary) — docs/balancer.md "Every core".
    const { runWorkerProcess } = await import('./balancer-workers.js');
    const accessLog = accessLogger(cfg, outputs);
    process.on('SIGUSR2', () => outputs.reopen());
    return runWorkerProcess(cfg, () => resolveBalancerConfig(opts), accessLog, createLogger('cohort-balancer', cfg.loglevel as never, outputs.open(opts.logFile ?? 2, opts.logFormat)));
  }
  log = createLogger('cohort-balancer', cfg.loglevel as never, outputs.open(opts.logFile ?? 2, opts.logFormat));
  let manager: ManagerServer | undefined;
  let fleet: FleetSync | undefined;
  const methods = new MethodRegistry();
  let started = false;
  let stopping = false;
  let prober: ErrorProber | undefined;
  const phase = () => (stopping ? BalancerPhase.Stopping : started ? BalancerPhase.Serving : BalancerPhase.Starting);
  const status = cfg.status ? new BalancerStatusServer(cfg.status, { balancers: () => server.balancers.values(), phase }) : undefined;
  const onFinish = finishHook(cfg.manager ? (e) => manager?.onFinish(e) : undefined, status?.observe);
  // One engine here, or (workers > 1) the state owner: member state, leases, health checks, manager; the engines
  // run in forked workers. Loaded only then: a single engine runs none of the workers code.
  let owner: StateOwner | undefined;
  let server: BalancerServer;
  if (workers > 1) {
    cfg.workers = workers;
    const { StateOwner: Owner } = await import('../proxy/workers/state-owner.js');
    owner = new Owner(cfg, {
      workers, log, server: { methods }, ...(onFinish ? { onFinish } : {}),
      onReady: (urls) => {
        log!.info({ workers, listen: urls }, 'balancer started');
        for (const u of urls) process.stderr.write(`cohort balancer listening on ${u} (${workers} workers)\n`);
      },
    });
    server = owner.server;
  } else {
    server = new BalancerServer(cfg, { log, methods, accessLog: accessLogger(cfg, outputs), ...(onFinish ? { onFinish } : {}) });
  }
  // Signal handlers go in before anything listens: a SIGHUP that arrives just after the
  // "listening" line must reload, not kill the process (SIGHUP's default action).
  const stop = (sig: string) => {
    if (stopping) {
      process.stderr.write(`cohort balancer: ${sig} again, stopping now\n`);
      process.exit(1);
    }
    stopping = true;
    fleet?.stop();
    log.info({ signal: sig }, 'shutting down: finishing in-flight requests');
    prober?.close();
    void Promise.all([owner ? owner.close() : server.close(), manager?.close(), status?.close()]).then(() => {
      log.flush();
      setImmediate(() => process.exit(0));
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGUSR2', () => {
    outputs.reopen();
    owner?.signalWorkers('SIGUSR2');
    log.info({ files: outputs.files() }, 'SIGUSR2: log files reopened');
  });
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
      if (owner && next.workers !== workers && opts.workers === undefined) log.warn({ workers: next.workers, running: workers }, 'workers changed in the config: takes effect at the next start');
      void (owner ? owner.reload(next) : server.reload(next)).then(() => manager?.applyPersistedState()).catch((err) => log.error({ err }, 'reload failed; keeping the previous configuration'));
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
  if (status) process.stderr.write(`cohort balancer status (/metrics, /health, /live) on ${await status.start()}\n`);
  const addrs = await (owner ? owner.start().then(() => []) : server.start()).catch(async (err) => {
    await manager?.destroy();
    status?.destroy();
    throw err;
  });
  // Balancers that joined the cluster share the manager's changes and the failures they see (docs/fleet.md).
  fleet = await startFleet(server, manager, methods, log, opts.config !== undefined && cfg.persist ? fleetPathFor(opts.config) : undefined);
  // Quick recovery of members that failed without a health check (docs/balancer.md, "Recovery without a health check").
  prober = cfg.errorprobe === false ? undefined : new ErrorProber(cfg.errorprobe, () => server.balancers.values(), systemClock, log,
    { rejectUnauthorized: cfg.upstreamtls.rejectunauthorized, ca: cfg.upstreamtls.ca === undefined ? undefined : readFileSync(cfg.upstreamtls.ca, 'utf8') });
  prober?.start();
  started = true;
  for (const a of addrs) process.stderr.write(`cohort balancer listening on ${a.url}\n`);
  return server;
}
