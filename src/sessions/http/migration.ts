/**
 * Migration with no user logged out: a request that carries no Cohort session but the cookie of the app's
 * previous session layer (express-session's `connect.sid`, signed `s:<id>.<signature>`; or a Tomcat-style
 * `JSESSIONID`, unsigned) has its session imported from the previous store (any express-session Store:
 * connect-redis, MemoryStore, ... — only `get(sid, cb)` is used) on first use. The caller then gives it a
 * new routed Cohort id and replicates it; the old cookie is cleared.
 *
 * Invariants: the old id is never adopted as a Cohort id (a new random base, so no session fixation);
 * a forged signature, a malformed or oversized value, or an id the old store does not know leads to a new
 * session and a counted outcome, never an error page; a failing old store is counted and logged, and the
 * request goes on with a new session (nothing lost for other users). `unsign` is pure.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readCookie, readPathParameter } from './cookie.js';

/** The part of an express-session Store the import uses. */
export interface OldSessionStore {
  get(sid: string, cb: (err: unknown, sess?: Record<string, unknown> | null) => void): unknown;
}

export interface MigrationOptions {
  /** The previous session cookie's name, e.g. `connect.sid` (express-session) or `JSESSIONID` (Tomcat). */
  readonly cookieName: string;
  /** express-session's `secret` (or its list: every one is tried, as express-session does). Omit for unsigned cookies. */
  readonly secret?: string | readonly string[];
  /** Where the sessions are now: any express-session Store. */
  readonly store: OldSessionStore;
  /** Ids longer than this (characters) are refused without asking the store (default 512). */
  readonly maxIdLength?: number;
  /** Also read the old id from this `;name=` path parameter (Tomcat's URL rewriting: `jsessionid`). */
  readonly pathParameter?: string;
  /** Clear the old cookie once the session was imported (default true). */
  readonly clearOldCookie?: boolean;
}

/** What became of an old cookie. */
export type MigrationOutcome = 'imported' | 'not-found' | 'bad-signature' | 'malformed' | 'store-failed';

/** Counters of outcomes (`registerMigrationMetric` publishes them as cohort_session_migrations_total{outcome}). */
export type MigrationCounts = Record<MigrationOutcome, number>;

export const newMigrationCounts = (): MigrationCounts => ({ imported: 0, 'not-found': 0, 'bad-signature': 0, malformed: 0, 'store-failed': 0 });

/** Default longest accepted old id, characters. */
export const DEFAULT_MAX_OLD_ID_LENGTH = 512;

/**
 * express-session's cookie value → its id: `s:<id>.<sig>` checked against each secret (cookie-signature's
 * HMAC-SHA256, base64 without padding, compared in constant time). Undefined when no secret matches or the
 * value is not in the signed form.
 */
export function unsign(value: string, secrets: readonly string[]): string | undefined {
  if (!value.startsWith('s:')) return undefined;
  const body = value.slice(2);
  const dot = body.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const id = body.slice(0, dot);
  const given = Buffer.from(body.slice(dot + 1));
  for (const secret of secrets) {
    const expected = Buffer.from(createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, ''));
    if (expected.length === given.length && timingSafeEqual(expected, given)) return id;
  }
  return undefined;
}

/** The old session id a request presents, or the reason there is none usable. */
export function oldSessionId(cookieHeader: string | readonly string[] | undefined, o: MigrationOptions, url?: string): { id: string } | { outcome: MigrationOutcome } | undefined {
  const raw = readCookie(cookieHeader, o.cookieName) ?? (o.pathParameter ? readPathParameter(url, o.pathParameter) : undefined);
  if (raw === undefined || raw === '') return undefined;
  if (raw.length > (o.maxIdLength ?? DEFAULT_MAX_OLD_ID_LENGTH) * 3 + 64) return { outcome: 'malformed' };
  let value: string;
  try {
    value = decodeURIComponent(raw);
  } catch {
    return { outcome: 'malformed' };
  }
  const secrets = o.secret === undefined ? [] : typeof o.secret === 'string' ? [o.secret] : o.secret;
  let id = value;
  if (secrets.length > 0) {
    const u = unsign(value, secrets);
    if (u === undefined) return { outcome: 'bad-signature' };
    id = u;
  }
  if (id.length === 0 || id.length > (o.maxIdLength ?? DEFAULT_MAX_OLD_ID_LENGTH)) return { outcome: 'malformed' };
  return { id };
}

/** The old store's data for `sid` (undefined when it has none), without express-session's `cookie` field unless `keepCookie`. */
export function fetchOldSession(store: OldSessionStore, sid: string, keepCookie = false): Promise<Record<string, unknown> | undefined> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (err: unknown, sess?: Record<string, unknown> | null) => {
      if (settled) return;
      settled = true;
      if (err && (err as { code?: string }).code !== 'ENOENT') return reject(err);
      if (!sess || typeof sess !== 'object') return resolve(undefined);
      if (keepCookie) return resolve(sess);
      const { cookie: _cookie, ...data } = sess;
      resolve(data);
    };
    try {
      const r = store.get(sid, done) as unknown;
      // connect-redis 8+ also returns a promise; the callback is called as well, whichever comes first wins.
      if (r && typeof (r as Promise<unknown>).then === 'function') {
        (r as Promise<Record<string, unknown> | null>).then((v) => done(null, v), (e: unknown) => done(e));
      }
    } catch (e) {
      done(e);
    }
  });
}
