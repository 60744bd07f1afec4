/**
 * An express-session Store backed by a Cohort SessionManager, so an existing
 * express-session (or connect-redis) app becomes replicated by changing one line:
 *
 *   import session from 'express-session';
 *   import { cohortStore } from 'cohort-cluster/express';
 *   const store = new (cohortStore(session.Store))(manager);
 *   app.use(session({ store, genid: () => store.genid(), secret }));
 *
 * The contract is express-session's (MemoryStore is the reference) plus what
 * connect-redis users rely on (promises without a callback, `ids()`, a `ttl`
 * option, `disableTouch`). Invariants:
 *  - any string is a valid sid: a sid in Cohort's id format is the session's
 *    key as it is (its route keeps it sticky); any other sid is keyed by a
 *    digest of it (the same on every node, so no table is needed). The sid as
 *    it was set is stored with the session, and get() answers only for it, so
 *    `ids()` / `all()` give back exactly the ids that were set;
 *  - the expiry is a wall-clock instant, as express-session's own
 *    `cookie.expires` is: `cookie.expires` when the session has one, else
 *    now + `ttl` (connect-redis's rule), stored with the session and checked
 *    by every read on every node (to the ms); an expired session is destroyed cluster-wide
 *    by the read that finds it. The manager's idle expiry (maxInactiveMs = the
 *    same ttl) only collects what nobody reads again;
 *  - callbacks are called once, on a later turn, outside any promise chain:
 *    an exception thrown by a callback propagates as an uncaught exception,
 *    never as an unhandled rejection; without a callback the method returns
 *    a promise;
 *  - writes take the session's ownership (only the owner advances a version),
 *    reads never do.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { JsonValue } from '../../cluster/types.js';
import type { SessionManager } from '../contract.js';
import type { Session } from '../model/session.js';
import { formatSessionId, newSessionBase, parseSessionId } from '../model/session-id.js';
import { fetchOldSession, type MigrationCounts, type OldSessionStore } from './migration.js';

type Cb<T = void> = (err?: unknown, value?: T) => void;
/** What express-session hands a store: its session data (with `cookie`). */
export type StoreSessionData = Record<string, unknown> & { cookie?: { expires?: string | Date | null; originalMaxAge?: number | null } };
/** A stored session as `all()` returns it: the data plus its `id` (connect-redis's shape). */
export type StoredSession = StoreSessionData & { id: string };

/** connect-redis's default TTL, seconds (one day), for sessions whose cookie has no `expires`. */
export const DEFAULT_STORE_TTL_S = 86_400;

/** Attribute holding the sid as it was set. */
const SID_KEY = '$sid';
/** Attribute holding the wall-clock expiry, ms since epoch. */
const EXPIRES_KEY = '$exp';

export interface CohortStoreOptions {
  /**
   * Seconds a session lives after set/touch when its cookie has no `expires` (default 86400), or a
   * function of the session giving seconds, used for every session (connect-redis's `ttl`).
   */
  readonly ttl?: number | ((sess: StoreSessionData) => number);
  /** touch() does nothing (connect-redis's `disableTouch`): sessions expire from their last set. */
  readonly disableTouch?: boolean;
  /** Wall clock, ms since epoch (tests). */
  readonly now?: () => number;
  /**
   * Migration: the store the app used before (any express-session Store, e.g. connect-redis). A sid this
   * store does not hold is read from there on first use, stored here (replicated) under the same sid and
   * returned, so nobody is logged out by the switch. Outcomes are counted in `importCounts`.
   */
  readonly importFrom?: OldSessionStore;
  readonly importCounts?: MigrationCounts;
}

/** The store methods, mixed into whatever base class express-session wants. */
export interface CohortStoreMethods {
  get(sid: string, cb?: Cb<StoreSessionData | null>): Promise<StoreSessionData | null> | void;
  set(sid: string, sess: StoreSessionData, cb?: Cb): Promise<void> | void;
  destroy(sid: string, cb?: Cb): Promise<void> | void;
  touch(sid: string, sess: StoreSessionData, cb?: Cb): Promise<void> | void;
  all(cb?: Cb<StoredSession[]>): Promise<StoredSession[]> | void;
  ids(cb?: Cb<string[]>): Promise<string[]> | void;
  length(cb?: Cb<number>): Promise<number> | void;
  clear(cb?: Cb): Promise<void> | void;
  /** An id for express-session's `genid` option: `<random>.<route>`, so balancers can stick on it. */
  genid(): string;
}

/** The manager key of a sid: the sid itself in Cohort's id format, else a digest of it. */
export function storeKey(sid: string): string {
  if (parseSessionId(sid)) return sid;
  return createHash('sha256').update(sid).digest('base64url');
}

/**
 * When a session stored now expires, wall ms: `now + ttl(sess)` s when `ttl` is a function, else
 * `cookie.expires` to the ms (as MemoryStore checks it), else `now + cookie.originalMaxAge` ms, else
 * `now + ttl` s (connect-redis's rule).
 */
export function expiresAt(sess: StoreSessionData, ttl: CohortStoreOptions['ttl'], now: number): number {
  if (typeof ttl === 'function') return now + ttl(sess) * 1000;
  const expires = sess.cookie?.expires;
  if (expires !== undefined && expires !== null && expires !== '') return Number(new Date(expires));
  // A cookie with a lifetime but no instant (express-session's Cookie always has both; hand-built data may not).
  const maxAge = sess.cookie?.originalMaxAge;
  if (typeof maxAge === 'number' && Number.isFinite(maxAge)) return now + maxAge;
  return now + (ttl ?? DEFAULT_STORE_TTL_S) * 1000;
}

/** Calls `cb` once, on a later turn and outside the promise chain; or returns the promise. */
function settle<T>(p: Promise<T>, cb: Cb<T> | undefined): Promise<T> | void {
  if (typeof cb !== 'function') return p;
  p.then(
    (v) => void setImmediate(cb, null, v),
    (e: unknown) => void setImmediate(cb, e),
  );
}

function methods(manager: SessionManager, options: CohortStoreOptions): CohortStoreMethods {
  const now = options.now ?? Date.now;

  /** The session stored under `sid`, unless another sid maps there or it expired (then destroyed). */
  const find = async (sid: string, takeOver: boolean): Promise<Session | undefined> => {
    const s = await manager.load(storeKey(sid), { takeOver });
    if (!s || s.rawAttributes[SID_KEY] !== sid) return undefined;
    const exp = s.rawAttributes[EXPIRES_KEY];
    if (typeof exp === 'number' && exp <= now()) {
      await manager.invalidate(s);
      return undefined;
    }
    return s;
  };
  const publicData = (s: Session): StoreSessionData => {
    const out = JSON.parse(JSON.stringify(s.rawAttributes)) as StoreSessionData;
    delete out[SID_KEY];
    delete out[EXPIRES_KEY];
    return out;
  };
  /** Stores `sess` under `sid` (into `existing`, or a new session), expiring at `exp` (wall ms). */
  const write = async (sid: string, sess: StoreSessionData, existing: Session | undefined, exp: number): Promise<void> => {
    const data = JSON.parse(JSON.stringify(sess)) as Record<string, JsonValue>;
    data[SID_KEY] = sid;
    data[EXPIRES_KEY] = exp;
    const s = existing ?? manager.create(storeKey(sid));
    const attrs = s.attributes;
    const held = s.rawAttributes;
    for (const k of Object.keys(held)) if (!Object.hasOwn(data, k)) delete attrs[k];
    for (const k of Object.keys(data)) {
      if (!Object.hasOwn(held, k) || JSON.stringify(held[k]) !== JSON.stringify(data[k])) attrs[k] = data[k]!;
    }
    // The idle expiry collects sessions nobody reads; it never comes before the stored expiry.
    s.setMaxInactive(Math.max(1000, Math.ceil((exp - now()) / 1000) * 1000));
    await manager.commit(s);
  };
  const destroy = async (sid: string): Promise<void> => {
    const s = await manager.load(storeKey(sid), { takeOver: false });
    if (s && s.rawAttributes[SID_KEY] === sid) await manager.invalidate(s);
  };
  const all = async (): Promise<StoredSession[]> => {
    const out: StoredSession[] = [];
    for (const id of await manager.ids()) {
      const s = await manager.load(id, { takeOver: false });
      const sid = s?.rawAttributes[SID_KEY];
      if (typeof sid !== 'string') continue; // not a store session (Cohort's own req.session)
      if (await find(sid, false)) out.push({ ...publicData(s!), id: sid });
    }
    return out;
  };

  /** Migration: the session from the previous store, now stored here; null when it has none (or fails: counted). */
  const importOld = async (sid: string): Promise<StoreSessionData | null> => {
    const from = options.importFrom;
    if (!from) return null;
    const counts = options.importCounts;
    let data: StoreSessionData | undefined;
    try {
      data = (await fetchOldSession(from, sid, true)) as StoreSessionData | undefined;
    } catch {
      if (counts) counts['store-failed']++;
      return null;
    }
    if (!data) {
      if (counts) counts['not-found']++;
      return null;
    }
    const exp = expiresAt(data, options.ttl, now());
    if (!(exp > now())) {
      if (counts) counts['not-found']++;
      return null;
    }
    await write(sid, data, await manager.load(storeKey(sid)), exp);
    if (counts) counts.imported++;
    return JSON.parse(JSON.stringify(data)) as StoreSessionData;
  };

  return {
    get(sid, cb) {
      return settle(
        find(sid, false).then((s) => (s ? publicData(s) : importOld(sid))),
        cb,
      );
    },
    set(sid, sess, cb) {
      return settle(
        (async () => {
          const exp = expiresAt(sess, options.ttl, now());
          if (!(exp > now())) return destroy(sid); // connect-redis: expired on arrival
          await write(sid, sess, await manager.load(storeKey(sid)), exp);
        })(),
        cb,
      );
    },
    destroy(sid, cb) {
      return settle(destroy(sid), cb);
    },
    touch(sid, sess, cb) {
      return settle(
        (async () => {
          if (options.disableTouch) return;
          const s = await find(sid, true);
          if (!s) return; // like MemoryStore: touching an unknown or expired session creates nothing
          const exp = expiresAt(sess, options.ttl, now());
          if (!(exp > now())) return manager.invalidate(s);
          await write(sid, sess, s, exp);
        })(),
        cb,
      );
    },
    all(cb) {
      return settle(all(), cb);
    },
    ids(cb) {
      return settle(all().then((l) => l.map((s) => s.id)), cb);
    },
    length(cb) {
      return settle(all().then((l) => l.length), cb);
    },
    clear(cb) {
      return settle(manager.clear(), cb);
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
export function cohortStore<B extends abstract new (...a: any[]) => object>(
  Base?: B,
): new (manager: SessionManager, options?: CohortStoreOptions) => InstanceType<B> & CohortStoreMethods {
  const Parent = (Base ?? EventEmitter) as unknown as new () => object;
  class CohortStore extends Parent {
    constructor(manager: SessionManager, options: CohortStoreOptions = {}) {
      super();
      Object.assign(this, methods(manager, options));
    }
  }
  return CohortStore as unknown as new (manager: SessionManager, options?: CohortStoreOptions) => InstanceType<B> & CohortStoreMethods;
}

/** A standalone Store (EventEmitter base) for frameworks that only need the methods. */
export const CohortSessionStore = cohortStore();

export { parseSessionId };
