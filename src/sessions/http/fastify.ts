/**
 * Fastify plugin (plain function with Fastify's plugin shape; fastify itself
 * is not a dependency). Usage:
 *
 *   fastify.register(cohortFastifySessions, { manager, cookie: { name: 'JSESSIONID' } });
 *   fastify.get('/', async (req) => { req.session.n = (req.session.n ?? 0) + 1; ... });
 *
 * The commit runs in `onSend`, before the response leaves, and the
 * Set-Cookie header is added there.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cookieConfigSchema, parseConfig, type CookieConfigInput } from '../config.js';
import { silentLogger, type SessionLogger, type SessionManager } from '../contract.js';
import { RequestSession, defaultedOptionNotices, SESSION_OPTION_DEFAULTED, type ExpressSessionOptions, type RequestSessionOptions } from './request-session.js';

export interface FastifySessionOptions extends ExpressSessionOptions {
  readonly manager: SessionManager;
  readonly cookie?: CookieConfigInput;
  /** @fastify/session's `cookieName`: the cookie's name (same as `cookie.name`). */
  readonly cookieName?: string;
  readonly sync?: boolean | ((req: IncomingMessage) => boolean);
  /** Import the sessions of the app's previous session layer on first use (docs/migration.md). */
  readonly migrate?: RequestSessionOptions['migrate'];
  /** Counts cookies that named no session (malformed, unknown): `newSessionCookieCounts()`, published by `registerSessionCookieMetric`. */
  readonly cookieCounts?: RequestSessionOptions['cookieCounts'];
  /** Close the manager when the Fastify instance closes (default false: whoever started it closes it). */
  readonly closeManager?: boolean;
  readonly logger?: SessionLogger;
  /** Called instead of the warning when `request.session` is already decorated (the caller reports it). */
  readonly onDecoratorTaken?: () => void;
}

/** The subset of Fastify's API the plugin uses. */
interface FastifyLike {
  decorateRequest(name: string, value: unknown): unknown;
  hasRequestDecorator?(name: string): boolean;
  addHook(name: 'onRequest', fn: (req: FastifyRequestLike, reply: FastifyReplyLike) => Promise<void>): unknown;
  addHook(name: 'onSend', fn: (req: FastifyRequestLike, reply: FastifyReplyLike, payload: unknown) => Promise<unknown>): unknown;
  addHook(name: 'onClose', fn: () => Promise<void>): unknown;
}
interface FastifyRequestLike {
  raw: IncomingMessage;
  session?: unknown;
}
interface FastifyReplyLike {
  raw: ServerResponse;
  getHeader(name: string): unknown;
  header(name: string, value: unknown): unknown;
}

const contexts = new WeakMap<IncomingMessage, RequestSession>();

/** Raised (through `done`) when `request.session` is already decorated by another plugin (e.g. @fastify/session). */
export const SESSION_DECORATOR_TAKEN = 'COHORT_SESSION_DECORATOR_TAKEN';

export function cohortFastifySessions(fastify: FastifyLike, opts: FastifySessionOptions, done: (err?: Error) => void): void {
  const { manager, cookieName, closeManager, logger, onDecoratorTaken, cookie: cookieInput, ...rest } = opts;
  const log = logger ?? silentLogger;
  // No clash with an existing decorator: the app's own session plugin keeps request.session.
  if (fastify.hasRequestDecorator?.('session')) {
    if (onDecoratorTaken) {
      onDecoratorTaken();
      return done();
    }
    log.warn({ node: manager.route, code: SESSION_DECORATOR_TAKEN }, 'request.session is already decorated (the app registers its own session plugin): Cohort\'s Fastify sessions are not registered');
    return done();
  }
  for (const msg of defaultedOptionNotices(rest)) logger?.warn({ node: manager.route, code: SESSION_OPTION_DEFAULTED }, msg);
  const cookie = parseConfig(cookieConfigSchema, cookieName === undefined ? cookieInput : { ...cookieInput, name: cookieName }, 'sessions.cookie');
  fastify.decorateRequest('session', null);
  fastify.decorateRequest('sessionId', null);
  fastify.addHook('onRequest', async (req) => {
    const rs = new RequestSession(manager, req.raw, { ...rest, cookie, fastifyApi: true, holder: req });
    await rs.begin();
    contexts.set(req.raw, rs);
    req.session = rs.facade;
    Object.defineProperty(req, 'sessionId', { get: () => rs.id, configurable: true, enumerable: true });
  });
  fastify.addHook('onSend', async (req, reply, payload) => {
    const rs = contexts.get(req.raw);
    if (!rs) return payload;
    await rs.finish();
    const c = rs.cookieHeaders();
    if (c.length > 0) {
      const prev = reply.getHeader('set-cookie');
      const list = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)];
      reply.header('set-cookie', [...list, ...c]);
    }
    return payload;
  });
  fastify.addHook('onClose', async () => {
    if (closeManager) await manager.close();
  });
  done();
}

// fastify-plugin's conventions: apply to the parent scope, a display name, the Fastify versions supported.
Object.assign(cohortFastifySessions, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'cohort-sessions',
  [Symbol.for('plugin-meta')]: { name: 'cohort-sessions', fastify: '>=4' },
});
