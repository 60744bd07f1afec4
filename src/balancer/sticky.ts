/**
 * Sticky-route extraction, as httpd's stickysession but parsed strictly:
 * the cookie by RFC 6265 name (exact match, not httpd's first substring),
 * the `;name=` path parameter only in the path, the query parameter only in
 * the query. The route is what follows the first separator in the value.
 * Pure: a header value and a URL in, a result out.
 */
import { findCookie } from '../util/cookies.js';

export interface StickyNames {
  /** Cookie name (the part before `|` in stickysession). */
  readonly cookie: string;
  /** Path/query parameter name (the part after `|`, or the same name). */
  readonly param: string;
  /** One character, default ".". */
  readonly sep: string;
}

export interface StickyResult {
  readonly sessionId: string;
  readonly route: string;
  readonly source: 'cookie' | 'path' | 'query';
}

export function parseStickyNames(stickysession: string, sep: string): StickyNames {
  const bar = stickysession.indexOf('|');
  const cookie = (bar < 0 ? stickysession : stickysession.slice(0, bar)).trim();
  const param = (bar < 0 ? stickysession : stickysession.slice(bar + 1)).trim();
  return { cookie, param, sep };
}

/** Returns the value of the first cookie named exactly `name`, or undefined (the code base's one parser). */
export { findCookie as cookieValue };

/** `;name=value` in the path part of a request target (not the query). */
export function pathParamValue(target: string, name: string): string | undefined {
  if (name === '') return undefined;
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const needle = `;${name}=`;
  let at = path.indexOf(needle);
  while (at >= 0) {
    const start = at + needle.length;
    let end = start;
    while (end < path.length) {
      const c = path.charCodeAt(end);
      if (c === 59 /* ; */ || c === 47 /* / */ || c === 35 /* # */) break;
      end++;
    }
    return path.slice(start, end);
  }
  return undefined;
}

/** `name=value` in the query string (exact name). */
export function queryParamValue(target: string, name: string): string | undefined {
  if (name === '') return undefined;
  const q = target.indexOf('?');
  if (q < 0) return undefined;
  const hash = target.indexOf('#', q);
  const query = target.slice(q + 1, hash < 0 ? undefined : hash);
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq) === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).replace(/\+/g, ' '));
      } catch {
        return part.slice(eq + 1);
      }
    }
  }
  return undefined;
}

/** The route after the first separator, or undefined when there is none or it's empty. */
export function routeOf(sessionId: string, sep: string): string | undefined {
  const at = sessionId.indexOf(sep);
  if (at < 0) return undefined;
  const route = sessionId.slice(at + sep.length);
  return route === '' ? undefined : route;
}

/** cookie-signature's signature: HMAC-SHA256 in base64 without padding, 43 characters. */
const SIGNATURE_RE = /^[A-Za-z0-9+/]{43}$/;

/**
 * The session id inside a signed cookie value, or the value itself when it is not signed:
 *  - express-session: `s:<id>.<signature>`, as browsers send it URL-encoded (`s%3A<id>.<signature>`, the
 *    signature's `+ /` encoded too) or raw. Unsigned ids (base64url) never contain `:`, so `s:` marks it;
 *  - @fastify/session: `<id>.<signature>` (URL-encoded or raw), recognised by a last segment that is a
 *    signature (43 base64 characters) after at least two dots.
 * The signature never contains a `.`, so it is what follows the last dot. It is not checked here: the
 * application checks it, the balancer only routes.
 */
export function unsignedValue(value: string): string {
  let v = value;
  if (v.indexOf('%') >= 0) {
    try {
      v = decodeURIComponent(v);
    } catch {
      return value;
    }
  }
  const dot = v.lastIndexOf('.');
  if (v.length >= 3 && v.charCodeAt(0) === 115 /* s */ && v.charCodeAt(1) === 58 /* : */) return dot > 2 ? v.slice(2, dot) : v.slice(2);
  if (dot > 0 && v.indexOf('.') < dot && SIGNATURE_RE.test(v.slice(dot + 1))) return v.slice(0, dot);
  return value;
}

/**
 * Finds the sticky route of a request: cookie first (httpd's order), then the
 * path parameter, then the query parameter. Values without a route are skipped.
 */
export function extractRoute(cookieHeader: string | string[] | undefined, target: string, names: StickyNames): StickyResult | undefined {
  const raw = findCookie(cookieHeader, names.cookie);
  if (raw !== undefined) {
    const fromCookie = unsignedValue(raw);
    const route = routeOf(fromCookie, names.sep);
    if (route !== undefined) return { sessionId: fromCookie, route, source: 'cookie' };
  }
  if (target.indexOf(';') >= 0) {
    const fromPath = pathParamValue(target, names.param);
    if (fromPath !== undefined) {
      const route = routeOf(fromPath, names.sep);
      if (route !== undefined) return { sessionId: fromPath, route, source: 'path' };
    }
  }
  if (target.indexOf('?') >= 0) {
    const fromQuery = queryParamValue(target, names.param);
    if (fromQuery !== undefined) {
      const route = routeOf(fromQuery, names.sep);
      if (route !== undefined) return { sessionId: fromQuery, route, source: 'query' };
    }
  }
  return undefined;
}
