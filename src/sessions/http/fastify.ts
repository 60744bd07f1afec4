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
import type { SessionManager } from '../contract.js';
import { RequestSession } from './request-session.js';

export interface FastifySessionOptions {
  readonly manager: SessionManager;
  readonly cookie?: CookieConfigInput;
  readonly sync?: boolean | ((req: IncomingMessage) => boolean);
}

/** The subset of Fastify's API the plugin uses. */
interface FastifyLike {
  decorateRequest(name: string, value: unknown): unknown;
  addHook(name: 'onRequest', fn: (req: FastifyRequestLike, reply: FastifyReplyLike) => Promise<void>): unknown;
  addHook(name: 'onSend', fn: (req: FastifyRequestLike, reply: FastifyReplyLike, payload: unknown) => Promise<unknown>): unknown;
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

export function cohortFastifySessions(fastify: FastifyLike, opts: FastifySessionOptions, done: (err?: Error) => void): void {
  const cookie = parseConfig(cookieConfigSchema, opts.cookie, 'sessions.cookie');
  fastify.decorateRequest('session', null);
  fastify.addHook('onRequest', async (req) => {
    const rs = new RequestSession(opts.manager, req.raw, { cookie, sync: opts.sync });
    await rs.begin();
    contexts.set(req.raw, rs);
    req.session = rs.facade;
  });
  fastify.addHook('onSend', async (req, reply, payload) => {
    const rs = contexts.get(req.raw);
    if (!rs) return payload;
    await rs.finish();
    const c = rs.cookieHeader();
    if (c) {
      const prev = reply.getHeader('set-cookie');
      const list = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)];
      reply.header('set-cookie', [...list, c]);
    }
    return payload;
  });
  done();
}

// Fastify plugin metadata: apply to the parent scope (like fastify-plugin does).
Object.assign(cohortFastifySessions, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'cohort-sessions',
  [Symbol.for('plugin-meta')]: { name: 'cohort-sessions', fastify: '>=4' },
});
