import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import type { Logger } from 'pino';
import type { Balancer } from '../balancer/balancer.js';
import type { Member } from '../balancer/member.js';
import type { Decision } from '../balancer/picker.js';
import { extractRoute, type StickyResult } from '../balancer/sticky.js';
import type { Clock } from '../util/clock.js';
import { requestHeadersForMember, responseHeadersForClient, type ReverseRule } from './headers.js';
import type { PoolSet } from './pools.js';
import { isIdempotent, validateRequest } from './validate.js';

/** A mount: requests under `path` go to `balancer`, with `path` replaced by `upstream`. */
export interface Mount {
  readonly path: string;
  readonly balancer: Balancer;
  readonly upstream: string;
  readonly reverse: boolean;
  readonly preserveHost: boolean;
}

/**
 * Per-client-connection state of the request path. Owned by the server and
 * handed to each RequestProxy, so that a reload (which builds a new proxy)
 * keeps it for connections that stay open.
 */
export class ConnectionBook {
  /**
   * Client connections with an exchange in progress, and the pipelined
   * requests waiting behind it. RFC 9112 §9.3.2: pipelined requests that are
   * not all safe must not be processed in parallel, so one connection's
   * requests reach members one after another, in order.
   */
  readonly inFlight = new WeakMap<object, (() => void)[]>();
  /**
   * Client connections answered with `Connection: close` because their framing
   * could not be trusted: bytes that follow on them (maybe a request smuggled
   * in the refused one's body) are never acted on.
   */
  readonly condemned = new WeakSet<object>();
}

export interface ProxyDeps {
  /** Shared across reloads; a fresh book when omitted. */
  readonly connections?: ConnectionBook;
  readonly clock: Clock;
  readonly pools: PoolSet;
  readonly log: Logger;
  /** undefined when the access log is off. */
  readonly accessLog: Logger | undefined;
  readonly isTrusted: (ip: string) => boolean;
  /** Who may ask for the explain header: everyone, nobody, or loopback and trusted proxies. */
  readonly explain: boolean | 'local';
  readonly maxUrlLength: number;
  /** Bodies up to this size are buffered so that the request can be retried. */
  readonly bufferBodyLimit: number;
  /** Called once per finished exchange (metrics). */
  readonly onFinish?: (e: FinishedExchange) => void;
}

export interface FinishedExchange {
  readonly balancer: string;
  readonly member: string | undefined;
  readonly status: number;
  readonly durationMs: number;
  readonly upstreamMs: number | undefined;
  readonly attempts: number;
}

/** Errors that happen before anything reached the member: always safe to retry, and the member is down. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTDOWN', 'ECONNABORTED']);
/** The member's connection died under the request: the member is probably down. */
const RESET_ERRORS = new Set(['ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_CLOSED']);
/** The member accepted the request but sent no response head in time: it is stuck or overloaded. */
const TIMEOUT_ERRORS = new Set(['UND_ERR_HEADERS_TIMEOUT']);

const EMPTY_EXCLUDE: ReadonlySet<Member> = new Set();

export function errorCode(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string } };
  if (e?.code === 'UND_ERR_SOCKET' && e.cause?.code) return e.cause.code === 'ECONNRESET' ? 'ECONNRESET' : 'UND_ERR_SOCKET';
  return e?.code ?? 'UNKNOWN';
}

/**
 * One client request and its attempts on members. Also the undici dispatch
 * handler of the current attempt (undici's core handler interface: onConnect,
 * onHeaders, onData, onComplete, onError), so that response bytes stream
 * straight from the member's socket to the client's with back-pressure.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly startedAt: number;
  attempts = 0;
  attemptSeq = 0;
  member: Member | undefined;
  decision: Decision | undefined;
  sticky: StickyResult | undefined;
  exclude: Set<Member> | undefined;
  body: Buffer | IncomingMessage | null = null;
  hasBody = false;
  bodyBuffered = false;
  abort: ((err?: Error) => void) | undefined;
  resume: (() => void) | undefined;
  attemptStartedAt = 0;
  upstreamMs: number | undefined;
  status = 0;
  bytesIn = 0;
  done = false;
  explainParts: string[] | undefined;
  path = '';
  headers: string[] = [];
  proto = 'http';
  reverse: ReverseRule | undefined;

  constructor(
    readonly proxy: RequestProxy,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly mount: Mount,
  ) {
    this.startedAt = proxy.deps.clock.now();
  }

  // --- undici handler (bound to the current attempt) ---
  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.done) return false;
    if (statusCode < 200) {
      // An interim response (103 Early Hints; 101 never comes here): the final one follows on the
      // same exchange. Pass on Early Hints' Link headers; nothing else about it is final.
      if (statusCode === 103) this.forwardEarlyHints(rawHeaders);
      return true;
    }
    const now = this.proxy.deps.clock.now();
    this.upstreamMs = now - this.attemptStartedAt;
    const member = this.member!;
    member.recordLatency(this.upstreamMs, now);
    const balancer = this.mount.balancer;
    const failed = balancer.observeStatus(member, statusCode, now, Date.now());
    if (failed && this.canRetry(true)) {
      // failonstatus: drop this answer and try another member. The retry is already
      // reserved in the budget; attemptFailed must not charge it a second time.
      this.retryReserved = true;
      this.abort?.(new RetryableStatus(statusCode));
      return false;
    }
    this.status = statusCode;
    const headers = responseHeadersForClient(rawHeaders, this.reverse, this.reverse ? this.clientOrigin() : undefined);
    if (this.explainParts !== undefined) headers.push('x-cohort-explain', this.explainText());
    try {
      this.res.writeHead(statusCode, statusText || undefined, headers);
    } catch (err) {
      this.proxy.deps.log.warn({ err, member: member.route }, 'member sent a response header the balancer cannot forward');
      this.abort?.(err as Error);
      return false;
    }
    this.resume = resume;
    return true;
  }

  private forwardEarlyHints(rawHeaders: Buffer[]): void {
    const links: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
      if (rawHeaders[i]!.length === 4 && rawHeaders[i]!.toString('latin1').toLowerCase() === 'link') links.push(rawHeaders[i + 1]!.toString('latin1'));
    }
    if (links.length === 0 || this.res.headersSent || this.req.httpVersionMinor === 0) return;
    try {
      this.res.writeEarlyHints({ link: links });
    } catch (err) {
      this.proxy.deps.log.debug({ err }, 'early hints not forwarded');
    }
  }

  onData(chunk: Buffer): boolean {
    this.bytesIn += chunk.length;
    return this.res.write(chunk);
  }

  onComplete(): void {
    this.res.end();
    this.finish();
  }

  onError(err: Error): void {
    this.proxy.attemptFailed(this, err);
  }

  /**
   * May this request be sent to another member? Only when nothing of the
   * response went out, the body can be sent again, and — when the failed
   * member may have acted on it (`reachedMember`: reset, timeout, status) —
   * the method is idempotent or there was no body. Then within the budget.
   */
  canRetry(reachedMember: boolean): boolean {
    if (this.res.headersSent || this.done) return false;
    const balancer = this.mount.balancer;
    if (this.attempts > balancer.maxattempts) return false;
    const replayable = !this.hasBody || this.bodyBuffered || !this.req.readableDidRead;
    if (!replayable) return false;
    if (reachedMember && this.hasBody && !isIdempotent(this.req.method ?? '')) return false;
    return balancer.retryBudget.tryRetry(this.proxy.deps.clock.now());
  }

  clientOrigin(): string {
    const host = this.req.headers.host;
    return host ? `${this.proto}://${host}` : '';
  }

  explainText(): string {
    const d = this.decision;
    const parts = [
      `route=${this.sticky ? `${this.sticky.route} (${this.sticky.source})` : '-'}`,
      `member=${this.member?.route ?? '-'}`,
      `reason=${d?.kind === 'pick' ? d.reason : d?.kind ?? '-'}`,
      `attempts=${this.attempts}`,
    ];
    if (d) parts.push(`detail=${d.detail}`);
    if (this.explainParts!.length > 0) parts.push(`history=${this.explainParts!.join(' | ')}`);
    return parts.join('; ').replace(/[^\t\x20-\x7e]/g, '?');
  }

  finish(): void {
    if (this.done) return;
    this.done = true;
    const member = this.member;
    const deps = this.proxy.deps;
    if (member !== undefined) {
      member.counters.bytesIn += this.bytesIn;
      member.transferred += this.bytesIn;
      this.mount.balancer.release(member);
      this.member = undefined;
      this.lastMember = member;
    }
    const durationMs = deps.clock.now() - this.startedAt;
    const status = this.status || this.res.statusCode;
    deps.onFinish?.({ balancer: this.mount.balancer.name, member: this.lastMember?.route, status, durationMs, upstreamMs: this.upstreamMs, attempts: this.attempts });
    deps.accessLog?.info({
      method: this.req.method,
      url: this.req.url,
      status,
      balancer: this.mount.balancer.name,
      member: this.lastMember?.route,
      route: this.sticky?.route,
      reason: this.decision?.kind === 'pick' ? this.decision.reason : this.decision?.kind,
      attempts: this.attempts,
      upstreamMs: this.upstreamMs,
      ms: Math.round(durationMs * 1000) / 1000,
      bytes: this.bytesIn,
      client: this.req.socket.remoteAddress,
    });
    // Last: the member slot is free before the next pipelined request on this connection is picked.
    this.proxy.next(this.req.socket);
  }

  lastMember: Member | undefined;
  /** 100 Continue still owed to the client (sent when a member is picked). */
  expectContinue = false;
  /** A retry was already granted (budget charged) when the failure was detected in onHeaders. */
  retryReserved = false;
  /** The answer for the previous failed attempt, used when no other member can be tried. */
  lastFailure: { readonly status: number; readonly detail: string; readonly retryAfter: boolean } | undefined;
}

class RetryableStatus extends Error {
  readonly code = 'COHORT_FAILONSTATUS';
  constructor(readonly status: number) {
    super(`member answered ${status}, listed in failonstatus`);
  }
}

/**
 * The request path: validate → mount → sticky route → pick → forward →
 * stream → fail over. Holds no per-request state itself.
 */
export class RequestProxy {
  private mounts: Mount[] = [];
  private readonly inFlight: WeakMap<object, (() => void)[]>;
  private readonly condemned: WeakSet<object>;

  constructor(readonly deps: ProxyDeps) {
    const book = deps.connections ?? new ConnectionBook();
    this.inFlight = book.inFlight;
    this.condemned = book.condemned;
  }

  /** ProxyPassReverse rules per mount, rebuilt when members change (setMounts is called then). */
  private reverseRules = new Map<Mount, ReverseRule>();

  setMounts(mounts: readonly Mount[]): void {
    // Longest path first, so /examples/x wins over /examples and /.
    this.mounts = [...mounts].sort((a, b) => b.path.length - a.path.length);
    this.reverseRules = new Map();
  }

  private reverseRule(mount: Mount): ReverseRule {
    let rule = this.reverseRules.get(mount);
    if (rule === undefined) {
      rule = reverseRuleFor(mount);
      this.reverseRules.set(mount, rule);
    }
    return rule;
  }

  matchMount(path: string): Mount | undefined {
    for (const m of this.mounts) {
      const p = m.path;
      if (p === '/' || path === p || (path.startsWith(p) && (p.endsWith('/') || path[p.length] === '/' || path[p.length] === '?' || path[p.length] === ';'))) return m;
    }
    return undefined;
  }

  private mayExplain(ip: string): boolean {
    const e = this.deps.explain;
    if (e !== 'local') return e;
    return ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.') || this.deps.isTrusted(ip);
  }

  /** Entry point for a request; `proto` is the client connection's scheme. */
  handle(req: IncomingMessage, res: ServerResponse, proto: string, expectContinue = false): void {
    if (this.condemned.has(req.socket)) {
      // The socket ends once the refusal is written; this request is not served.
      req.socket.destroySoon();
      return;
    }
    const queue = this.inFlight.get(req.socket);
    if (queue !== undefined) {
      queue.push(() => {
        if (req.socket.destroyed) this.next(req.socket);
        else this.handleNow(req, res, proto, expectContinue);
      });
      return;
    }
    this.inFlight.set(req.socket, []);
    this.handleNow(req, res, proto, expectContinue);
  }

  /** The exchange on `socket` is over: start the next pipelined request, if any. */
  next(socket: object): void {
    const queue = this.inFlight.get(socket);
    if (queue === undefined) return;
    const run = queue.shift();
    if (run === undefined) this.inFlight.delete(socket);
    else run();
  }

  private handleNow(req: IncomingMessage, res: ServerResponse, proto: string, expectContinue: boolean): void {
    const rejection = validateRequest(req, this.deps.maxUrlLength);
    if (rejection !== undefined) {
      this.deps.log.info({ client: req.socket.remoteAddress, status: rejection.status, reason: rejection.reason }, 'request refused');
      this.condemned.add(req.socket);
      respondPlain(res, rejection.status, `${rejection.reason}\n`, true);
      this.next(req.socket);
      return;
    }
    let target = req.url!;
    if (target[0] !== '/') {
      // absolute-form: only its path counts; the authority never picks a destination.
      if (target === '*') target = '/';
      else {
        try {
          const u = new URL(target);
          target = `${u.pathname}${u.search}`;
        } catch {
          this.condemned.add(req.socket);
          respondPlain(res, 400, 'invalid request target\n', true);
          this.next(req.socket);
          return;
        }
      }
    }
    const mount = this.matchMount(target);
    if (mount === undefined) {
      respondPlain(res, 404, 'no balancer is mounted at this path\n', false);
      this.next(req.socket);
      return;
    }
    const ex = new Exchange(this, req, res, mount);
    ex.proto = proto;
    ex.path = mount.upstream === mount.path ? target : rewritePrefix(target, mount.path, mount.upstream);
    const balancer = mount.balancer;
    ex.sticky = extractRoute(req.headers.cookie, target, balancer.sticky);
    if (req.headers['x-cohort-explain'] !== undefined && this.mayExplain(req.socket.remoteAddress ?? '')) ex.explainParts = [];
    const clientIp = req.socket.remoteAddress ?? '';
    ex.headers = requestHeadersForMember(req.rawHeaders, {
      clientIp,
      trusted: this.deps.isTrusted(clientIp),
      proto,
      host: req.headers.host,
      preserveHost: mount.preserveHost,
    });
    if (mount.reverse) ex.reverse = this.reverseRule(mount);
    const cl = req.headers['content-length'];
    ex.hasBody = req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
    res.on('close', () => {
      if (!ex.done) {
        // The client went away: free the slot, then stop the member's work. Finish first, so that
        // the abort's onError finds the exchange done and does not count it as a member error.
        const abort = ex.abort;
        ex.finish();
        abort?.(new Error('client closed the connection'));
      }
    });
    balancer.retryBudget.recordRequest(this.deps.clock.now());
    // Expect: 100-continue is answered once a member was picked, so that a client whose request
    // nobody can take gets its final status without sending the body (RFC 9110 §10.1.1).
    // Its body is streamed, not buffered: buffering would wait for a body the client holds back.
    ex.expectContinue = expectContinue;
    if (ex.hasBody && !expectContinue && cl !== undefined && Number(cl) <= this.deps.bufferBodyLimit) {
      // Small bodies are buffered so that a failed attempt can be retried elsewhere.
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        ex.body = Buffer.concat(chunks);
        ex.bodyBuffered = true;
        this.attempt(ex);
      });
      req.on('error', () => ex.finish());
      return;
    }
    if (ex.hasBody) ex.body = req;
    this.attempt(ex);
  }

  /** Picks a member (maybe waiting in the queue) and dispatches one attempt. */
  private attempt(ex: Exchange): void {
    const balancer = ex.mount.balancer;
    const acquired = balancer.acquire({ route: ex.sticky?.route, exclude: ex.exclude ?? EMPTY_EXCLUDE });
    if (acquired instanceof Promise) {
      acquired.then((d) => this.dispatch(ex, d), (err) => this.fail(ex, 500, `internal error: ${(err as Error).message}`));
    } else this.dispatch(ex, acquired);
  }

  private dispatch(ex: Exchange, d: Decision): void {
    if (ex.done) {
      if (d.kind === 'pick') ex.mount.balancer.release(d.member);
      return;
    }
    ex.decision = d;
    if (d.kind !== 'pick') {
      const last = ex.lastFailure;
      if (last !== undefined) this.fail(ex, last.status, `${last.detail}; no other member: ${d.detail}`, last.retryAfter);
      else this.fail(ex, 503, d.detail, true);
      return;
    }
    const member = d.member;
    ex.member = member;
    ex.attempts++;
    if (ex.expectContinue) {
      ex.expectContinue = false;
      ex.res.writeContinue();
    }
    const seq = ++ex.attemptSeq;
    member.counters.requests++;
    if (ex.bodyBuffered) {
      const len = (ex.body as Buffer).length;
      member.counters.bytesOut += len;
      member.transferred += len;
    }
    ex.explainParts?.push(`${member.route}: ${d.reason}`);
    ex.attemptStartedAt = this.deps.clock.now();
    const pool = this.deps.pools.get(member);
    // A handler per attempt, so that a late callback of a failed attempt can't touch the next one.
    const handler: Dispatcher.DispatchHandler = seq === 1
      ? ex
      : {
          onConnect: (abort) => ex.attemptSeq === seq && ex.onConnect(abort),
          onHeaders: (s, h, r, t) => ex.attemptSeq === seq && ex.onHeaders(s, h as Buffer[], r, t),
          onData: (c) => ex.attemptSeq === seq && ex.onData(c),
          onComplete: () => ex.attemptSeq === seq && ex.onComplete(),
          onError: (e) => ex.attemptSeq === seq && ex.onError(e),
        };
    if (seq === 1) ex.res.on('drain', () => ex.resume?.());
    pool.dispatch({
      path: ex.path,
      method: ex.req.method as Dispatcher.HttpMethod,
      headers: ex.headers,
      body: ex.body as never,
      // We handle upgrades separately; idempotency is decided here, not by undici.
      idempotent: false,
      blocking: false,
      reset: false,
    }, handler);
  }

  /** Called by the exchange when an attempt failed before or during the response. */
  attemptFailed(ex: Exchange, err: Error): void {
    const member = ex.member;
    if (ex.done) return;
    const code = err instanceof RetryableStatus ? err.code : errorCode(err);
    const now = this.deps.clock.now();
    if (member !== undefined) {
      member.counters.errors++;
      ex.mount.balancer.release(member);
      ex.lastMember = member;
      ex.member = undefined;
      if (CONNECT_ERRORS.has(code) || RESET_ERRORS.has(code) || TIMEOUT_ERRORS.has(code)) {
        const source = CONNECT_ERRORS.has(code) ? 'connect' : TIMEOUT_ERRORS.has(code) ? 'timeout' : 'reset';
        member.markError(source, `${code}: ${err.message}`, now, Date.now());
      }
      ex.explainParts?.push(`${member.route} failed: ${code}`);
    }
    if (ex.res.headersSent) {
      // Mid-response: the client can only see the connection cut.
      this.deps.log.warn({ member: member?.route, code, err: err.message }, 'member failed mid-response');
      ex.res.destroy(err);
      ex.finish();
      return;
    }
    const answer = failureAnswer(code, member?.route ?? '?', err);
    const retryable = code === 'COHORT_FAILONSTATUS' || CONNECT_ERRORS.has(code) || RESET_ERRORS.has(code) || TIMEOUT_ERRORS.has(code);
    const reserved = ex.retryReserved;
    ex.retryReserved = false;
    if (retryable && member !== undefined && (reserved || ex.canRetry(!CONNECT_ERRORS.has(code)))) {
      (ex.exclude ??= new Set()).add(member);
      member.counters.retries++;
      // If no other member can take it, the client gets this failure's answer, not a bare "no member".
      ex.lastFailure = answer;
      this.deps.log.info({ member: member.route, code, attempt: ex.attempts }, 'retrying on another member');
      this.attempt(ex);
      return;
    }
    this.fail(ex, answer.status, answer.detail, answer.retryAfter);
  }

  private fail(ex: Exchange, status: number, detail: string, retryAfter = false): void {
    if (ex.done) return;
    ex.status = status;
    if (status >= 500) this.deps.log.warn({ balancer: ex.mount.balancer.name, status, detail, url: ex.req.url }, 'request failed');
    const headers: Record<string, string> = {};
    if (retryAfter) headers['retry-after'] = '1';
    if (ex.explainParts !== undefined) headers['x-cohort-explain'] = ex.explainText();
    const close = ex.hasBody && !ex.bodyBuffered && !ex.req.readableEnded;
    // The unread rest of this body must not be parsed as further requests.
    if (close) this.condemned.add(ex.req.socket);
    respondPlain(ex.res, status, `${statusText(status)}: ${detail}\n`, close, headers);
    ex.finish();
  }
}

interface FailureAnswer {
  readonly status: number;
  readonly detail: string;
  readonly retryAfter: boolean;
}

/** What the client is told when an attempt failed before any response byte and no retry follows. */
function failureAnswer(code: string, route: string, err: Error): FailureAnswer {
  if (err instanceof RetryableStatus) {
    return { status: 503, detail: `member ${route} answered ${err.status} (failonstatus) and no retry was possible`, retryAfter: true };
  }
  // Like httpd: a member that could not be reached at all makes the service unavailable, not the gateway broken.
  if (code === 'ECONNREFUSED') return { status: 503, detail: `member ${route} could not be reached (${code}) and no other member was available`, retryAfter: true };
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return { status: 504, detail: `member ${route} did not answer in time (${code})`, retryAfter: false };
  }
  if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' || code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return { status: 400, detail: 'request body did not match its Content-Length', retryAfter: false };
  }
  return { status: 502, detail: `member ${route} failed: ${code}`, retryAfter: false };
}

function statusText(status: number): string {
  switch (status) {
    case 502: return 'Bad Gateway';
    case 503: return 'Service Unavailable';
    case 504: return 'Gateway Timeout';
    case 400: return 'Bad Request';
    default: return String(status);
  }
}

/** Writes a small plain-text answer; `close` ends the connection after it (used when the request body may be unread). */
export function respondPlain(res: ServerResponse, status: number, body: string, close: boolean, extra?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string | number> = { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...extra };
  if (close) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
  if (close) res.once('finish', () => res.socket?.destroySoon?.());
}

export function rewritePrefix(target: string, from: string, to: string): string {
  const f = from.replace(/\/$/, '');
  const t = to.replace(/\/$/, '');
  const rest = target.slice(f.length);
  if (rest === '' || rest[0] === '?' || rest[0] === ';') return `${t}${t === '' && (rest === '' || rest[0] !== '/') ? '/' : ''}${rest}`;
  return `${t}${rest[0] === '/' ? '' : '/'}${rest}`;
}

function reverseRuleFor(mount: Mount): ReverseRule {
  const upstream = mount.upstream.replace(/\/$/, '');
  return {
    memberPrefixes: mount.balancer.members.flatMap((m) => [`${m.key}${upstream}`, `${m.url.protocol}//${m.url.hostname}${upstream}`]),
    mountPath: mount.path,
    upstreamPath: mount.upstream,
  };
}
