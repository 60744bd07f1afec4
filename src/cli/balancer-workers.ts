/**
 * The process plumbing of a worker of `cohort balancer --workers N` (docs/balancer.md "Every core"):
 * each forked worker runs one engine. The node:cluster primary runs the state owner, the manager
 * and the signal handling in runBalancer (balancer-command.ts), as a single engine does. The decisions live in
 * src/balancer/workers/, the engines in src/proxy/workers/.
 */
import type { BalancerConfig } from '../config/balancer-schema.js';
import { MethodRegistry } from '../balancer/methods/index.js';
import type { BalancerServer } from '../proxy/balancer-server.js';
import { WORKER_START_FAILED } from '../proxy/workers/state-owner.js';
import { WorkerEngine } from '../proxy/workers/worker-engine.js';
import type { ToWorker } from '../proxy/workers/messages.js';
import type { AccessLog } from '../proxy/access-log.js';
import type { Logger } from 'pino';

/** A worker: one engine on the shared listeners, driven by the owner's messages. */
export async function runWorkerProcess(cfg: BalancerConfig, resolve: () => BalancerConfig, accessLog: AccessLog | undefined, processLog: Logger): Promise<BalancerServer> {
  const index = process.env['cohortWorkerIndex'] ?? '?';
  const log = processLog.child({ worker: index });
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
