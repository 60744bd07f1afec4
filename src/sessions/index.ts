/**
 * Public API of Cohort's replicated sessions.
 *
 *   const manager = new ReplicatedSessionManager({ channel, config: { mode: 'backup', backups: 1 } });
 *   await manager.start();                       // state transfer, then ready=true in the channel meta
 *   app.use(sessionMiddleware(manager));         // Express / Connect
 *   http.createServer(withSessions(manager, handler));
 *   fastify.register(cohortFastifySessions, { manager });
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
  type RandomBytes,
} from './session-id.js';
export { Session, type SessionLimits } from './session.js';
export type { Attributes } from './tracking.js';
export type { SessionDelta, SessionSnapshot } from './wire.js';
export { classifyDelta, type DeltaDecision } from './ordering.js';
export { rankRoutes, backupRoutes, orphanHolders } from './placement.js';
export { isExpired, shouldNotifyAccess, type ExpiryPolicy } from './expiry.js';
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
} from './manager.js';
export { ReplicatedSessionManager, ManagerState, type ReplicatedManagerOptions, type ReplicationStats } from './replicated-manager.js';
export type { TransferReport, TransferProgress } from './state-transfer.js';
export type { HandoffReport } from './handoff.js';
export { chooseNewOwner, planHandoff, type HandoffCandidate } from './handoff-plan.js';
export { RedisSessionManager, type RedisManagerOptions } from './redis-manager.js';
export { readCookie, readPathParameter, stripPathParameter, serializeSessionCookie } from './http-cookie.js';
export { RequestSession, type SessionFacade, type SessionApi, type SessionCookieView } from './request-session.js';
export { sessionMiddleware, withSessions, bindSession, type SessionMiddlewareOptions, type SessionRequest } from './middleware.js';
export { cohortStore, CohortSessionStore, type CohortStoreMethods } from './express-store.js';
export { cohortFastifySessions, type FastifySessionOptions } from './fastify.js';
export {
  SessionBackendRegistry,
  defaultSessionBackends,
  sessionsConfigSchema,
  redisConfigSchema,
  type SessionBackendFactory,
  type SessionDeps,
  type SessionsConfigInput,
} from './factory.js';
