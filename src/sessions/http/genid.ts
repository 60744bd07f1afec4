/**
 * A `genid` for express-session / @fastify/session (`idGenerator`) that puts the node's route in the id,
 * `<144 random bits, base64url>.<route>`, so that Cohort's balancer (or httpd's stickysession) keeps the
 * user on that node even through express-session's signed cookie. `route` defaults to `COHORT_ROUTE`, which
 * `cohort node` sets for the app.
 */
import { formatSessionId, newSessionBase } from '../model/session-id.js';

export function routedGenid(route: string | (() => string) = () => process.env.COHORT_ROUTE ?? ''): () => string {
  return () => formatSessionId(newSessionBase(), typeof route === 'function' ? route() : route);
}
