/**
 * `req.session.cookie`: express-session's Cookie (session/cookie.js) for one request — one object per
 * request, so `req.session.cookie.maxAge = …` sticks. Setting `expires` also sets `originalMaxAge` (the
 * lifetime it gives from now), setting `maxAge` sets `expires`, as express-session's Cookie does. `changed`
 * tells the request that the response must carry the cookie again. The wall clock is injected.
 */
/** express-session's values: `true` is Strict; lower case as the cookie module accepts it. */
export type SameSite = 'Lax' | 'Strict' | 'None' | 'lax' | 'strict' | 'none' | boolean;

export interface SessionCookieInit {
  readonly path: string;
  readonly domain: string | undefined;
  readonly httpOnly: boolean;
  readonly secure: boolean;
  readonly sameSite: SameSite;
  /** ms; null: a browser-session cookie. */
  readonly originalMaxAge: number | null;
}

export class SessionCookie {
  path: string;
  domain: string | undefined;
  httpOnly: boolean;
  secure: boolean;
  sameSite: SameSite;
  partitioned = false;
  /** ms the cookie was last given to live; null for a browser-session cookie. */
  originalMaxAge: number | null;
  private exp: Date | null;
  /** Something was assigned: the response carries the cookie again. */
  changed = false;

  constructor(private readonly init: SessionCookieInit, private readonly now: () => number = Date.now) {
    this.path = init.path;
    this.domain = init.domain;
    this.httpOnly = init.httpOnly;
    this.secure = init.secure;
    this.sameSite = init.sameSite;
    this.originalMaxAge = init.originalMaxAge;
    this.exp = init.originalMaxAge === null ? null : new Date(this.now() + init.originalMaxAge);
  }

  get expires(): Date | null {
    return this.exp;
  }
  set expires(date: Date | null) {
    this.exp = date;
    this.originalMaxAge = date === null ? null : date.getTime() - this.now();
    this.changed = true;
  }

  /** ms left until `expires`; null for a browser-session cookie. */
  get maxAge(): number | null {
    return this.exp === null ? null : this.exp.getTime() - this.now();
  }
  set maxAge(ms: number | null) {
    this.expires = typeof ms === 'number' ? new Date(this.now() + ms) : null;
  }

  /** Whether the response must carry the cookie again: a lifetime or an attribute was changed. */
  get modified(): boolean {
    const i = this.init;
    return this.changed || this.path !== i.path || this.domain !== i.domain || this.httpOnly !== i.httpOnly || this.secure !== i.secure || this.sameSite !== i.sameSite || this.partitioned;
  }

  /** `maxAge = originalMaxAge` (express-session's Session#resetMaxAge / touch). */
  resetMaxAge(): void {
    if (this.originalMaxAge !== null) {
      const keep = this.originalMaxAge;
      this.maxAge = keep;
      this.originalMaxAge = keep;
    }
  }

  /** The cookie's data as express-session stores it. */
  toJSON(): Record<string, unknown> {
    return {
      originalMaxAge: this.originalMaxAge,
      expires: this.exp,
      secure: this.secure,
      httpOnly: this.httpOnly,
      domain: this.domain,
      path: this.path,
      sameSite: this.sameSite,
    };
  }
}
