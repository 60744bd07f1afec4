/**
 * Framework edges: a wrapper for a plain node:http handler and a
 * Connect/Express middleware. Both give `req.session` and commit at the end
 * of the request: `res.end` is deferred until the commit resolved (for a
 * sync request, until the peers applied it), and the Set-Cookie header is
 * decided when the headers are written.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cookieConfigSchema, parseConfig, type CookieConfigInput } from '../config.js';
import { SessionError, SessionErrorCode } from '../errors.js';
import { silentLogger, type SessionLogger, type SessionManager } from '../contract.js';
import { RequestSession, defaultedOptionNotices, SESSION_OPTION_DEFAULTED, type ExpressSessionOptions, type RequestSessionOptions, type SessionFacade } from './request-session.js';
import { stripPathParameter } from './cookie.js';

export interface SessionMiddlewareOptions extends ExpressSessionOptions {
  readonly cookie?: CookieConfigInput;
  /** express-session's `name`: the cookie's name (same as `cookie.name`; default JSESSIONID). */
  readonly name?: string;
  /** Synchronous commits for every request, or per request. Default: the manager's consistency. */
  readonly sync?: boolean | ((req: IncomingMessage) => boolean);
  readonly logger?: SessionLogger;
  /** Import the sessions of the app's previous session layer on first use (docs/migration.md). */
  readonly migrate?: RequestSessionOptions['migrate'];
  /** Counts cookies that named no session (malformed, unknown): `newSessionCookieCounts()`, published by `registerSessionCookieMetric`. */
  readonly cookieCounts?: RequestSessionOptions['cookieCounts'];
}

export interface SessionRequest extends IncomingMessage {
  session: SessionFacade;
  /** express-session's req.sessionID: the session's id (`<base>.<route>`). */
  readonly sessionID: string;
}

/** The options a request needs, resolved once per middleware. */
export type ResolvedSessionOptions = Omit<RequestSessionOptions, 'holder'> & { readonly logger: SessionLogger };

/**
 * Attaches the session to `req` and hooks `res` so that the commit happens
 * before the response ends. Resolves when the session is loaded.
 */
export async function bindSession(manager: SessionManager, req: IncomingMessage, res: ServerResponse, options: ResolvedSessionOptions): Promise<RequestSession> {
  const rs = new RequestSession(manager, req, options);
  // Like Tomcat, route on the path without `;jsessionid=…` (the id was read above).
  if (req.url && req.url.includes(';')) req.url = stripPathParameter(req.url, options.cookie.pathParameter);
  await rs.begin();
  (req as SessionRequest).session = rs.facade;
  Object.defineProperty(req, 'sessionID', { get: () => rs.id, configurable: true, enumerable: true });

  const writeHead = res.writeHead;
  res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
    const c = rs.cookieHeaders();
    if (c.length > 0 && !this.headersSent) {
      const prev = this.getHeader('set-cookie');
      const list = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)];
      this.setHeader('set-cookie', [...list, ...c]);
    }
    return writeHead.apply(this, args) as ServerResponse;
  } as ServerResponse['writeHead'];

  const end = res.end;
  let ending = false;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    if (ending) return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    ending = true;
    rs.finish().then(
      () => (end as (...a: unknown[]) => ServerResponse).apply(res, args),
      (err: unknown) => {
        const code = (err as SessionError).code;
        options.logger.error({ node: manager.route, code, err: String(err) }, 'session commit failed');
        if (!res.headersSent && (code === SessionErrorCode.ReplicationFailed || code === SessionErrorCode.TooLarge)) {
          res.statusCode = 503;
          res.removeHeader('content-length');
          res.setHeader('content-type', 'text/plain; charset=utf-8');
          (end as (...a: unknown[]) => ServerResponse).call(res, `session could not be saved (${code})\n`);
        } else {
          (end as (...a: unknown[]) => ServerResponse).apply(res, args);
        }
      },
    );
    return this;
  } as ServerResponse['end'];
  return rs;
}

/** Resolves the middleware options once (cookie config validated, `name` applied). */
export function resolveSessionOptions(options: SessionMiddlewareOptions): ResolvedSessionOptions {
  const cookieInput = options.name === undefined ? options.cookie : { ...options.cookie, name: options.name };
  const { cookie: _c, name: _n, logger, ...rest } = options;
  // express-session's defaults (resave and saveUninitialized true) apply; like express-session, say so once.
  for (const msg of defaultedOptionNotices(options)) logger?.warn({ code: SESSION_OPTION_DEFAULTED }, msg);
  return { ...rest, cookie: parseConfig(cookieConfigSchema, cookieInput, 'sessions.cookie'), logger: logger ?? silentLogger };
}

const resolve = resolveSessionOptions;

/** Connect/Express middleware: `app.use(sessionMiddleware(manager))`. */
export function sessionMiddleware(manager: SessionManager, options: SessionMiddlewareOptions = {}) {
  const o = resolve(options);
  return function cohortSession(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    bindSession(manager, req, res, o).then(() => next(), next);
  };
}

/** Wraps a plain node:http handler: `http.createServer(withSessions(manager, handler))`. */
export function withSessions(
  manager: SessionManager,
  handler: (req: SessionRequest, res: ServerResponse) => void | Promise<void>,
  options: SessionMiddlewareOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  const o = resolve(options);
  return (req, res) => {
    bindSession(manager, req, res, o)
      .then(() => handler(req as SessionRequest, res))
      .catch((err: unknown) => {
        o.logger.error({ node: manager.route, err: String(err) }, 'request failed');
        if (!res.headersSent) {
          res.statusCode = err instanceof SessionError ? 503 : 500;
          res.end();
        } else res.destroy();
      });
  };
}
