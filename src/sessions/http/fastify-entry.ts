/**
 * `cohort-cluster/fastify`: Cohort's Fastify plugin (`request.session` with @fastify/session's `get/set`),
 * and the Store for apps that keep @fastify/session (`cohortStore()`: get/set/destroy with callbacks).
 * The package's type entry for this path (types/fastify.d.ts) declares `request.session` /
 * `request.sessionId` on FastifyRequest for Cohort's plugin; apps that keep @fastify/session import the
 * Store from `cohort-cluster/sessions` instead (its own declarations apply).
 */
export { cohortFastifySessions, SESSION_DECORATOR_TAKEN, type FastifySessionOptions } from './fastify.js';
export { cohortStore, CohortSessionStore, type CohortStoreOptions } from './express-store.js';
export { routedGenid } from './genid.js';
export type { SessionApi, SessionData, SessionFacade, FastifySessionApi } from './request-session.js';
export { newSessionCookieCounts, registerSessionCookieMetric, SESSION_COOKIES_METRIC, type SessionCookieCounts, type SessionCookieOutcome } from './cookie-metrics.js';
