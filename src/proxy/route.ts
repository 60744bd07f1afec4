import { extractRoute, type StickyResult } from '../balancer/sticky.js';
import type { Balancer } from '../balancer/balancer.js';
import { isLoopback } from '../util/address.js';
import type { RequestHead } from './parse.js';

/**
 * The sticky route of a request (cookie, `;jsessionid=` path parameter or
 * query), read with the balancer's stickysession names. Cookie crumbs are
 * already joined by the parser (one string, "; " between values).
 */
export function routeOf(head: RequestHead, target: string, balancer: Balancer): StickyResult | undefined {
  return extractRoute(head.cookie, target, balancer.sticky);
}

/** Who may ask for the explain header: everyone, nobody, or loopback clients and trusted proxies ('local'). */
export function mayExplain(policy: boolean | 'local', ip: string, isTrusted: (ip: string) => boolean): boolean {
  if (policy !== 'local') return policy;
  return isLoopback(ip) || isTrusted(ip);
}
