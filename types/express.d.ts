// Type entry of `cohort-cluster/express` (hand-written: it augments Express.Request, which must not leak
// into apps that only use the Store with express-session).
import type { SessionFacade } from '../dist/src/sessions/http/request-session.js';
export * from '../dist/src/sessions/http/express-entry.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Cohort's replicated session (sessionMiddleware, or `cohort node`). */
      session: SessionFacade;
      /** The session's id, `<base>.<route>` (express-session's req.sessionID). */
      readonly sessionID: string;
    }
  }
}
