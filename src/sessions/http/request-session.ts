/**
 * One request's view of its session, shared by every framework adapter:
 * finds the id (cookie, then `;jsessionid=`), loads the session (taking it
 * over if its route names another node), exposes `req.session` with
 * express-session's surface, decides the Set-Cookie header, and commits at
 * the end of the request (waiting for peers when the request is sync).
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { JsonValue } from '../../cluster/types.js';
import type { CookieConfig } from '../config.js';
import type { CommitOptions, SessionManager } from '../contract.js';
import type { Session } from '../model/session.js';
import { readCookie, readPathParameter, serializeSessionCookie } from './cookie.js';

type Callback = (err?: unknown) => void;

/** What `req.session` offers besides the attributes (as plain properties). */
export interface SessionApi {
  /** `<base>.<route>` */
  readonly id: string;
  readonly cookie: SessionCookieView;
  /** express-session: a fresh session with a new id (old one destroyed). Promise when no callback. */
  regenerate(cb?: Callback): Promise<void>;
  /** Destroys the session cluster-wide. Promise when no callback. */
  destroy(cb?: Callback): Promise<void>;
  /** Commits now (options: `{sync: true}` waits for peers). Promise when no callback. */
  save(optsOrCb?: CommitOptions | Callback, cb?: Callback): Promise<void>;
  /** Re-reads the session from the manager. */
  reload(cb?: Callback): Promise<void>;
  /** Marks the session accessed (done anyway by every request). */
  touch(): void;
  /** New id, same attributes (Tomcat's changeSessionId, for logins). */
  changeId(): void;
  /** Max inactive interval in ms (read/write, replicated). */
  maxInactiveMs: number;
  /** Make this request's end-of-request commit synchronous. */
  requireSync(): void;
}

export interface SessionCookieView {
  readonly path: string;
  readonly domain: string | undefined;
  readonly httpOnly: boolean;
  readonly secure: boolean;
  readonly sameSite: string;
  readonly maxAge: number | undefined;
  readonly originalMaxAge: number | undefined;
}

/** `req.session`: the API plus the attributes as plain properties. */
export type SessionFacade = SessionApi & { [attribute: string]: JsonValue | unknown };

const RESERVED = new Set(['id', 'cookie', 'regenerate', 'destroy', 'save', 'reload', 'touch', 'changeId', 'maxInactiveMs', 'requireSync', 'resetMaxAge', 'toJSON']);

export interface RequestSessionOptions {
  readonly cookie: CookieConfig;
  /** Commit synchronously by default (else the manager's default). */
  readonly sync?: boolean | ((req: IncomingMessage) => boolean);
}

export class RequestSession {
  /** Id the client presented (cookie or path parameter), if well-formed. */
  readonly incomingId: string | undefined;
  private session: Session | undefined;
  private destroyed = false;
  private sync: boolean;
  private finished = false;
  readonly facade: SessionFacade;

  constructor(
    private readonly manager: SessionManager,
    private readonly req: IncomingMessage,
    private readonly opts: RequestSessionOptions,
  ) {
    const c = opts.cookie;
    this.incomingId = readCookie(req.headers.cookie, c.name) ?? readPathParameter(req.url, c.pathParameter);
    const s = opts.sync;
    this.sync = typeof s === 'function' ? s(req) : (s ?? manager.syncByDefault);
    this.facade = this.makeFacade();
  }

  /** Loads the presented session (with take-over) — call before the handler. */
  async begin(): Promise<void> {
    if (this.incomingId) this.session = await this.manager.load(this.incomingId);
  }

  /** The session, created on first use. */
  private get current(): Session {
    if (!this.session) {
      this.session = this.manager.create();
      this.destroyed = false;
    }
    return this.session;
  }

  get secure(): boolean {
    const c = this.opts.cookie;
    if (c.secure !== 'auto') return c.secure;
    if ((this.req.socket as TLSSocket).encrypted) return true;
    if (c.trustProxy) {
      const p = this.req.headers['x-forwarded-proto'];
      const first = (Array.isArray(p) ? p[0] : p)?.split(',')[0]?.trim().toLowerCase();
      return first === 'https';
    }
    return false;
  }

  /**
   * The Set-Cookie value to send now, if any: a new or changed id (creation,
   * take-over, regeneration) or the removal of a destroyed session's cookie.
   */
  cookieHeader(): string | undefined {
    const s = this.session;
    if (!s || s.invalidated) {
      return this.destroyed && this.incomingId !== undefined ? serializeSessionCookie(this.opts.cookie, undefined, this.secure) : undefined;
    }
    const willExist = !s.isNew || s.hasStoredChanges;
    if (!willExist) return undefined;
    if (s.id === this.incomingId && this.opts.cookie.maxAgeMs === undefined) return undefined;
    return serializeSessionCookie(this.opts.cookie, s.id, this.secure);
  }

  /** End of request: commit. Safe to call twice. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    const s = this.session;
    if (!s) return;
    if (s.isNew && !s.hasStoredChanges) return; // nothing to store: no session (saveUninitialized: false)
    await this.manager.commit(s, { sync: this.sync });
  }

  private cb(p: Promise<void>, cb: Callback | undefined): Promise<void> {
    if (cb) p.then(() => cb(), (e: unknown) => cb(e));
    return cb ? p.catch(() => undefined) : p;
  }

  private makeFacade(): SessionFacade {
    const self = this;
    const api: SessionApi = {
      get id() {
        return self.current.id;
      },
      get cookie(): SessionCookieView {
        const c = self.opts.cookie;
        return { path: c.path, domain: c.domain, httpOnly: c.httpOnly, secure: self.secure, sameSite: c.sameSite, maxAge: c.maxAgeMs, originalMaxAge: c.maxAgeMs };
      },
      regenerate(cb) {
        return self.cb(
          (async () => {
            const old = self.session;
            if (old && !old.isNew) await self.manager.invalidate(old);
            self.session = self.manager.create();
            self.session.markMetaDirty();
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
            await self.manager.commit(s, { sync: o.sync ?? self.sync });
          })(),
          done,
        );
      },
      reload(cb) {
        return self.cb(
          (async () => {
            const s = self.session;
            if (s && !s.isNew) self.session = await self.manager.load(s.id);
          })(),
          cb,
        );
      },
      touch() {
        // Every request that presents the session already counts as an access (committed at its end).
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
    };
    const target = Object.create(null) as Record<string, unknown>;
    return new Proxy(target, {
      get(_t, prop) {
        if (typeof prop === 'string' && RESERVED.has(prop)) {
          if (prop === 'toJSON') return () => ({ ...(self.session?.rawAttributes ?? {}) });
          if (prop === 'resetMaxAge') return () => undefined;
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
        if (typeof prop === 'string' && RESERVED.has(prop)) throw new TypeError(`req.session.${prop} is reserved and cannot be assigned`);
        (self.current.attributes as Record<string | symbol, unknown>)[prop] = value;
        return true;
      },
      deleteProperty(_t, prop) {
        if (typeof prop === 'string' && self.session) delete self.session.attributes[prop];
        return true;
      },
      has(_t, prop) {
        return (typeof prop === 'string' && RESERVED.has(prop)) || (typeof prop === 'string' && !!self.session && Object.hasOwn(self.session.rawAttributes, prop));
      },
      ownKeys() {
        return self.session ? Object.keys(self.session.rawAttributes) : [];
      },
      getOwnPropertyDescriptor(_t, prop) {
        if (typeof prop !== 'string' || !self.session || !Object.hasOwn(self.session.rawAttributes, prop)) return undefined;
        return { value: self.session.attributes[prop], writable: true, enumerable: true, configurable: true };
      },
    }) as SessionFacade;
  }
}
