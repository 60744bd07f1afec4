import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Clock } from '../util/clock.js';
import { findCookie } from '../util/cookies.js';
import { verifyPassword } from './password.js';
import { LRUCache } from 'lru-cache';

/** Who made a request and how: the manager's authorization unit. */
export interface Principal {
  readonly user: string;
  /** `session`: login cookie; `basic`: HTTP Basic; `bearer`: the configured token. */
  readonly via: 'session' | 'basic' | 'bearer';
  /**
   * The nonce a change must carry (form field `csrf` or header
   * `X-CSRF-Token`). Undefined for bearer tokens: a browser never sends one
   * on its own, so a cross-site page cannot ride on it.
   */
  readonly csrf: string | undefined;
  readonly sessionId?: string;
}

export interface AuthUser {
  readonly name: string;
  /** scrypt hash (see password.ts). */
  readonly password: string;
}

export interface AuthenticatorOptions {
  readonly users: readonly AuthUser[];
  readonly tokens: readonly string[];
  /** Idle lifetime of a login session, ms. */
  readonly sessionTtlMs: number;
  readonly clock: Clock;
  /** Failed logins allowed per client address per minute before 429. */
  readonly maxFailuresPerMinute?: number;
}

interface Session {
  readonly user: string;
  readonly csrf: string;
  expires: number;
}

export const SESSION_COOKIE = 'cohort_manager';
/** Successful Basic verifications are remembered this long (ms), so scripts don't pay scrypt per request. */
const BASIC_CACHE_MS = 60_000;
/** Bounds of the two caches (entries); past them the least recently used entry is evicted. */
const BASIC_CACHE_MAX = 1_000;
const FAILURES_MAX = 10_000;

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time string equality (via fixed-length digests). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/**
 * Authentication for the manager: login sessions (cookie), HTTP Basic and
 * bearer tokens; per-principal CSRF nonces; a failed-login limiter.
 * Holds no sockets; time comes from the injected clock.
 */
export class Authenticator {
  private readonly users = new Map<string, string>();
  private readonly sessions = new Map<string, Session>();
  /** Recently verified Basic credentials (HMAC of user and password) → valid until; the least recently used go first. */
  private readonly basicCache = new LRUCache<string, number>({ max: BASIC_CACHE_MAX });
  /** Failed logins per client; bounded (the least recently failing client forgotten first). */
  private readonly failures = new LRUCache<string, { count: number; since: number }>({ max: FAILURES_MAX });
  /** Per-process secret: Basic users' CSRF nonces and cache keys derive from it. */
  private readonly secret = randomBytes(32);

  constructor(private readonly opts: AuthenticatorOptions) {
    for (const u of opts.users) this.users.set(u.name, u.password);
  }

  get hasCredentials(): boolean {
    return this.users.size > 0 || this.opts.tokens.length > 0;
  }

  /** The principal of a request, or undefined when it carries no valid credentials. */
  async authenticate(req: IncomingMessage): Promise<Principal | undefined> {
    const auth = req.headers.authorization;
    if (auth) {
      const space = auth.indexOf(' ');
      const scheme = auth.slice(0, space < 0 ? auth.length : space).toLowerCase();
      const value = space < 0 ? '' : auth.slice(space + 1).trim();
      if (scheme === 'bearer') {
        return this.opts.tokens.some((t) => safeEqual(t, value)) ? { user: 'token', via: 'bearer', csrf: undefined } : undefined;
      }
      if (scheme === 'basic') {
        const decoded = Buffer.from(value, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) return undefined;
        const user = decoded.slice(0, colon);
        const ok = await this.checkBasic(user, decoded.slice(colon + 1));
        return ok ? { user, via: 'basic', csrf: this.basicNonce(user) } : undefined;
      }
      return undefined;
    }
    const sid = findCookie(req.headers.cookie, SESSION_COOKIE);
    if (sid) {
      const s = this.sessions.get(sid);
      const now = this.opts.clock.now();
      if (s && s.expires > now) {
        s.expires = now + this.opts.sessionTtlMs;
        return { user: s.user, via: 'session', csrf: s.csrf, sessionId: sid };
      }
      if (s) this.sessions.delete(sid);
    }
    return undefined;
  }

  private async checkBasic(user: string, password: string): Promise<boolean> {
    const key = createHmac('sha256', this.secret).update(`${user}\0${password}`).digest('base64url');
    const now = this.opts.clock.now();
    const until = this.basicCache.get(key);
    if (until !== undefined && until > now) return true;
    const ok = await this.verify(user, password);
    if (ok) this.basicCache.set(key, now + BASIC_CACHE_MS);
    return ok;
  }

  /** Verifies a user name and password against the configured hashes. */
  async verify(user: string, password: string): Promise<boolean> {
    const hash = this.users.get(user);
    if (hash === undefined) {
      // Spend comparable time on unknown users so names can't be probed by timing.
      await verifyPassword(password, 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
      return false;
    }
    return verifyPassword(password, hash);
  }

  private basicNonce(user: string): string {
    return createHmac('sha256', this.secret).update(`csrf\0basic\0${user}`).digest('base64url');
  }

  /** True when `client` has failed too often in the last minute. */
  limited(client: string): boolean {
    const f = this.failures.get(client);
    if (!f) return false;
    if (this.opts.clock.now() - f.since > 60_000) {
      this.failures.delete(client);
      return false;
    }
    return f.count >= (this.opts.maxFailuresPerMinute ?? 10);
  }

  recordFailure(client: string): void {
    const now = this.opts.clock.now();
    const f = this.failures.get(client);
    if (!f || now - f.since > 60_000) this.failures.set(client, { count: 1, since: now });
    else f.count++;
  }

  /** Checks a login form; on success opens a session and returns its id. */
  async login(user: string, password: string): Promise<{ sessionId: string; csrf: string } | undefined> {
    if (!(await this.verify(user, password))) return undefined;
    this.prune();
    const sessionId = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    this.sessions.set(sessionId, { user, csrf, expires: this.opts.clock.now() + this.opts.sessionTtlMs });
    return { sessionId, csrf };
  }

  logout(sessionId: string): void {
    this.sessions.delete(sessionId);
  }

  private prune(): void {
    const now = this.opts.clock.now();
    for (const [id, s] of this.sessions) if (s.expires <= now) this.sessions.delete(id);
  }
}
