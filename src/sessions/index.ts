/**
 * Public API of Cohort's replicated sessions.
 *
 *   const manager = new ReplicatedSessionManager({ channel, config: { mode: 'backup', backups: 1 } });
 *   await manager.start();                       // state transfer, then ready=true in the channel meta
 *   app.use(sessionMiddleware(manager));         // Express / Connect
 *   http.createServer(withSessions(manager, handler));
 *   fastify.register(cohortFastifySessions, { manager });
 *
 * Package paths: `cohort-cluster/sessions` (this file), `cohort-cluster/express` (http/express-entry.ts),
 * `cohort-cluster/fastify` (http/fastify-entry.ts).
 */
export { SessionError, SessionErrorCode } from './errors.js';
export {
  ROUTE_SEPARATOR,
  formatSessionId,
  newSessionBase,
  parseSessionId,
  parseSessionIdOrThrow,
  rewriteRoute,
  isValidRoute,
  type ParsedSessionId,
} from './model/session-id.js';
export { Session, type SessionLimits } from './model/session.js';
export type { Attributes } from './model/tracking.js';
export type { SessionDelta, SessionSnapshot } from './replication/wire.js';
export { classifyDelta, type DeltaDecision } from './replication/ordering.js';
export { rankRoutes, backupRoutes, orphanHolders } from './replication/placement.js';
export { isExpired, shouldNotifyAccess, type ExpiryPolicy } from './model/expiry.js';
export {
  replicationConfigSchema,
  cookieConfigSchema,
  type ReplicationConfig,
  type ReplicationConfigInput,
  type CookieConfig,
  type CookieConfigInput,
} from './config.js';
export {
  silentLogger,
  type SessionManager,
  type CommitOptions,
  type CommitResult,
  type LoadOptions,
  type SessionEvent,
  type SessionEventMap,
  type SessionLogger,
} from './contract.js';
export { ReplicatedSessionManager, ManagerState, type ReplicatedManagerOptions, type ReplicationStats } from './replication/replicated-manager.js';
export type { TransferReport, TransferProgress } from './replication/state-transfer.js';
export type { HandoffReport } from './replication/handoff.js';
export { chooseNewOwner, planHandoff, type HandoffCandidate } from './replication/handoff-plan.js';
export { RedisSessionManager, type RedisManagerOptions, type RedisStats } from './redis/redis-manager.js';
export { RedisError, RedisErrorCode } from './redis/errors.js';
export { redisManagerFromConfig } from './redis/from-config.js';
export { redisConfigSchema, DEFAULT_REDIS_URL, type RedisConfigInput } from './redis/config.js';
export { readCookie, readPathParameter, stripPathParameter, serializeSessionCookie, serializeCookie, type CookieAttributes } from './http/cookie.js';
export {
  RequestSession,
  type SessionFacade,
  type SessionApi,
  type SessionCookieView,
  type SessionData,
  type FastifySessionApi,
  type ExpressSessionOptions,
  type RequestSessionOptions,
} from './http/request-session.js';
export { SessionCookie } from './http/session-cookie.js';
export { sessionMiddleware, withSessions, bindSession, resolveSessionOptions, type SessionMiddlewareOptions, type SessionRequest } from './http/middleware.js';
export {
  cohortStore,
  CohortSessionStore,
  storeKey,
  expiresAt,
  DEFAULT_STORE_TTL_S,
  type CohortStoreMethods,
  type CohortStoreOptions,
  type StoreSessionData,
  type StoredSession,
} from './http/express-store.js';
export { cohortFastifySessions, SESSION_DECORATOR_TAKEN, type FastifySessionOptions } from './http/fastify.js';
export { routedGenid } from './http/genid.js';
export {
  unsign,
  oldSessionId,
  fetchOldSession,
  newMigrationCounts,
  DEFAULT_MAX_OLD_ID_LENGTH,
  type MigrationOptions,
  type MigrationCounts,
  type MigrationOutcome,
  type OldSessionStore,
} from './http/migration.js';
export { registerMigrationMetric, MIGRATIONS_METRIC } from './http/migration-metrics.js';
export { newSessionCookieCounts, registerSessionCookieMetric, SESSION_COOKIES_METRIC, type SessionCookieCounts, type SessionCookieOutcome } from './http/cookie-metrics.js';
export { CLEAR_TOPIC, clearEverywhere, type ClearResult } from './replication/cluster-clear.js';
export {
  SessionBackendRegistry,
  defaultSessionBackends,
  sessionsConfigSchema,
  type SessionBackend,
  type SessionsSection,
  type SessionDeps,
  type SessionsConfigInput,
} from './registry.js';
