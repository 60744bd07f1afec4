/**
 * An express-session compatible Store backed by a Cohort SessionManager, so
 * an existing express-session app becomes replicated by changing one line:
 *
 *   import session from 'express-session';
 *   app.use(session({ store: new (cohortStore(session.Store))(manager), genid: ..., secret }));
 *
 * express-session hands the Store whole session objects; the Store diffs
 * them against the held copy per top-level key so only changed keys
 * replicate. express-session's Cookie (with a Date) is normalized through
 * JSON first, as every JSON-serializing store does.
 */
import { EventEmitter } from 'node:events';
import type { JsonValue } from '../../cluster/types.js';
import type { SessionManager } from '../contract.js';
import { formatSessionId, newSessionBase, parseSessionId } from '../model/session-id.js';

type Cb<T = void> = (err?: unknown, value?: T) => void;
type SessionData = Record<string, unknown> & { cookie?: { originalMaxAge?: number | null } };

/** The store methods, mixed into whatever base class express-session wants. */
export interface CohortStoreMethods {
  get(sid: string, cb: Cb<SessionData | null>): void;
  set(sid: string, sess: SessionData, cb?: Cb): void;
  destroy(sid: string, cb?: Cb): void;
  touch(sid: string, sess: SessionData, cb?: Cb): void;
  all(cb: Cb<Record<string, SessionData>>): void;
  length(cb: Cb<number>): void;
  clear(cb?: Cb): void;
  /** An id for express-session's `genid` option: `<random>.<route>` so balancers can stick. */
  genid(): string;
}

function done<T>(p: Promise<T>, cb: Cb<T> | undefined): void {
  p.then(
    (v) => cb?.(undefined, v),
    (e: unknown) => (cb ? cb(e) : undefined),
  );
}

function methods(manager: SessionManager): CohortStoreMethods {
  const read = async (sid: string): Promise<SessionData | null> => {
    const s = await manager.load(sid, { takeOver: false });
    return s ? (JSON.parse(JSON.stringify(s.rawAttributes)) as SessionData) : null;
  };
  return {
    get(sid, cb) {
      done(read(sid), cb);
    },
    set(sid, sess, cb) {
      done(
        (async () => {
          const data = JSON.parse(JSON.stringify(sess)) as Record<string, JsonValue>;
          // Writing takes ownership (only the owner advances a version); the sid itself never changes.
          const s = (await manager.load(sid)) ?? manager.create(sid);
          const attrs = s.attributes;
          const held = s.rawAttributes;
          for (const k of Object.keys(held)) if (!(k in data)) delete attrs[k];
          for (const k of Object.keys(data)) {
            if (!(k in held) || JSON.stringify(held[k]) !== JSON.stringify(data[k])) attrs[k] = data[k]!;
          }
          const maxAge = sess.cookie?.originalMaxAge;
          if (typeof maxAge === 'number' && maxAge > 0 && maxAge !== s.maxInactiveMs) s.setMaxInactive(maxAge);
          await manager.commit(s);
        })(),
        cb,
      );
    },
    destroy(sid, cb) {
      done(
        (async () => {
          const s = await manager.load(sid, { takeOver: false });
          if (s) await manager.invalidate(s);
        })(),
        cb,
      );
    },
    touch(sid, _sess, cb) {
      done(
        (async () => {
          const s = await manager.load(sid);
          if (s) await manager.commit(s);
        })(),
        cb,
      );
    },
    all(cb) {
      done(
        (async () => {
          const out: Record<string, SessionData> = {};
          for (const id of await manager.ids()) {
            const d = await read(id);
            if (d) out[id] = d;
          }
          return out;
        })(),
        cb,
      );
    },
    length(cb) {
      done(manager.ids().then((l) => l.length), cb);
    },
    clear(cb) {
      done(manager.clear(), cb);
    },
    genid() {
      return formatSessionId(newSessionBase(), manager.route);
    },
  };
}

/**
 * A Store class extending `Base` (pass express-session's `session.Store`, which
 * provides createSession/load/regenerate). Without a base it extends EventEmitter.
 */
export function cohortStore<B extends abstract new (...a: any[]) => object>(Base?: B): new (manager: SessionManager) => InstanceType<B> & CohortStoreMethods {
  const Parent = (Base ?? EventEmitter) as unknown as new () => object;
  class CohortStore extends Parent {
    constructor(manager: SessionManager) {
      super();
      Object.assign(this, methods(manager));
    }
  }
  return CohortStore as unknown as new (manager: SessionManager) => InstanceType<B> & CohortStoreMethods;
}

/** A standalone Store (EventEmitter base) for frameworks that only need the methods. */
export const CohortSessionStore = cohortStore();

export { parseSessionId };
