/**
 * Session ids: `<base>.<route>`. The base is at least 128 random bits in
 * base64url; the route (Tomcat's jvmRoute) names the owning node so that a
 * sticky balancer (httpd `stickysession`, Cohort's balancer) can route on it.
 * The base alone identifies the session inside the cluster: a route rewrite
 * (take-over) keeps the base, an id regeneration (login) changes it.
 */
import { systemRandom, type Random } from '../../util/clock.js';
import { SessionError, SessionErrorCode } from '../errors.js';

/** Separator between base and route, like httpd's `stickysessionsep` default. */
export const ROUTE_SEPARATOR = '.';

/** Random bytes in a new base: 18 bytes = 144 bits = 24 base64url characters. */
export const ID_RANDOM_BYTES = 18;

const BASE_RE = /^[A-Za-z0-9_-]{22,128}$/;
const ROUTE_RE = /^[A-Za-z0-9_-]{1,64}$/;

export interface ParsedSessionId {
  readonly base: string;
  /** Empty when the id carries no route. */
  readonly route: string;
}

/** A new random base (no route). */
export function newSessionBase(random: Pick<Random, 'bytes'> = systemRandom): string {
  return random.bytes(ID_RANDOM_BYTES).toString('base64url');
}

/** `<base>.<route>`, or just the base when route is empty. */
export function formatSessionId(base: string, route: string): string {
  return route ? `${base}${ROUTE_SEPARATOR}${route}` : base;
}

/**
 * Parses `<base>[.<route>]` (the route is what follows the first separator).
 * Returns undefined for anything malformed: ids come from clients.
 */
export function parseSessionId(id: string): ParsedSessionId | undefined {
  const i = id.indexOf(ROUTE_SEPARATOR);
  const base = i < 0 ? id : id.slice(0, i);
  const route = i < 0 ? '' : id.slice(i + 1);
  if (!BASE_RE.test(base)) return undefined;
  if (i >= 0 && !ROUTE_RE.test(route)) return undefined;
  return { base, route };
}

/** Like {@link parseSessionId} but throws COHORT_SESSION_BAD_ID. */
export function parseSessionIdOrThrow(id: string): ParsedSessionId {
  const p = parseSessionId(id);
  if (!p) throw new SessionError(SessionErrorCode.BadId, `malformed session id (expected <base64url>[.<route>], got ${JSON.stringify(id.slice(0, 80))})`);
  return p;
}

/** The same session id with its route suffix replaced (JvmRouteBinderValve). */
export function rewriteRoute(id: string, route: string): string {
  const p = parseSessionIdOrThrow(id);
  return formatSessionId(p.base, route);
}

/** Validates a node route (jvmRoute). */
export function isValidRoute(route: string): boolean {
  return ROUTE_RE.test(route);
}
