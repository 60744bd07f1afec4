/**
 * The balancer's status listener (`status:` in the config, `--status` in quick
 * mode): Prometheus metrics, readiness and liveness on a listener of their
 * own, with or without the manager.
 *
 * - `GET /metrics`: the balancer's metrics (the same model and names as the
 *   manager's /metrics, process/Node.js defaults included); loopback clients
 *   and `status.from` only.
 * - `GET /health`: 200 while the balancer serves (started, not stopping),
 *   with the usable members per balancer; 503 before and while stopping.
 * - `GET /live`: 200 while the process runs.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Balancer } from '../balancer/balancer.js';
import type { StatusSpec } from '../config/balancer-schema.js';
import { BalancerMetrics } from '../manager/metrics.js';
import type { FinishedExchange } from '../proxy/forward.js';
import { formatHostPort, ipMatcher, isLoopback } from '../util/address.js';
import { listenOn, trackConnections } from '../util/listen.js';

export enum BalancerPhase {
  Starting = 'starting',
  Serving = 'serving',
  Stopping = 'stopping',
}

/** What the status listener reads from the balancer process. */
export interface StatusTarget {
  balancers(): Iterable<Balancer>;
  phase(): BalancerPhase;
}

export class BalancerStatusServer {
  private readonly metrics: BalancerMetrics;
  private readonly mayScrape: (ip: string) => boolean;
  private readonly sockets = new Set<Socket>();
  private server: http.Server | undefined;
  url = '';

  constructor(private readonly spec: StatusSpec, private readonly target: StatusTarget, private readonly now: () => number = () => performance.now()) {
    this.metrics = new BalancerMetrics(() => target.balancers(), now);
    this.mayScrape = ipMatcher(spec.from);
  }

  /** Per-request hook (BalancerServer's onFinish): latency and status counters. */
  readonly observe = (e: FinishedExchange): void => this.metrics.observe(e);

  async start(): Promise<string> {
    const server = http.createServer((req, res) => void this.onRequest(req, res));
    server.keepAliveTimeout = 5_000;
    trackConnections(server, this.sockets);
    await listenOn(server, this.spec.listen);
    this.server = server;
    const a = server.address() as AddressInfo;
    this.url = `http://${formatHostPort(a.address, a.port)}`;
    return this.url;
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.send(res, 405, 'text/plain', 'GET only\n', { allow: 'GET, HEAD' });
    if (path === '/live') return this.send(res, 200, 'application/json', '{"live":true}');
    if (path === '/health') {
      const phase = this.target.phase();
      const t = this.now();
      const balancers = Object.fromEntries([...this.target.balancers()].map((b) => [b.name, { members: b.members.length, usable: b.members.filter((m) => m.usable(t)).length }]));
      const ok = phase === BalancerPhase.Serving;
      return this.send(res, ok ? 200 : 503, 'application/json', JSON.stringify({ state: phase, ready: ok, balancers }), ok ? {} : { 'retry-after': '1' });
    }
    if (path === '/metrics') {
      const ip = req.socket.remoteAddress ?? '';
      if (!isLoopback(ip) && !this.mayScrape(ip)) return this.send(res, 403, 'text/plain', 'balancer metrics are served to loopback clients and status.from only\n');
      try {
        const { contentType, body } = await this.metrics.render();
        return this.send(res, 200, contentType, body);
      } catch (err) {
        return this.send(res, 500, 'text/plain', `metrics failed: ${(err as Error).message}\n`);
      }
    }
    return this.send(res, 404, 'text/plain', 'not found: /metrics, /health, /live\n');
  }

  private send(res: http.ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
    res.end(body);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((r) => {
      server.close(() => r());
      server.closeIdleConnections();
    });
  }

  destroy(): void {
    this.server?.close();
    for (const s of this.sockets) s.destroy();
    this.server = undefined;
  }
}
