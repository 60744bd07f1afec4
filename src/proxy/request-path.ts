import type { Logger } from 'pino';
import { Exchange, type ForwardDeps } from './forward.js';
import { MountTable, originForm, type Mount } from './mount.js';
import { ClientConnection, type ClientSide, type ConnectionHandler, type IncomingRequest } from './parse.js';
import { mayExplain } from './route.js';
import { proxyUpgrade, type UpgradeDeps } from './upgrade.js';
import { validateRequest } from './validate.js';

export interface RequestPathDeps extends ForwardDeps {
  readonly explain: boolean | 'local';
  readonly maxUrlLength: number;
  readonly upgrade: UpgradeDeps;
}

/**
 * The request path as a pipeline: parse (parse.ts, before this) → validate →
 * mount → route → pick → rewrite → forward → stream → outcome (forward.ts and
 * the units it calls). One RequestPath per configuration; a reload builds a
 * new one and moves open connections to it. Holds no per-request state.
 */
export class RequestPath implements ConnectionHandler {
  private mounts = new MountTable([]);

  constructor(readonly deps: RequestPathDeps) {}

  get log(): Logger {
    return this.deps.log;
  }

  setMounts(mounts: readonly Mount[]): void {
    this.mounts = new MountTable(mounts);
  }

  matchMount(path: string): Mount | undefined {
    return this.mounts.match(path);
  }

  onRequest(conn: ClientSide, req: IncomingRequest): void {
    const head = req.head;
    const rejection = validateRequest(head, this.deps.maxUrlLength, conn.headerCharsChecked);
    if (rejection !== undefined) {
      this.deps.log.info({ client: conn.remoteAddress, status: rejection.status, reason: rejection.reason }, 'request refused');
      // Nothing after a refused request is acted on: its framing could not be trusted.
      return this.answer(conn, req, rejection.status, `${rejection.reason}\n`, true);
    }
    if (head.expect !== undefined && head.expect !== '100-continue') return this.answer(conn, req, 417, 'unsupported Expect\n', true);
    const target = originForm(head.url);
    if (target === undefined) return this.answer(conn, req, 400, 'invalid request target\n', true);
    const mount = this.mounts.match(target);
    if (head.upgrade) {
      if (mount === undefined) return this.answer(conn, req, 404, 'no balancer is mounted at this path\n', true);
      // Upgrades exist in HTTP/1 only (an HTTP/2 stream never has the flag).
      if (!(conn instanceof ClientConnection)) return this.answer(conn, req, 400, 'upgrade not supported here\n', true);
      return proxyUpgrade(conn, req, mount, target, this.deps.upgrade);
    }
    if (mount === undefined) return this.answer(conn, req, 404, 'no balancer is mounted at this path\n', false);
    const explain = head.explain && mayExplain(this.deps.explain, conn.remoteAddress, this.deps.isTrusted);
    const ex = new Exchange(this.deps, conn, req, mount, this.mounts, target, explain);
    req.exchange = ex;
    ex.start();
  }

  onClientGone(_conn: ClientSide, req: IncomingRequest): void {
    req.exchange?.clientGone();
  }

  onRefused(conn: ClientSide, status: number, code: string): void {
    this.deps.log.info({ code, status, client: conn.remoteAddress }, 'malformed request refused');
  }

  /** A small answer of the balancer's own; `close` ends the connection after it. */
  private answer(conn: ClientSide, req: IncomingRequest, status: number, body: string, close: boolean): void {
    const w = conn.responseFor(req);
    const mustClose = close || (req.hasBody && !req.ended);
    w.plain(status, body, mustClose);
    conn.done(req, !mustClose && !w.closeAfter);
  }
}
