/**
 * Child-process entry: one BalancerServer alone in its process, so that its
 * heap, RSS and file descriptors can be measured without the load generator.
 * Run with `node --expose-gc balancer-proc.js`; talks to the parent over IPC:
 *   parent → {type:'stats', gc:boolean}   child → {type:'stats', stats}
 *   parent → {type:'stop'}                child destroys the balancer and exits 0
 * The config comes as JSON in COHORT_CHAOS_BALANCER_CONFIG.
 */
import { readdirSync } from 'node:fs';
import { parseBalancerConfig } from '../src/config/load.js';
import { BalancerServer } from '../src/proxy/balancer-server.js';
import { MethodRegistry } from '../src/balancer/methods/index.js';
import { createManager } from '../src/manager/start.js';
import type { ManagerServer } from '../src/manager/manager-server.js';
import { silentLogger } from '../src/util/logger.js';

/** Memory and descriptors of this process. */
export interface ProcStats {
  readonly heapUsed: number;
  readonly rss: number;
  readonly fds: number;
  readonly gc: boolean;
  readonly snapshot: unknown;
}

async function main(): Promise<void> {
  if (!process.send) throw new Error('balancer-proc must be started with an IPC channel');
  const cfg = parseBalancerConfig(JSON.parse(process.env['COHORT_CHAOS_BALANCER_CONFIG'] ?? '{}'));
  const methods = new MethodRegistry();
  let manager: ManagerServer | undefined;
  const server = new BalancerServer(cfg, { methods, ...(cfg.manager ? { onFinish: (e) => manager?.onFinish(e) } : {}) });
  // With a `manager` section (the rolling profile drives drain/disable through its API), no state file.
  manager = await createManager(server, cfg, undefined, silentLogger(), methods, () => undefined);
  const managerUrl = manager ? (await manager.start()).url : undefined;
  const [addr] = await server.start();
  const stats = (forceGc: boolean): ProcStats => {
    const g = (globalThis as { gc?: () => void }).gc;
    if (forceGc && g) {
      g();
      g();
    }
    const m = process.memoryUsage();
    return { heapUsed: m.heapUsed, rss: m.rss, fds: readdirSync('/proc/self/fd').length, gc: forceGc && !!g, snapshot: server.snapshot() };
  };
  process.on('message', (msg: { type: string; gc?: boolean }) => {
    if (msg.type === 'stats') process.send!({ type: 'stats', stats: stats(msg.gc === true) });
    else if (msg.type === 'stop') void Promise.all([server.destroy(), manager?.destroy()]).then(() => process.exit(0));
  });
  // The parent's death must not leave the balancer behind.
  process.on('disconnect', () => void Promise.all([server.destroy(), manager?.destroy()]).then(() => process.exit(0)));
  process.send({ type: 'ready', url: addr!.url, port: addr!.port, manager: managerUrl });
}

main().catch((err) => {
  process.stderr.write(`balancer-proc: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
