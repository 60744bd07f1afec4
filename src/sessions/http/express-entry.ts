/**
 * `cohort-cluster/express`: everything an Express (or Connect, or node:http) app needs — Cohort's own
 * `req.session` middleware, and the express-session Store for apps that keep express-session. The
 * package's type entry for this path (types/express.d.ts) also declares `req.session` / `req.sessionID`
 * on Express.Request for Cohort's middleware; apps that keep express-session get their types from
 * @types/express-session and import the Store from `cohort-cluster/sessions` instead.
 */
export { sessionMiddleware, withSessions, bindSession, resolveSessionOptions, type SessionMiddlewareOptions, type SessionRequest } from './middleware.js';
export { cohortStore, CohortSessionStore, storeKey, expiresAt, DEFAULT_STORE_TTL_S, type CohortStoreOptions, type CohortStoreMethods, type StoreSessionData, type StoredSession } from './express-store.js';
export { routedGenid } from './genid.js';
export { SessionCookie } from './session-cookie.js';
export type { SessionApi, SessionData, SessionFacade, ExpressSessionOptions } from './request-session.js';
export { newMigrationCounts } from './migration.js';
export { registerMigrationMetric } from './migration-metrics.js';
export type { MigrationOptions, MigrationCounts, MigrationOutcome, OldSessionStore } from './migration.js';
export { newSessionCookieCounts, registerSessionCookieMetric, SESSION_COOKIES_METRIC, type SessionCookieCounts, type SessionCookieOutcome } from './cookie-metrics.js';
