// Type entry of `cohort-cluster/fastify` (hand-written: it augments FastifyRequest, which must not clash
// with @fastify/session's declarations in apps that keep @fastify/session).
import type { FastifySessionApi, SessionFacade } from '../dist/src/sessions/http/request-session.js';
export * from '../dist/src/sessions/http/fastify-entry.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Cohort's replicated session, with @fastify/session's get/set. */
    session: SessionFacade & FastifySessionApi;
    /** The session's id, `<base>.<route>`. */
    readonly sessionId: string;
  }
}
