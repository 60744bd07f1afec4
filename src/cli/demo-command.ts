import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseBalancerConfig } from '../config/load.js';
import { BalancerServer } from '../proxy/balancer-server.js';
import { createLogger } from '../util/logger.js';

/** A tiny backend that says which instance answered (the tutorial's instance.txt) and keeps a sticky counter. */
function demoBackend(route: string): http.Server {
  const counters = new Map<string, number>();
  let seq = 0;
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.endsWith('/instance.txt') || url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${route}\n`);
      return;
    }
    if (url.pathname.endsWith('/counter')) {
      const m = /JSESSIONID=([^;]+)/.exec(req.headers.cookie ?? '');
      let id = m?.[1];
      if (!id || !counters.has(id)) {
        id = `${Date.now().toString(36)}${(seq++).toString(36)}.${route}`;
        counters.set(id, 0);
      }
      const n = counters.get(id)! + 1;
      counters.set(id, n);
      res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': `JSESSIONID=${id}; Path=/; HttpOnly; SameSite=Lax` });
      res.end(`node=${route} session=${id} count=${n}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
}

/** `cohort demo` (until the full cluster demo lands): a balancer in front of two demo backends. */
export async function runDemo(opts: { port: number }): Promise<void> {
  const backends = ['tc1', 'tc2'].map((route) => ({ route, server: demoBackend(route) }));
  for (const b of backends) await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', () => r()));
  const cfg = parseBalancerConfig({
    listen: `127.0.0.1:${opts.port}`,
    balancers: [{
      name: 'tccluster',
      members: backends.map((b) => ({ route: b.route, url: `http://127.0.0.1:${(b.server.address() as AddressInfo).port}` })),
      hcheck: { path: '/examples/instance.txt', interval: 2, rise: 1, fall: 2 },
    }],
    mounts: [{ path: '/examples', balancer: 'tccluster', upstream: '/examples' }],
    accesslog: false,
  });
  const log = createLogger('cohort-demo', 'warn', 2);
  const server = new BalancerServer(cfg, { log });
  const [addr] = await server.start();
  const base = addr!.url;
  process.stdout.write([
    'Cohort demo is running.',
    `  balancer:      ${base}/examples/instance.txt   (which node answered; repeat it to see the spread)`,
    `  session:       ${base}/examples/counter        (sticky: the count goes up on one node)`,
    `  explain:       curl -H 'X-Cohort-Explain: 1' -i ${base}/examples/instance.txt`,
    ...backends.map((b) => `  member ${b.route}:    http://127.0.0.1:${(b.server.address() as AddressInfo).port}`),
    'Press Ctrl-C to stop.',
    '',
  ].join('\n'));
  const stop = () => {
    void server.close(2000).then(() => {
      for (const b of backends) b.server.close();
      process.exit(0);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
