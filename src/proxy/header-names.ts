/**
 * Header names compared without allocating: the engine meets the same few
 * names on every request (Host, Content-Length, Connection …), and a
 * lower-cased copy of each name, hashed for a Set lookup, was a measurable
 * share of the request path (callgrind: ≈ 5 % of its instructions).
 * Names reach us as llhttp or nghttp2 checked them (tokens: ASCII only).
 */

/** `name` equals `lower` (a lower-case name) ignoring ASCII case. */
export function isName(name: string, lower: string): boolean {
  const n = lower.length;
  if (name.length !== n) return false;
  for (let i = 0; i < n; i++) {
    let c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Always hop-by-hop (RFC 9110 §7.6.1), plus `expect` (answered by the
 * balancer itself) and `http2-settings`. Decided by length first, so most
 * names cost one comparison.
 */
export function isHopByHop(name: string): boolean {
  switch (name.length) {
    case 2:
      return isName(name, 'te');
    case 6:
      return isName(name, 'expect');
    case 7:
      return isName(name, 'upgrade') || isName(name, 'trailer');
    case 10:
      return isName(name, 'connection') || isName(name, 'keep-alive');
    case 14:
      return isName(name, 'http2-settings');
    case 16:
      return isName(name, 'proxy-connection');
    case 17:
      return isName(name, 'transfer-encoding');
    case 18:
      return isName(name, 'proxy-authenticate');
    case 19:
      return isName(name, 'proxy-authorization');
    default:
      return false;
  }
}

/** The forwarding headers whose client-sent values only trusted proxies may set, or undefined. */
export type ForwardingName = 'x-forwarded-for' | 'x-forwarded-proto' | 'x-forwarded-host' | 'forwarded' | 'x-real-ip';

export function forwardingName(name: string): ForwardingName | undefined {
  switch (name.length) {
    case 9:
      if (isName(name, 'forwarded')) return 'forwarded';
      if (isName(name, 'x-real-ip')) return 'x-real-ip';
      return undefined;
    case 15:
      return isName(name, 'x-forwarded-for') ? 'x-forwarded-for' : undefined;
    case 16:
      return isName(name, 'x-forwarded-host') ? 'x-forwarded-host' : undefined;
    case 17:
      return isName(name, 'x-forwarded-proto') ? 'x-forwarded-proto' : undefined;
    default:
      return undefined;
  }
}
