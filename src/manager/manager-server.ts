import { listenOn, trackConnections } from '../util/listen.js';
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import type { Logger } from 'pino';
import type { Balancer } from '../balancer/balancer.js';
import type { Member } from '../balancer/member.js';
import type { BalancerConfig, BalancerSpec, ManagerSpec } from '../config/balancer-schema.js';
import type { FinishedExchange } from '../proxy/forward.js';
import { formatHostPort, isDirectLoopback } from '../util/address.js';
import { systemClock, type Clock } from '../util/clock.js';
import { silentLogger } from '../util/logger.js';
import { MethodRegistry } from '../balancer/methods/index.js';
import { addMember, balancerChangeSchema, changeBalancer, changeMember, findBalancer, findMember, memberChangeSchema, parseOrThrow, removeMember, type MemberChange } from './actions.js';
import { Authenticator, SESSION_COOKIE, type AuthUser, type Principal } from './auth.js';
import { checkNonce, checkSameOrigin } from './csrf.js';
import { BalancerSource, type DashboardSource } from './dashboard-source.js';
import type { ClusterView } from './dashboard-source-cluster.js';
import { renderDashboard } from './dashboard-page.js';
import { ManagerError } from './errors.js';
import { newNonce, securityHeaders } from './html.js';
import { renderErrorPage, renderLoginPage, renderManagerPage } from './manager-page.js';
import { BalancerMetrics } from './metrics.js';
import { MemberLedger, StateStore } from './persist.js';

/**
 * Told of every change the operator made here, after it took effect (the
 * balancer fleet, src/fleet/, sends it to the other balancers). `url`: the
 * member's URL, its identity across balancers.
 */
export interface ManagerChangeListener {
  changed(subject: { balancer: string; kind: 'balancer' } | { balancer: string; kind: 'member'; url: string; added?: boolean; removed?: boolean }): void;
}

/** What the manager manages: BalancerServer satisfies it. */
export interface ManagedBalancers {
  readonly balancers: ReadonlyMap<string, Balancer>;
  readonly currentConfig: BalancerConfig;
  /** The cluster channel, once the balancer has joined the session cluster (config `cluster`). */
  readonly cluster?: ClusterView | undefined;
}

export interface ManagerServerOptions {
  readonly spec: ManagerSpec;
  readonly users: readonly AuthUser[];
  readonly tokens: readonly string[];
  /** Where changes are saved; undefined = not persisted. */
  readonly statePath?: string;
  readonly clock?: Clock;
  readonly log?: Logger;
  /** More dashboard panels (e.g. the session cluster's). */
  readonly sources?: readonly DashboardSource[];
  /** Dashboard sample interval, ms. */
  readonly sampleIntervalMs?: number;
  /** Balancing methods the manager may switch a balancer to (the BalancerServer's registry). */
  readonly methods?: MethodRegistry;
}

const MAX_BODY = 64 * 1024;
const SSE_PING_MS = 15_000;
/** Tells scripts which nonce to send back. */
const CSRF_HEADER = 'x-csrf-token';

type Req = http.IncomingMessage;
type Res = http.ServerResponse;

function readBody(req: Req): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new ManagerError('COHORT_MANAGER_TOO_LARGE', `request body over ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function mediaType(req: Req): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

async function readJson(req: Req): Promise<unknown> {
  // application/json only: a cross-site HTML form cannot send it without a CORS preflight.
  if (mediaType(req) !== 'application/json') throw new ManagerError('COHORT_MANAGER_UNSUPPORTED_MEDIA', 'expected Content-Type: application/json');
  const text = await readBody(req);
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ManagerError('COHORT_MANAGER_INVALID', 'the body is not valid JSON');
  }
}

async function readForm(req: Req): Promise<URLSearchParams> {
  if (mediaType(req) !== 'application/x-www-form-urlencoded') throw new ManagerError('COHORT_MANAGER_UNSUPPORTED_MEDIA', 'expected Content-Type: application/x-www-form-urlencoded');
  return new URLSearchParams(await readBody(req));
}

/**
 * The balancer manager's HTTP side: the page, the JSON API, the dashboard and
 * its SSE stream, and /metrics, on its own listener (loopback by default).
 * All of them read the same in-memory Balancer model.
 */
export class ManagerServer {
  readonly metrics: BalancerMetrics;
  readonly balancerSource: BalancerSource;
  private readonly sources: DashboardSource[];
  private readonly auth: Authenticator;
  private readonly store: StateStore | undefined;
  private readonly ledger = new MemberLedger();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly base: string;
  private readonly methods: MethodRegistry;
  private server: http.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Open event streams and the login session each belongs to (ended at logout). */
  private readonly streams = new Map<Res, string | undefined>();
  private tickTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private changeListener: ManagerChangeListener | undefined;

  constructor(
    private readonly target: ManagedBalancers,
    private readonly opts: ManagerServerOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? silentLogger();
    this.base = opts.spec.path;
    this.methods = opts.methods ?? new MethodRegistry();
    this.auth = new Authenticator({ users: opts.users, tokens: opts.tokens, sessionTtlMs: opts.spec.sessionttl * 1000, clock: this.clock });
    this.store = opts.statePath !== undefined ? new StateStore(opts.statePath) : undefined;
    this.metrics = new BalancerMetrics(() => target.balancers.values(), () => this.clock.now());
    this.balancerSource = new BalancerSource(() => target.balancers, this.clock, opts.spec.history);
    this.sources = [this.balancerSource, ...(opts.sources ?? [])];
  }

  /** Per-request hook for BalancerServer's `onFinish`. */
  readonly onFinish = (e: FinishedExchange): void => {
    this.metrics.observe(e);
    this.balancerSource.observe(e);
  };

  private get scheme(): 'http' | 'https' {
    return this.opts.spec.tls ? 'https' : 'http';
  }

  /**
   * Cookie attributes: Secure whenever the manager is served over TLS. The
   * login cookie is a browser-session cookie; the idle limit (`sessionttl`)
   * is enforced on the server, which slides it on every use.
   */
  private cookieAttrs(expire = false): string {
    return `Path=${this.base}; HttpOnly; SameSite=Strict${expire ? '; Max-Age=0' : ''}${this.opts.spec.tls ? '; Secure' : ''}`;
  }

  get persisted(): boolean {
    return this.store !== undefined;
  }

  private specs(): Map<string, BalancerSpec> {
    return new Map(this.target.currentConfig.balancers.map((b) => [b.name, b]));
  }

  /** Re-applies saved changes (at start and after a config reload). */
  async applyPersistedState(): Promise<void> {
    if (!this.store) return;
    const specs = this.specs();
    this.ledger.bindConfig(this.target.balancers, specs);
    const state = await this.store.load();
    if (!state) return;
    const { applied, skipped, problems } = this.ledger.apply(state, this.target.balancers, specs, this.methods);
    if (applied.length > 0) this.log.info({ file: this.store.path, balancers: applied }, 'manager: saved member settings re-applied');
    if (problems.length > 0) this.log.warn({ file: this.store.path, problems }, 'manager: some saved members could not be restored');
    if (skipped.length > 0) this.log.warn({ file: this.store.path, balancers: skipped }, 'manager: saved settings ignored because the balancer changed in the config file');
    this.balancerSource.sync();
  }

  private async persist(): Promise<void> {
    if (!this.store) return;
    try {
      await this.store.save(this.ledger.snapshot(this.target.balancers.values(), this.specs()));
    } catch (err) {
      this.log.error({ err, file: this.store.path }, 'manager: cannot save state');
      throw new ManagerError('COHORT_MANAGER_PERSIST_FAILED', `the change took effect but could not be saved to ${this.store.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Follows the operator's changes (one listener: the balancer fleet). */
  onChanges(listener: ManagerChangeListener | undefined): void {
    this.changeListener = listener;
  }

  /** Another dashboard panel (e.g. the fleet's, once the balancer joined the cluster). */
  addSource(source: DashboardSource): void {
    this.sources.push(source);
  }

  /** Saves the current state (after a change made elsewhere, e.g. by a peer balancer). */
  saveState(): Promise<void> {
    return this.persist();
  }

  /** Counts a member as added in a manager (saved as such). */
  markAdded(m: Member): void {
    this.ledger.markAdded(m);
  }

  private told(subject: Parameters<ManagerChangeListener['changed']>[0]): void {
    try {
      this.changeListener?.changed(subject);
    } catch (err) {
      this.log.error({ err }, 'manager: the change listener failed');
    }
  }

  /** Applies saved state, then listens. Resolves with the URL of the manager page. */
  async start(): Promise<{ host: string; port: number; url: string }> {
    if (this.server || this.closed) throw new Error('ManagerServer.start() called twice or after close()');
    await this.applyPersistedState();
    const options: http.ServerOptions = { maxHeaderSize: 16384, headersTimeout: 20_000, requestTimeout: 60_000 };
    const handler = (req: Req, res: Res) => void this.handle(req, res);
    const tls = this.opts.spec.tls;
    const server = tls
      ? https.createServer({ ...options, cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler)
      : http.createServer(options, handler);
    trackConnections(server, this.sockets);
    await listenOn(server, this.opts.spec.listen);
    this.server = server;
    this.tickTimer = setInterval(() => {
      for (const s of this.sources) s.tick?.();
    }, this.opts.sampleIntervalMs ?? 500);
    this.tickTimer.unref();
    this.pingTimer = setInterval(() => {
      for (const r of this.streams.keys()) r.write(': ping\n\n');
    }, SSE_PING_MS);
    this.pingTimer.unref();
    const a = this.address()!;
    this.log.info({ url: a.url }, 'balancer manager listening');
    return a;
  }

  address(): { host: string; port: number; url: string } | undefined {
    const a = this.server?.address() as net.AddressInfo | null | undefined;
    if (!a) return undefined;
    return { host: a.address, port: a.port, url: `${this.scheme}://${formatHostPort(a.address, a.port)}${this.base}/` };
  }

  /** Stops listening, ends event streams, closes idle connections. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.tickTimer);
    clearInterval(this.pingTimer);
    for (const r of this.streams.keys()) r.end();
    this.streams.clear();
    for (const s of this.sources) s.close();
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => {
        for (const s of this.sockets) s.destroy();
      }, 2000).unref();
    });
  }

  /** Immediate stop. */
  async destroy(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await this.close();
  }

  // ---------------------------------------------------------------- routing

  private async handle(req: Req, res: Res): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://manager.invalid');
    const path = url.pathname;
    const api = path.startsWith(`${this.base}/api/`) || path === '/metrics' || path === `${this.base}/metrics`;
    try {
      if (path === '/metrics' || path === `${this.base}/metrics`) return await this.serveMetrics(req, res);
      if (path === this.base) return this.redirect(res, `${this.base}/`);
      if (path === '/favicon.ico') {
        res.writeHead(204, securityHeaders());
        res.end();
        return;
      }
      if (!path.startsWith(`${this.base}/`)) throw new ManagerError('COHORT_MANAGER_NOT_FOUND', `nothing at ${path}; the manager is at ${this.base}/`);
      const rest = path.slice(this.base.length);
      if (rest === '/login') return await this.serveLogin(req, res);
      if (rest.startsWith('/api/')) return await this.serveApi(req, res, rest.slice('/api'.length));
      const principal = await this.authenticate(req);
      if (!principal) {
        if (req.method === 'GET') {
          const nonce = newNonce();
          return this.html(res, 401, renderLoginPage(this.base, nonce), nonce);
        }
        throw new ManagerError('COHORT_MANAGER_UNAUTHENTICATED', 'log in first');
      }
      switch (rest) {
        case '/':
          this.onlyMethods(req, ['GET']);
          return this.servePage(res, principal);
        case '/dashboard':
          this.onlyMethods(req, ['GET']);
          return this.serveDashboard(res, principal);
        case '/action':
          this.onlyMethods(req, ['POST']);
          return await this.serveFormAction(req, res);
        case '/logout':
          this.onlyMethods(req, ['POST']);
          return await this.serveLogout(req, res, principal);
        default:
          throw new ManagerError('COHORT_MANAGER_NOT_FOUND', `nothing at ${path}`);
      }
    } catch (err) {
      this.fail(req, res, err, api);
    }
  }

  private fail(req: Req, res: Res, err: unknown, api: boolean): void {
    const e = err instanceof ManagerError ? err : new ManagerError('COHORT_MANAGER_INTERNAL', 'internal error (logged)', { cause: err });
    const status = e.status;
    if (!(err instanceof ManagerError)) this.log.error({ err }, 'manager: request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string> = {};
    if (status === 401) headers['www-authenticate'] = 'Basic realm="Cohort balancer manager", charset="UTF-8"';
    if (api) {
      this.json(res, status, { error: { code: e.code, message: e.message } }, headers);
      return;
    }
    const nonce = newNonce();
    const body = status === 401 ? renderLoginPage(this.base, nonce, e.message) : renderErrorPage(this.base, nonce, status, e.code, e.message);
    res.writeHead(status, { ...securityHeaders(nonce), 'content-type': 'text/html; charset=utf-8', ...(status === 401 ? {} : headers) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private onlyMethods(req: Req, methods: string[]): void {
    if (!methods.includes(req.method ?? '')) throw new ManagerError('COHORT_MANAGER_METHOD', `${req.method} not allowed here (allowed: ${methods.join(', ')})`);
  }

  private redirect(res: Res, location: string, extra: Record<string, string | string[]> = {}): void {
    res.writeHead(303, { ...securityHeaders(), location, ...extra });
    res.end();
  }

  /** Sends a page; `nonce` must be the one the page was rendered with (CSP). */
  private html(res: Res, status: number, body: string, nonce: string): void {
    res.writeHead(status, { ...securityHeaders(nonce), 'content-type': 'text/html; charset=utf-8' });
    res.end(body);
  }

  private json(res: Res, status: number, value: unknown, extra: Record<string, string> = {}): void {
    const body = JSON.stringify(value, null, 2);
    res.writeHead(status, { ...securityHeaders(), 'content-type': 'application/json; charset=utf-8', ...extra });
    res.end(body);
  }

  private async requirePrincipal(req: Req): Promise<Principal> {
    const p = await this.authenticate(req);
    if (!p) throw new ManagerError('COHORT_MANAGER_UNAUTHENTICATED', 'authentication required (login session, HTTP Basic or Bearer token)');
    return p;
  }

  /** Authenticates; wrong Basic/Bearer credentials count as failed logins for the limiter. */
  private async authenticate(req: Req): Promise<Principal | undefined> {
    const client = this.clientOf(req);
    const presented = req.headers.authorization !== undefined;
    if (presented && this.auth.limited(client)) throw new ManagerError('COHORT_MANAGER_RATE_LIMITED', 'too many failed logins; wait a minute');
    const p = await this.auth.authenticate(req);
    if (!p && presented) {
      this.auth.recordFailure(client);
      this.log.warn({ client }, 'manager: wrong credentials');
    }
    return p;
  }

  /** Every state-changing request: same origin, authenticated, and carrying the nonce. */
  private async authorizeChange(req: Req, supplied?: string): Promise<Principal> {
    checkSameOrigin(req, this.scheme, this.opts.spec.origins);
    const p = await this.requirePrincipal(req);
    const header = req.headers[CSRF_HEADER];
    checkNonce(p, supplied ?? (typeof header === 'string' ? header : undefined));
    return p;
  }

  private clientOf(req: Req): string {
    return req.socket.remoteAddress ?? 'unknown';
  }

  // ---------------------------------------------------------------- pages

  private servePage(res: Res, p: Principal, error?: string, status = 200): void {
    const nonce = newNonce();
    const balancers = [...this.target.balancers.values()].map((b) => b.snapshot());
    this.html(res, status, renderManagerPage({ base: this.base, user: p.user, csrf: p.csrf, nonce, persisted: this.persisted, methods: this.methods.names(), ...(error ? { error } : {}) }, balancers), nonce);
  }

  private serveDashboard(res: Res, p: Principal): void {
    const nonce = newNonce();
    this.html(res, 200, renderDashboard({ base: this.base, nonce, csrf: p.csrf, user: p.user, sources: this.sources }), nonce);
  }

  private async serveLogin(req: Req, res: Res): Promise<void> {
    const nonce = newNonce();
    if (req.method === 'GET') return this.html(res, 200, renderLoginPage(this.base, nonce), nonce);
    this.onlyMethods(req, ['GET', 'POST']);
    checkSameOrigin(req, this.scheme, this.opts.spec.origins);
    const client = this.clientOf(req);
    if (this.auth.limited(client)) throw new ManagerError('COHORT_MANAGER_RATE_LIMITED', 'too many failed logins; wait a minute');
    const form = await readForm(req);
    const user = form.get('user') ?? '';
    const session = await this.auth.login(user, form.get('password') ?? '');
    if (!session) {
      this.auth.recordFailure(client);
      this.log.warn({ user, client }, 'manager: failed login');
      return this.html(res, 401, renderLoginPage(this.base, nonce, 'wrong user name or password'), nonce);
    }
    this.log.info({ user, client }, 'manager: login');
    this.redirect(res, `${this.base}/`, {
      'set-cookie': `${SESSION_COOKIE}=${session.sessionId}; ${this.cookieAttrs()}`,
    });
  }

  private async serveLogout(req: Req, res: Res, p: Principal): Promise<void> {
    const form = await readForm(req);
    await this.authorizeChange(req, form.get('csrf') ?? undefined);
    if (p.sessionId) {
      this.auth.logout(p.sessionId);
      for (const [r, sid] of this.streams) if (sid === p.sessionId) r.end();
    }
    this.redirect(res, `${this.base}/login`, { 'set-cookie': `${SESSION_COOKIE}=; ${this.cookieAttrs(true)}` });
  }

  /** The page's forms: op = enable | disable | <flag>:on | <flag>:off | reset | set | remove | add. */
  private async serveFormAction(req: Req, res: Res): Promise<void> {
    const form = await readForm(req);
    const p = await this.authorizeChange(req, form.get('csrf') ?? undefined);
    const op = form.get('op') ?? '';
    const b = findBalancer(this.target.balancers, form.get('balancer') ?? '');
    try {
      if (op === 'balancer') {
        const change: Record<string, unknown> = {};
        for (const k of ['method', 'stickysession', 'stickysessionsep'] as const) if (form.get(k)) change[k] = form.get(k);
        for (const k of ['maxattempts', 'timeout'] as const) if (form.get(k)) change[k] = Number(form.get(k));
        for (const k of ['nofailover', 'forcerecovery'] as const) if (form.get(k)) change[k] = form.get(k) === 'on';
        changeBalancer(b, parseOrThrow(balancerChangeSchema, change), this.methods);
        this.audit(p, b.name, '*', 'balancer', change);
        this.told({ balancer: b.name, kind: 'balancer' });
      } else if (op === 'add') {
        const raw: Record<string, unknown> = { url: form.get('url') ?? '' };
        if (form.get('route')) raw['route'] = form.get('route');
        if (form.get('loadfactor')) raw['loadfactor'] = Number(form.get('loadfactor'));
        if (form.get('lbset')) raw['lbset'] = Number(form.get('lbset'));
        const m = addMember(b, raw);
        this.ledger.markAdded(m);
        this.audit(p, b.name, m.route, 'add', raw);
        this.told({ balancer: b.name, kind: 'member', url: m.url.href, added: true });
      } else {
        const route = form.get('member') ?? '';
        if (op === 'remove') {
          const url = findMember(b, route).url.href;
          removeMember(b, route);
          this.audit(p, b.name, route, 'remove');
          this.told({ balancer: b.name, kind: 'member', url, removed: true });
        } else {
          const change = this.formChange(op, form);
          const m = changeMember(b, findMember(b, route), parseOrThrow(memberChangeSchema, change), this.clock.now(), Date.now());
          this.audit(p, b.name, m.route, op, change);
          this.told({ balancer: b.name, kind: 'member', url: m.url.href });
        }
      }
      await this.persist();
    } catch (err) {
      // Show the refusal on the page itself (no error text in URLs: a crafted link could not put words on the page).
      if (err instanceof ManagerError && err.status < 500) return this.servePage(res, p, `${err.code}: ${err.message}`, err.status);
      throw err;
    }
    this.redirect(res, `${this.base}/`);
  }

  private formChange(op: string, form: URLSearchParams): unknown {
    if (op === 'enable') return { status: { disabled: false, stopped: false } };
    if (op === 'disable') return { status: { disabled: true } };
    if (op === 'reset') return { reset: true };
    if (op === 'set') {
      const c: Record<string, unknown> = {};
      if (form.get('loadfactor')) c['loadfactor'] = Number(form.get('loadfactor'));
      if (form.get('lbset')) c['lbset'] = Number(form.get('lbset'));
      if (form.get('route')) c['route'] = form.get('route');
      return c;
    }
    const m = /^(disabled|drain|hot-standby|ignore-errors|stopped):(on|off)$/.exec(op);
    if (m) return { status: { [m[1]!]: m[2] === 'on' } };
    throw new ManagerError('COHORT_MANAGER_INVALID', `unknown action "${op}"`);
  }

  private audit(p: Principal, balancer: string, member: string, action: string, detail?: unknown): void {
    this.log.info({ user: p.user, via: p.via, balancer, member, action, detail }, `manager: ${action} ${balancer}/${member}`);
  }

  // ---------------------------------------------------------------- metrics

  private async serveMetrics(req: Req, res: Res): Promise<void> {
    this.onlyMethods(req, ['GET']);
    // 'remote' (the default): a scrape from this host needs no credentials; any other, or one that came
    // through a proxy (X-Forwarded-For / Forwarded), does
    const auth = this.opts.spec.metricsauth;
    if (auth === true || (auth === 'remote' && !isDirectLoopback(req))) await this.requirePrincipal(req);
    const { contentType, body } = await this.metrics.render();
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
    res.end(body);
  }

  // ---------------------------------------------------------------- JSON API

  private async serveApi(req: Req, res: Res, rest: string): Promise<void> {
    let parts: string[];
    try {
      parts = rest.split('/').slice(1).map((s) => decodeURIComponent(s));
    } catch {
      throw new ManagerError('COHORT_MANAGER_NOT_FOUND', `malformed path ${rest}`);
    }
    const method = req.method ?? 'GET';
    if (method === 'GET') {
      const p = await this.requirePrincipal(req);
      const csrfHeader: Record<string, string> = p.csrf !== undefined ? { [CSRF_HEADER]: p.csrf } : {};
      if (parts.length === 1 && parts[0] === 'session') return this.json(res, 200, { user: p.user, via: p.via, csrf: p.csrf ?? null }, csrfHeader);
      if (parts.length === 1 && parts[0] === 'events') return this.serveEvents(req, res, p);
      if (parts.length === 1 && parts[0] === 'history') return this.json(res, 200, { history: this.balancerSource.history }, csrfHeader);
      if (parts[0] === 'sources') {
        // What each dashboard panel draws, as JSON (e.g. sources/cluster: nodes, membership matrix, transfers).
        if (parts.length === 1) return this.json(res, 200, { sources: this.sources.map((s) => ({ id: s.id, title: s.title })) }, csrfHeader);
        const source = parts.length === 2 ? this.sources.find((s) => s.id === parts[1]) : undefined;
        if (source) return this.json(res, 200, source.snapshot(), csrfHeader);
      }
      if (parts[0] === 'balancers') {
        if (parts.length === 1) return this.json(res, 200, { balancers: [...this.target.balancers.values()].map((b) => b.snapshot()), persisted: this.persisted }, csrfHeader);
        const b = findBalancer(this.target.balancers, parts[1]!);
        if (parts.length === 2) return this.json(res, 200, b.snapshot(), csrfHeader);
        if (parts.length === 4 && parts[2] === 'members') return this.json(res, 200, findMember(b, parts[3]!).snapshot(this.clock.now()), csrfHeader);
      }
      throw new ManagerError('COHORT_MANAGER_NOT_FOUND', `no API resource at ${rest}`);
    }
    if (parts[0] === 'balancers' && parts.length === 2) {
      if (method !== 'POST') throw new ManagerError('COHORT_MANAGER_METHOD', `${method} not allowed (GET, POST)`);
      const p = await this.authorizeChange(req);
      const b = findBalancer(this.target.balancers, parts[1]!);
      const change = parseOrThrow(balancerChangeSchema, await readJson(req));
      changeBalancer(b, change, this.methods);
      this.audit(p, b.name, '*', 'balancer', change);
      this.told({ balancer: b.name, kind: 'balancer' });
      await this.persist();
      return this.json(res, 200, b.snapshot());
    }
    if (parts[0] !== 'balancers' || parts.length < 3 || parts[2] !== 'members' || parts.length > 4) {
      throw new ManagerError(method === 'POST' || method === 'DELETE' ? 'COHORT_MANAGER_NOT_FOUND' : 'COHORT_MANAGER_METHOD', `no API action ${method} ${rest}`);
    }
    if (method !== 'POST' && method !== 'DELETE') throw new ManagerError('COHORT_MANAGER_METHOD', `${method} not allowed (GET, POST, DELETE)`);
    const p = await this.authorizeChange(req);
    const b = findBalancer(this.target.balancers, parts[1]!);
    if (parts.length === 3) {
      if (method !== 'POST') throw new ManagerError('COHORT_MANAGER_METHOD', 'use POST to add a member');
      const raw = await readJson(req);
      const m = addMember(b, raw);
      this.ledger.markAdded(m);
      this.audit(p, b.name, m.route, 'add', raw);
      this.told({ balancer: b.name, kind: 'member', url: m.url.href, added: true });
      await this.persist();
      return this.json(res, 201, m.snapshot(this.clock.now()));
    }
    const route = parts[3]!;
    if (method === 'DELETE') {
      const url = findMember(b, route).url.href;
      removeMember(b, route);
      this.audit(p, b.name, route, 'remove');
      this.told({ balancer: b.name, kind: 'member', url, removed: true });
      await this.persist();
      res.writeHead(204, securityHeaders());
      res.end();
      return;
    }
    const change: MemberChange = parseOrThrow(memberChangeSchema, await readJson(req));
    const m = changeMember(b, findMember(b, route), change, this.clock.now(), Date.now());
    this.audit(p, b.name, route, 'change', change);
    this.told({ balancer: b.name, kind: 'member', url: m.url.href });
    await this.persist();
    this.json(res, 200, m.snapshot(this.clock.now()));
  }

  /** Server-sent events: each source's snapshot, then its events, as `event: <source id>`. */
  private serveEvents(req: Req, res: Res, p: Principal): void {
    res.writeHead(200, { ...securityHeaders(), 'content-type': 'text/event-stream; charset=utf-8', 'x-accel-buffering': 'no', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const send = (source: string, type: string, data: unknown) => res.write(`event: ${source}\ndata: ${JSON.stringify({ type, data })}\n\n`);
    const unsubscribe: Array<() => void> = [];
    for (const s of this.sources) {
      send(s.id, 'snapshot', s.snapshot());
      unsubscribe.push(s.subscribe((type, data) => send(s.id, type, data)));
    }
    this.streams.set(res, p.sessionId);
    const done = () => {
      this.streams.delete(res);
      for (const u of unsubscribe) u();
    };
    req.on('close', done);
    res.on('close', done);
  }
}
