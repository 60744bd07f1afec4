/**
 * One request's view of its session, shared by every framework adapter:
 * finds the id (cookie, then `;jsessionid=`), loads the session (taking it
 * over if its route names another node), exposes `req.session` with
 * express-session's surface, decides the Set-Cookie header, and commits at
 * the end of the request (waiting for peers when the request is sync).
 *
 * express-session's options keep their meanings (`genid`, `rolling`,
 * `resave`, `saveUninitialized`, `unset`, `proxy`), and their defaults:
 * `resave` and `saveUninitialized` default to true, as in express-session
 * (which deprecates relying on them: `resolveSessionOptions` warns once when
 * they are left unset); `false` for both is what express-session recommends
 * (nothing is stored before something is written).
 * Invariants: an id a client presents is never adopted (no fixation); a
 * destroyed session is never committed again; the cookie object is one per
 * request, so assignments to it stick until the response.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { JsonValue } from '../../cluster/types.js';
import type { CookieConfig } from '../config.js';
import { SessionError, SessionErrorCode } from '../errors.js';
import type { CommitOptions, SessionManager } from '../contract.js';
import type { Session } from '../model/session.js';
import { readCookie, readPathParameter, serializeCookie } from './cookie.js';
import { fetchOldSession, oldSessionId, type MigrationCounts, type MigrationOptions } from './migration.js';
import { SessionCookie } from './session-cookie.js';
import type { SessionCookieCounts, SessionCookieOutcome } from './cookie-metrics.js';
import { parseSessionId } from '../model/session-id.js';

type Callback = (err?: unknown) => void;

/** What `req.session` offers besides the attributes (as plain properties). */
export interface SessionApi {
  /** `<base>.<route>` */
  readonly id: string;
  /** express-session's cookie: one object per request (maxAge, expires, originalMaxAge, httpOnly, secure, sameSite, path, domain). */
  readonly cookie: SessionCookie;
  /** express-session: a fresh session with a new id (old one destroyed). Promise when no callback. */
  regenerate(cb?: Callback): Promise<void>;
  /** Destroys the session cluster-wide; `req.session` is gone afterwards. Promise when no callback. */
  destroy(cb?: Callback): Promise<void>;
  /** Commits now (options: `{sync: true}` waits for peers). Promise when no callback. */
  save(optsOrCb?: CommitOptions | Callback, cb?: Callback): Promise<void>;
  /** express-session's reload: `req.session` becomes the stored copy (commits of other requests and nodes in; this request's unsaved changes, cookie lifetime included, discarded); fails with "failed to load session" when it is not stored (destroyed, expired, or new and never saved). Promise when no callback. */
  reload(cb?: Callback): Promise<void>;
  /** express-session: resets the cookie's maxAge to its originalMaxAge (the access itself is counted anyway). */
  touch(): this;
  /** `cookie.maxAge = cookie.originalMaxAge`. */
  resetMaxAge(): this;
  /** New id, same attributes (Tomcat's changeSessionId, for logins). */
  changeId(): void;
  /** Max inactive interval in ms (read/write, replicated). */
  maxInactiveMs: number;
  /** Make this request's end-of-request commit synchronous. */
  requireSync(): void;
}

/** @fastify/session's accessors, on Cohort's Fastify `request.session`. */
export interface FastifySessionApi {
  get<T = unknown>(key: string): T | undefined;
  set(key: string, value: unknown): void;
}

/** The cookie as a read-only view (kept for compatibility: `SessionCookie` is what `req.session.cookie` is). */
export type SessionCookieView = Readonly<Pick<SessionCookie, 'path' | 'domain' | 'httpOnly' | 'secure' | 'sameSite' | 'maxAge' | 'originalMaxAge' | 'expires'>>;

/**
 * The attributes an app stores, for TypeScript: augment it, as with express-session's SessionData —
 * `declare module 'cohort-cluster/sessions' { interface SessionData { user: string } }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface SessionData {}

/** `req.session`: the API plus the attributes as plain properties. */
export type SessionFacade = SessionApi & Partial<SessionData> & { [attribute: string]: JsonValue | unknown };

const RESERVED = new Set(['id', 'cookie', 'regenerate', 'destroy', 'save', 'reload', 'touch', 'changeId', 'maxInactiveMs', 'requireSync', 'resetMaxAge', 'toJSON']);
const RESERVED_FASTIFY = new Set([...RESERVED, 'get', 'set']);

/** express-session's options, with their meanings (see the header for the defaults). */
export interface ExpressSessionOptions {
  /** A new session's id from the request: a base (22–128 base64url characters) or `<base>.<route>`; the route is always this node's. */
  readonly genid?: (req: IncomingMessage) => string;
  /** Set the cookie on every response, resetting its expiry (default false). */
  readonly rolling?: boolean;
  /** Store the session at the end of every request even when unchanged (default true, as express-session's). */
  readonly resave?: boolean;
  /** Store a new session even when nothing was written, and set its cookie (default true, as express-session's). */
  readonly saveUninitialized?: boolean;
  /** What `req.session = null` (or `delete req.session`) does: 'keep' (default) the stored session, or 'destroy' it. */
  readonly unset?: 'keep' | 'destroy';
  /** Trust X-Forwarded-Proto for `secure: 'auto'` (true), never (false), or (undefined) use `req.secure` when the framework sets it. */
  readonly proxy?: boolean;
}

export interface RequestSessionOptions extends ExpressSessionOptions {
  readonly cookie: CookieConfig;
  /** Commit synchronously by default (else the manager's default). */
  readonly sync?: boolean | ((req: IncomingMessage) => boolean);
  /** Counts the session cookies that named no session (cookie-metrics.ts); the request gets a new session either way. */
  readonly cookieCounts?: SessionCookieCounts;
  /** Import sessions of the previous session layer on first use (migration.ts). */
  readonly migrate?: MigrationOptions & { readonly counts?: MigrationCounts; readonly onError?: (err: unknown) => void };
  /** Add @fastify/session's `get`/`set` to `req.session`. */
  readonly fastifyApi?: boolean;
  /** The object whose `session` property the app sees (Fastify's request; default the node:http request). */
  readonly holder?: object;
  /** Wall clock for cookie expiry, ms (tests). */
  readonly now?: () => number;
}

/** The warning logged when `resave` or `saveUninitialized` is left to express-session's default (true). */
export const SESSION_OPTION_DEFAULTED = 'COHORT_SESSION_OPTION_DEFAULTED';

/** express-session's deprecation notices for options left to their defaults (depd's wording), or none. */
export function defaultedOptionNotices(o: ExpressSessionOptions): string[] {
  const out: string[] = [];
  if (o.resave === undefined) out.push('undefined resave option; provide resave option');
  if (o.saveUninitialized === undefined) out.push('undefined saveUninitialized option; provide saveUninitialized option');
  return out;
}

export class RequestSession {
  /** Id the client presented (cookie or path parameter). */
  readonly incomingId: string | undefined;
  private session: Session | undefined;
  private destroyed = false;
  private sync: boolean;
  private finished = false;
  private cookieObj: SessionCookie | undefined;
  private clearOld = false;
  readonly facade: SessionFacade;
  /** The request target as it arrived (adapters strip `;jsessionid=` before the app sees it). */
  private readonly url: string | undefined;

  constructor(
    private readonly manager: SessionManager,
    private readonly req: IncomingMessage,
    private readonly opts: RequestSessionOptions,
  ) {
    const c = opts.cookie;
    this.url = req.url;
    this.incomingId = readCookie(req.headers.cookie, c.name) ?? readPathParameter(req.url, c.pathParameter);
    const s = opts.sync;
    this.sync = typeof s === 'function' ? s(req) : (s ?? manager.syncByDefault);
    this.facade = this.makeFacade();
  }

  private get holder(): object {
    return this.opts.holder ?? this.req;
  }

  /** express-session's default: true. */
  private get saveUninitialized(): boolean {
    return this.opts.saveUninitialized ?? true;
  }

  /** express-session's default: true. */
  private get resave(): boolean {
    return this.opts.resave ?? true;
  }

  private get now(): () => number {
    return this.opts.now ?? Date.now;
  }

  /** Loads the presented session (with take-over), or imports the previous layer's — call before the handler. */
  async begin(): Promise<void> {
    const presented = this.incomingId;
    if (presented) {
      // A value that is no Cohort id never reaches the backend: a new session, counted (no error page).
      if (parseSessionId(presented) === undefined) this.countCookie('malformed');
      else {
        this.session = await this.manager.load(presented);
        if (!this.session) this.countCookie('unknown');
        else this.session.keepUndo = true; // for reload()
      }
    }
    if (!this.session && this.opts.migrate) await this.importOld(this.opts.migrate);
  }

  private countCookie(o: SessionCookieOutcome): void {
    const c = this.opts.cookieCounts;
    if (c) c[o]++;
  }

  private async importOld(m: NonNullable<RequestSessionOptions['migrate']>): Promise<void> {
    const found = oldSessionId(this.req.headers.cookie, m, this.url);
    if (!found) return;
    const count = (o: keyof MigrationCounts) => m.counts && m.counts[o]++;
    if ('outcome' in found) return void count(found.outcome);
    let data: Record<string, unknown> | undefined;
    try {
      data = await fetchOldSession(m.store, found.id);
    } catch (err) {
      count('store-failed');
      m.onError?.(err);
      return;
    }
    if (!data) return void count('not-found');
    const s = this.newSession();
    const attrs = s.attributes as Record<string, unknown>;
    for (const k of Object.keys(data)) attrs[k] = data[k];
    s.markMetaDirty();
    this.session = s;
    this.clearOld = m.clearOldCookie !== false && m.cookieName !== this.opts.cookie.name;
    count('imported');
  }

  private newSession(): Session {
    const g = this.opts.genid;
    const s = g ? this.manager.create(g(this.req)) : this.manager.create();
    s.keepUndo = true; // for reload() after a save() in the same request
    return s;
  }

  /** The session, created on first use. */
  private get current(): Session {
    if (!this.session) {
      this.session = this.newSession();
      this.destroyed = false;
    }
    return this.session;
  }

  get secure(): boolean {
    const c = this.opts.cookie;
    if (c.secure !== 'auto') return c.secure;
    if ((this.req.socket as TLSSocket).encrypted) return true;
    const trust = this.opts.proxy ?? (c.trustProxy ? true : undefined);
    if (trust === undefined) return (this.req as { secure?: unknown }).secure === true;
    if (trust) {
      const p = this.req.headers['x-forwarded-proto'];
      const first = (Array.isArray(p) ? p[0] : p)?.split(',')[0]?.trim().toLowerCase();
      return first === 'https';
    }
    return false;
  }

  /** Cookie lifetime a request starts with: the session's own (set through cookie.maxAge) or the configured one. */
  private initialMaxAge(): number | null {
    const s = this.session;
    if (s && s.maxInactiveMs !== this.manager.defaultMaxInactiveMs) return s.maxInactiveMs;
    return this.opts.cookie.maxAgeMs ?? null;
  }

  /** `req.session.cookie`: one object per request (and per regenerated session). */
  get cookie(): SessionCookie {
    if (!this.cookieObj) {
      const c = this.opts.cookie;
      this.cookieObj = new SessionCookie(
        { path: c.path, domain: c.domain, httpOnly: c.httpOnly, secure: this.secure, sameSite: c.sameSite, originalMaxAge: this.initialMaxAge() },
        this.now,
      );
    }
    return this.cookieObj;
  }

  /** The id as the app sees it (express-session's req.sessionID). */
  get id(): string {
    return this.current.id;
  }

  /** Whether the handler dropped `req.session` (`= null`, `delete`), for the `unset` option. */
  private get unsetByApp(): boolean {
    return !this.destroyed && (this.holder as { session?: unknown }).session !== this.facade;
  }

  /**
   * The Set-Cookie values to send now: a new or changed id (creation, take-over, regeneration, import), a
   * persistent cookie (re-sent with its new expiry), a cookie the app changed or `rolling`; the removal of a
   * destroyed session's cookie; the removal of a migrated-from cookie.
   */
  cookieHeaders(): string[] {
    const out: string[] = [];
    if (this.clearOld && this.opts.migrate) {
      const c = this.opts.cookie;
      out.push(serializeCookie(this.opts.migrate.cookieName, '', { path: c.path, domain: c.domain, expires: new Date(0), httpOnly: c.httpOnly, secure: this.secure, sameSite: c.sameSite }, this.now));
    }
    const one = this.sessionCookieHeader();
    if (one) out.push(one);
    return out;
  }

  /** The session cookie's Set-Cookie value, if any (see cookieHeaders). */
  cookieHeader(): string | undefined {
    return this.sessionCookieHeader();
  }

  private sessionCookieHeader(): string | undefined {
    // saveUninitialized: the session finish() stores exists already when the headers go out before it.
    if (!this.session && !this.destroyed && this.saveUninitialized && !this.unsetByApp) void this.current;
    const s = this.session;
    const c = this.opts.cookie;
    if (!s || s.invalidated || (this.unsetByApp && this.opts.unset === 'destroy')) {
      const gone = this.destroyed || (this.unsetByApp && this.opts.unset === 'destroy');
      return gone && this.incomingId !== undefined
        ? serializeCookie(c.name, '', { path: c.path, domain: c.domain, expires: new Date(0), httpOnly: c.httpOnly, secure: this.secure, sameSite: c.sameSite }, this.now)
        : undefined;
    }
    const willExist = !s.isNew || s.hasStoredChanges || this.saveUninitialized;
    if (!willExist) return undefined;
    const k = this.cookie;
    const sameId = s.id === this.incomingId;
    if (sameId && k.expires === null && !k.modified && !this.opts.rolling) return undefined;
    return serializeCookie(c.name, s.id, { path: k.path, domain: k.domain, expires: k.expires, httpOnly: k.httpOnly, secure: k.secure, sameSite: k.sameSite, partitioned: k.partitioned }, this.now);
  }

  /** End of request: commit (or, with `unset: 'destroy'` and `req.session` dropped, destroy). Safe to call twice. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    if (this.unsetByApp && this.opts.unset === 'destroy') {
      const s = this.session;
      if (s && !s.isNew) await this.manager.invalidate(s, { sync: this.sync });
      else s?.markInvalid();
      return;
    }
    if (this.saveUninitialized && !this.session && !this.destroyed) this.current.markMetaDirty();
    const s = this.session;
    if (!s || s.invalidated) return;
    if (s.isNew && !s.hasStoredChanges) {
      if (!this.saveUninitialized) return; // nothing to store: no session
      s.markMetaDirty();
    }
    if (this.resave && !s.isNew && !s.hasStoredChanges) s.markMetaDirty();
    this.applyCookieLifetime(s);
    await this.manager.commit(s, { sync: this.sync });
  }

  /** A lifetime given through `req.session.cookie` becomes the session's max inactive interval (replicated). */
  private applyCookieLifetime(s: Session): void {
    const k = this.cookieObj;
    if (!k || !k.changed) return;
    // The lifetime the app gave (at the assignment), not what is left of it now: a commit a millisecond
    // later must not store 4999 for `maxAge = 5000` (express-session keeps originalMaxAge intact likewise).
    const ms = k.originalMaxAge;
    if (ms !== null && ms > 0 && Math.round(ms) !== s.maxInactiveMs) s.setMaxInactive(Math.round(ms));
  }

  /** Settles `cb` once, on a later turn (never inside the promise chain); the promise is returned either way. */
  private cb(p: Promise<void>, cb: Callback | undefined): Promise<void> {
    if (cb) {
      p.then(
        () => void setImmediate(cb),
        (e: unknown) => void setImmediate(cb, e),
      );
      return p.catch(() => undefined);
    }
    return p;
  }

  private makeFacade(): SessionFacade {
    const self = this;
    const api: SessionApi & FastifySessionApi = {
      get id() {
        return self.id;
      },
      get cookie() {
        return self.cookie;
      },
      regenerate(cb) {
        return self.cb(
          (async () => {
            const old = self.session;
            if (old && !old.isNew) await self.manager.invalidate(old);
            self.destroyed = false;
            self.session = self.newSession();
            self.session.markMetaDirty();
            self.cookieObj = undefined;
            (self.holder as { session?: unknown }).session = self.facade;
          })(),
          cb,
        );
      },
      destroy(cb) {
        return self.cb(
          (async () => {
            const s = self.session;
            self.destroyed = true;
            if (s && !s.isNew) await self.manager.invalidate(s, { sync: self.sync });
            else s?.markInvalid();
            // express-session: req.session is gone after destroy()
            const h = self.holder as { session?: unknown };
            if (h.session === self.facade) delete h.session;
          })(),
          cb,
        );
      },
      save(optsOrCb, cb) {
        const o = typeof optsOrCb === 'object' ? optsOrCb : {};
        const done = typeof optsOrCb === 'function' ? optsOrCb : cb;
        return self.cb(
          (async () => {
            const s = self.current;
            s.markMetaDirty();
            self.applyCookieLifetime(s);
            await self.manager.commit(s, { sync: o.sync ?? self.sync });
          })(),
          done,
        );
      },
      reload(cb) {
        return self.cb(
          (async () => {
            // express-session: req.session becomes the stored copy; what this request changed and did not save is gone.
            const s = self.session;
            const fresh = s ? await self.manager.reload(s) : undefined;
            if (!fresh) throw new SessionError(SessionErrorCode.Invalidated, 'failed to load session');
            fresh.keepUndo = true;
            self.session = fresh;
            self.cookieObj = undefined;
          })(),
          cb,
        );
      },
      touch() {
        self.cookie.resetMaxAge();
        return facade as never;
      },
      resetMaxAge() {
        self.cookie.resetMaxAge();
        return facade as never;
      },
      changeId() {
        self.manager.regenerateId(self.current);
      },
      get maxInactiveMs() {
        return self.current.maxInactiveMs;
      },
      set maxInactiveMs(ms: number) {
        self.current.setMaxInactive(ms);
      },
      requireSync() {
        self.sync = true;
      },
      get<T>(key: string): T | undefined {
        return (self.session ? self.session.attributes[key] : undefined) as T | undefined;
      },
      set(key: string, value: unknown) {
        (self.current.attributes as Record<string, unknown>)[key] = value;
      },
    };
    const reserved = this.opts.fastifyApi ? RESERVED_FASTIFY : RESERVED;
    const target = Object.create(null) as Record<string, unknown>;
    const facade = new Proxy(target, {
      get(_t, prop) {
        if (typeof prop === 'string' && reserved.has(prop)) {
          if (prop === 'toJSON') return () => ({ ...(self.session?.rawAttributes ?? {}), cookie: self.cookie.toJSON() });
          return (api as unknown as Record<string, unknown>)[prop];
        }
        if (typeof prop !== 'string') return undefined;
        return self.session ? self.session.attributes[prop] : undefined;
      },
      set(_t, prop, value) {
        if (prop === 'maxInactiveMs') {
          api.maxInactiveMs = value as number;
          return true;
        }
        if (typeof prop === 'string' && reserved.has(prop)) throw new TypeError(`req.session.${prop} is reserved and cannot be assigned`);
        (self.current.attributes as Record<string | symbol, unknown>)[prop] = value;
        return true;
      },
      deleteProperty(_t, prop) {
        if (typeof prop === 'string' && self.session) delete self.session.attributes[prop];
        return true;
      },
      has(_t, prop) {
        return (typeof prop === 'string' && reserved.has(prop)) || (typeof prop === 'string' && !!self.session && Object.hasOwn(self.session.rawAttributes, prop));
      },
      ownKeys() {
        return self.session ? Object.keys(self.session.rawAttributes) : [];
      },
      getOwnPropertyDescriptor(_t, prop) {
        if (typeof prop !== 'string' || !self.session || !Object.hasOwn(self.session.rawAttributes, prop)) return undefined;
        return { value: self.session.attributes[prop], writable: true, enumerable: true, configurable: true };
      },
    }) as SessionFacade;
    return facade;
  }
}
