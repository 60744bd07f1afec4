import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBalancerConfig } from '../../src/config/load.js';
import type { BalancerConfigInput, ManagerSpec } from '../../src/config/balancer-schema.js';
import { BalancerServer } from '../../src/proxy/balancer-server.js';
import { ManagerServer } from '../../src/manager/manager-server.js';
import { hashPassword } from '../../src/manager/password.js';
import type { DashboardSource } from '../../src/manager/dashboard-source.js';

/** A loopback backend that answers with its route and counts hits. */
export interface Backend {
  readonly route: string;
  readonly url: string;
  hits: number;
  close(): Promise<void>;
}

export async function startBackend(route: string, delayMs = 0): Promise<Backend> {
  const b = { route, url: '', hits: 0, close: async () => {} } as Backend;
  const server = http.createServer((req, res) => {
    b.hits++;
    req.resume();
    const answer = () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${route}\n`);
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  (b as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  b.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return b;
}

export const PASSWORD = 'correct horse battery staple';
export const TOKEN = 'test-token-0123456789abcdef';
let cachedHash: Promise<string> | undefined;
/** A cheap scrypt hash (low N) so tests stay fast. */
export function testHash(): Promise<string> {
  cachedHash ??= hashPassword(PASSWORD, { N: 1024 });
  return cachedHash;
}

export interface Stack {
  readonly balancer: BalancerServer;
  readonly manager: ManagerServer;
  /** Balancer front URL. */
  readonly front: string;
  /** Manager origin, e.g. http://127.0.0.1:12345 */
  readonly origin: string;
  readonly base: string;
  close(): Promise<void>;
}

export async function startStack(opts: {
  backends: readonly Backend[];
  statePath?: string;
  managerExtra?: Partial<ManagerSpec>;
  configExtra?: Partial<BalancerConfigInput>;
  /** Extra keys for the balancer's config section (e.g. hcheck). */
  balancerExtra?: Record<string, unknown>;
  sampleIntervalMs?: number;
  sources?: readonly DashboardSource[];
}): Promise<Stack> {
  const cfg = parseBalancerConfig({
    listen: '127.0.0.1:0',
    accesslog: false,
    balancers: [{ name: 'tc', slowstart: 0, ...opts.balancerExtra, members: opts.backends.map((b) => ({ url: b.url, route: b.route })) }],
    manager: { listen: '127.0.0.1:0', users: [{ name: 'alice', password: await testHash() }], token: TOKEN, ...opts.managerExtra },
    ...opts.configExtra,
  });
  const spec = cfg.manager as ManagerSpec;
  let manager: ManagerServer | undefined;
  const balancer = new BalancerServer(cfg, { onFinish: (e) => manager?.onFinish(e) });
  manager = new ManagerServer(balancer, {
    spec,
    users: spec.users,
    tokens: spec.token ? [spec.token] : [],
    ...(opts.statePath ? { statePath: opts.statePath } : {}),
    ...(opts.sampleIntervalMs ? { sampleIntervalMs: opts.sampleIntervalMs } : {}),
    ...(opts.sources ? { sources: opts.sources } : {}),
  });
  const m = await manager.start();
  const [a] = await balancer.start();
  return {
    balancer,
    manager,
    front: a!.url,
    origin: `http://127.0.0.1:${m.port}`,
    base: spec.path,
    close: async () => {
      await manager!.destroy();
      await balancer.destroy();
    },
  };
}

export function basic(user = 'alice', password = PASSWORD): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A temp dir removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'cohort-manager-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Sends n sequential GETs through the balancer and returns how many each route answered. */
export async function traffic(front: string, n: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${front}/x`);
    const text = (await r.text()).trim();
    out[text] = (out[text] ?? 0) + 1;
  }
  return out;
}
