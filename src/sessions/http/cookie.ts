/**
 * Reading the session id from a request and writing the Set-Cookie header.
 * Pure string functions. Parsing follows RFC 6265 (exact cookie-name match,
 * unlike httpd's substring search that `XJSESSIONID` can fool) and looks for
 * the `;jsessionid=` path parameter in the path only, never in the query.
 */
import type { CookieConfig } from '../config.js';
import { findCookie } from '../../util/cookies.js';

/** The value of cookie `name` in a Cookie header (first exact match), or undefined. */
export function readCookie(header: string | readonly string[] | undefined, name: string): string | undefined {
  return findCookie(header, name);
}

/** The `;name=value` path parameter of the URL's path (not its query), or undefined. */
export function readPathParameter(url: string | undefined, name: string): string | undefined {
  if (!url) return undefined;
  const q = url.search(/[?#]/);
  const path = q < 0 ? url : url.slice(0, q);
  const key = `;${name}=`;
  const at = path.indexOf(key);
  if (at < 0) return undefined;
  const start = at + key.length;
  let end = path.slice(start).search(/[;/]/);
  end = end < 0 ? path.length : start + end;
  return path.slice(start, end) || undefined;
}

/** The URL without its `;name=value` path parameter (what the application should route on). */
export function stripPathParameter(url: string, name: string): string {
  const q = url.search(/[?#]/);
  const path = q < 0 ? url : url.slice(0, q);
  const rest = q < 0 ? '' : url.slice(q);
  return path.replace(new RegExp(`;${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}=[^;/]*`), '') + rest;
}

/** The attributes of one Set-Cookie header (express-session's cookie object, resolved for a response). */
export interface CookieAttributes {
  readonly path: string;
  readonly domain?: string | undefined;
  /** Absolute expiry; null: a browser-session cookie. */
  readonly expires: Date | null;
  readonly httpOnly: boolean;
  readonly secure: boolean;
  /** `true` means Strict (express-session); case-insensitive. */
  readonly sameSite: 'Lax' | 'Strict' | 'None' | 'lax' | 'strict' | 'none' | boolean;
  readonly partitioned?: boolean;
}

/** `name=value` with its attributes; Max-Age (whole seconds, never negative) accompanies Expires. */
export function serializeCookie(name: string, value: string, a: CookieAttributes, now: () => number = Date.now): string {
  const parts = [`${name}=${value}`, `Path=${a.path}`];
  if (a.domain) parts.push(`Domain=${a.domain}`);
  if (a.expires) {
    parts.push(`Max-Age=${Math.max(0, Math.round((a.expires.getTime() - now()) / 1000))}`, `Expires=${a.expires.toUTCString()}`);
  }
  if (a.httpOnly) parts.push('HttpOnly');
  const sameSite = a.sameSite === true ? 'Strict' : a.sameSite === false ? undefined : a.sameSite.charAt(0).toUpperCase() + a.sameSite.slice(1).toLowerCase();
  if (a.secure || sameSite === 'None') parts.push('Secure');
  if (a.partitioned) parts.push('Partitioned');
  if (sameSite) parts.push(`SameSite=${sameSite}`);
  return parts.join('; ');
}

/** A Set-Cookie header value for the session id (or its removal when `value` is undefined). */
export function serializeSessionCookie(cfg: CookieConfig, value: string | undefined, secure: boolean, now: () => number = Date.now): string {
  const parts = [`${cfg.name}=${value ?? ''}`, `Path=${cfg.path}`];
  if (cfg.domain) parts.push(`Domain=${cfg.domain}`);
  if (value === undefined) {
    parts.push('Max-Age=0', 'Expires=Thu, 01 Jan 1970 00:00:00 GMT');
  } else if (cfg.maxAgeMs !== undefined) {
    parts.push(`Max-Age=${Math.floor(cfg.maxAgeMs / 1000)}`, `Expires=${new Date(now() + cfg.maxAgeMs).toUTCString()}`);
  }
  if (cfg.httpOnly) parts.push('HttpOnly');
  if (secure || cfg.sameSite === 'None') parts.push('Secure');
  parts.push(`SameSite=${cfg.sameSite}`);
  return parts.join('; ');
}
