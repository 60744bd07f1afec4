/**
 * The process plumbing of `cohort balancer --workers N` (docs/balancer.md "Every core"):
 * the node:cluster primary runs the state owner, the manager and the signal
 * handling; each forked worker runs one engine. The decisions live in
 * src/balancer/workers/, the engines in src/proxy/workers/.
 */
import type { BalancerConfig } from '../config/balancer-schema.js';
import { loadBalancerConfig } from '../config/load.js';
import { createLogger } from '../util/logger.js';
import { createManager } from '../manager/start.js';
import type { ManagerServer } from '../manager/manager-server.js';
import { MethodRegistry } from '../balancer/methods/index.js';
import type { BalancerServer } from '../proxy/balancer-server.js';
import { StateOwner, WORKER_START_FAILED } from '../proxy/workers/state-owner.js';
import { WorkerEngine } from '../proxy/workers/worker-engine.js';
import type { ToWorker } from '../proxy/workers/messages.js';
import type { AccessLog } from '../proxy/access-log.js';

/** What the plumbing needs of the command line (kept apart from balancer-command.ts: no import cycle). */
export interface WorkersCliOptions {
  readonly config?: string | undefined;
  readonly workers?: string | undefined;
}

/** The primary: owns member state, leases, health checks and the manager; forks the workers. */
export async function runStateOwner(opts: WorkersCliOptions, cfg: BalancerConfig): Promise<BalancerServer> {
  const log = createLogger('cohort-balancer', cfg.loglevel as never, 2);
  const methods = new MethodRegistry();
  let manager: ManagerServer | undefined;
  const owner = new StateOwner(cfg, {
    workers: cfg.workers,
    log,
    server: { methods },
    onFinish: (e) => manager?.onFinish(e),
    onReady: (urls) => {
      log.info({ workers: cfg.workers, listen: urls }, 'balancer started');
      for (const u of urls) process.stderr.write(`cohort balancer listening on ${u} (${cfg.workers} workers)\n`);
    },
  });
  let started = false;
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) {
      process.stderr.write(`cohort balancer: ${sig} again, stopping now\n`);
      process.exit(1);
    }
    stopping = true;
    log.info({ signal: sig }, 'shutting down: the workers finish their in-flight requests');
    void Promise.all([owner.close(), manager?.close()]).then(() => {
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
      if (next.workers !== cfg.workers && opts.workers === undefined) log.warn({ workers: next.workers, running: cfg.workers }, 'workers changed in the config: takes effect at the next start');
      void owner.reload(next).then(() => manager?.applyPersistedState()).catch((err) => log.error({ err }, 'reload failed; keeping the previous configuration'));
    } catch (err) {
      log.error({ err: (err as Error).message }, 'reload refused: invalid configuration; keeping the previous one');
    }
  });
  manager = await createManager(owner.server, cfg, opts.config, log, methods);
  if (manager) {
    const m = await manager.start();
    process.stderr.write(`cohort balancer manager on ${m.url}\n`);
  }
  await owner.start();
  started = true;
  return owner.server;
}

/** A worker: one engine on the shared listeners, driven by the owner's messages. */
export async function runWorkerProcess(cfg: BalancerConfig, resolve: () => BalancerConfig, accessLog: AccessLog | undefined): Promise<BalancerServer> {
  const index = process.env['cohortWorkerIndex'] ?? '?';
  const log = createLogger('cohort-balancer', cfg.loglevel as never, 2).child({ worker: index });
  let exiting = false;
  const exitAfterDrain = () => {
    if (exiting) return;
    exiting = true;
    void engine.drain().then(() => {
      log.flush();
      // The last stats message must reach the owner before the channel closes.
      setImmediate(() => {
        if (process.connected) process.disconnect();
      });
      setTimeout(() => process.exit(0), 200).unref();
    });
  };
  const engine = new WorkerEngine(cfg, {
    send: (m) => {
      if (process.connected) process.send!(m);
    },
    loadConfig: resolve,
    fatal: (err) => {
      log.error({ err }, 'worker engine could not start');
      log.flush();
      setImmediate(() => process.exit(WORKER_START_FAILED));
    },
  }, log, { methods: new MethodRegistry(), ...(accessLog ? { accessLog } : {}) });
  process.on('message', (m: ToWorker) => {
    engine.handle(m);
    if (m.t === 'drain') exitAfterDrain();
  });
  // The owner coordinates reloads and stops; a signal sent to the whole process group drains this worker too.
  process.on('SIGHUP', () => undefined);
  process.on('SIGTERM', exitAfterDrain);
  process.on('SIGINT', exitAfterDrain);
  // The owner died: nothing coordinates this engine any more.
  process.on('disconnect', exitAfterDrain);
  engine.begin();
  return engine.server;
}
