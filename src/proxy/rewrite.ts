/**
 * Request and response header handling for the proxy: hop-by-hop removal
 * (RFC 9110 §7.6.1, including the names a Connection header lists — taken
 * from the sender's set only, never from the headers the proxy adds), and
 * X-Forwarded-For/-Proto/-Host and Forwarded (RFC 7239), where client-sent
 * values are kept only from trusted proxies. Pure functions.
 */

import { forwardingName, isHopByHop, isName } from './header-names.js';

/** Names listed in Connection headers (lower case), excluding framing headers whose meaning must not change. */
export function connectionTokens(values: readonly string[]): Set<string> | undefined {
  let out: Set<string> | undefined;
  for (const v of values) {
    // The common values name no header: skip the split.
    if (isName(v, 'keep-alive') || isName(v, 'close') || isName(v, 'upgrade')) continue;
    for (const t of v.split(',')) {
      const name = t.trim().toLowerCase();
      if (name === '' || name === 'close' || name === 'keep-alive' || name === 'upgrade') continue;
      // Connection: Content-Length must not change how the body is framed; the host is not optional.
      if (name === 'content-length' || name === 'host') continue;
      (out ??= new Set()).add(name);
    }
  }
  return out;
}

export interface ForwardInfo {
  /** Client address as seen by the balancer. */
  readonly clientIp: string;
  /** Whether the client is a trusted proxy (its X-Forwarded-* are kept). */
  readonly trusted: boolean;
  /** 'http' | 'https' of the client connection. */
  readonly proto: string;
  /** Host header the client sent. */
  readonly host: string | undefined;
  /** Keep the client's Host header for the member (ProxyPreserveHost). */
  readonly preserveHost: boolean;
}

/** A Host value that may go into Forwarded's host= as it is (RFC 7239 §4, quoted when it has a port). */
const HOST_CHARS = /^[A-Za-z0-9.:[\]-]+$/;

function formatForwardedFor(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : ip;
}

/** X-Forwarded-For/-Proto/-Host and Forwarded values a trusted client sent (to be extended, not replaced). */
export interface ClientForwarding {
  xff: string | undefined;
  proto: string | undefined;
  host: string | undefined;
  forwarded: string | undefined;
}

/**
 * Appends to `out` the client's headers the member may see: hop-by-hop ones,
 * the names the sender's Connection headers list, Host (unless preserveHost)
 * and the forwarding headers of an untrusted client removed. Returns the
 * forwarding values a trusted client sent, or undefined when it sent none.
 */
export function memberHeaders(rawHeaders: readonly string[], info: ForwardInfo, keepUpgrade: boolean, out: string[]): ClientForwarding | undefined {
  let connection: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (isName(rawHeaders[i]!, 'connection')) (connection ??= []).push(rawHeaders[i + 1]!);
  }
  const listed = connection ? connectionTokens(connection) : undefined;
  let client: ClientForwarding | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    if (isHopByHop(name)) {
      if (keepUpgrade && isName(name, 'upgrade')) out.push(name, value);
      continue;
    }
    if (listed?.has(name.toLowerCase())) continue;
    const fw = forwardingName(name);
    if (fw !== undefined) {
      if (!info.trusted) continue;
      if (fw === 'x-real-ip') {
        out.push(name, value);
        continue;
      }
      const c = (client ??= { xff: undefined, proto: undefined, host: undefined, forwarded: undefined });
      if (fw === 'x-forwarded-for') c.xff = c.xff ? `${c.xff}, ${value}` : value;
      else if (fw === 'x-forwarded-proto') c.proto ??= value;
      else if (fw === 'x-forwarded-host') c.host ??= value;
      else c.forwarded = c.forwarded ? `${c.forwarded}, ${value}` : value;
      continue;
    }
    if (!info.preserveHost && isName(name, 'host')) continue;
    out.push(name, value);
  }
  return client;
}

/** Appends X-Forwarded-For/-Proto/-Host and Forwarded for the member to `out`, extending what a trusted `client` sent. */
export function forwardingHeaders(info: ForwardInfo, client: ClientForwarding | undefined, out: string[]): void {
  out.push('x-forwarded-for', client?.xff ? `${client.xff}, ${info.clientIp}` : info.clientIp);
  out.push('x-forwarded-proto', client?.proto ?? info.proto);
  const host = client?.host ?? info.host;
  if (host !== undefined) out.push('x-forwarded-host', host);
  let fwd = `for=${formatForwardedFor(info.clientIp)};proto=${info.proto}`;
  if (info.host !== undefined && HOST_CHARS.test(info.host)) fwd += `;host=${info.host.includes(':') ? `"${info.host}"` : info.host}`;
  out.push('forwarded', client?.forwarded ? `${client.forwarded}, ${fwd}` : fwd);
}

/** Where the forwarding lines made for one client connection are kept, with the Host they were made for. */
export interface ForwardingCache {
  forwardingLines: { readonly host: string | undefined; readonly text: string } | undefined;
}

/**
 * The forwarding header lines for the member (`name: value\r\n` each). For a
 * client that sent no forwarding values of its own they depend only on the
 * connection (address, scheme) and Host, so they are made once per
 * connection and Host and kept in `cache`.
 */
export function forwardingLines(info: ForwardInfo, client: ClientForwarding | undefined, cache: ForwardingCache): string {
  if (client === undefined) {
    const kept = cache.forwardingLines;
    if (kept !== undefined && kept.host === info.host) return kept.text;
  }
  const fwd: string[] = [];
  forwardingHeaders(info, client, fwd);
  const text = headerLines(fwd);
  if (client !== undefined) return text;
  // One piece (not a concatenation tree): later requests copy it once when the head is written.
  const flat = Buffer.from(text, 'latin1').toString('latin1');
  cache.forwardingLines = { host: info.host, text: flat };
  return flat;
}

/** `name: value\r\n` for each pair of a flat header list. */
export function headerLines(headers: readonly string[]): string {
  let text = '';
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return text;
}

/**
 * Builds the flat header list for the member from the client's raw headers.
 * Returns [name, value, name, value, ...].
 */
export function requestHeadersForMember(rawHeaders: readonly string[], info: ForwardInfo, keepUpgrade = false): string[] {
  const out: string[] = [];
  const client = memberHeaders(rawHeaders, info, keepUpgrade, out);
  if (keepUpgrade) out.push('connection', 'upgrade');
  forwardingHeaders(info, client, out);
  return out;
}

export interface ReverseRule {
  /** The member's origin + upstream path prefix, e.g. "http://127.0.0.1:8081/examples". */
  readonly memberPrefixes: readonly string[];
  /** The balancer's own path prefix for this mount, e.g. "/examples". */
  readonly mountPath: string;
  readonly upstreamPath: string;
}

/** Location, Content-Location and URI carry URLs that ProxyPassReverse rewrites. */
function isUrlHeader(name: string): boolean {
  return isName(name, 'location') || isName(name, 'content-location') || isName(name, 'uri');
}

/**
 * Builds the client's response headers from the member's raw headers:
 * hop-by-hop removed, Location/Content-Location/URI and Set-Cookie paths
 * rewritten (ProxyPassReverse / ProxyPassReverseCookiePath).
 * `origin` is the balancer origin as the client sees it ("http://host").
 */
export function responseHeadersForClient(raw: readonly string[], rule: ReverseRule | undefined, origin: string | undefined | (() => string)): string[] {
  let listed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (isName(raw[i]!, 'connection')) {
      const v = raw[i + 1]!;
      // `Connection: keep-alive` / `close` name no header (most responses): no list to build.
      if (isName(v, 'keep-alive') || isName(v, 'close')) continue;
      const t = connectionTokens([v]);
      if (t) for (const x of t) (listed ??= new Set()).add(x);
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (isHopByHop(name) || (listed !== undefined && listed.has(name.toLowerCase()))) continue;
    let value = raw[i + 1]!;
    if (rule !== undefined) {
      if (isUrlHeader(name)) value = rewriteUrl(value, rule, typeof origin === 'function' ? origin() : origin);
      else if (isName(name, 'set-cookie')) value = rewriteCookiePath(value, rule);
    }
    out.push(name, value);
  }
  return out;
}

/** ProxyPassReverse: a member URL under the upstream path becomes the balancer URL under the mount path. */
export function rewriteUrl(value: string, rule: ReverseRule, origin: string | undefined): string {
  for (const prefix of rule.memberPrefixes) {
    if (value.startsWith(prefix)) {
      const rest = value.slice(prefix.length);
      if (rest !== '' && rest[0] !== '/' && rest[0] !== '?' && rest[0] !== '#' && !prefix.endsWith('/')) continue;
      return `${origin ?? ''}${joinPath(rule.mountPath, rest)}`;
    }
  }
  // A path-absolute Location under the upstream path.
  if (value.startsWith('/') && !value.startsWith('//') && rule.upstreamPath !== rule.mountPath && underPath(value, rule.upstreamPath)) {
    return joinPath(rule.mountPath, value.slice(rule.upstreamPath.replace(/\/$/, '').length));
  }
  return value;
}

/** ProxyPassReverseCookiePath: Path=/upstream… becomes Path=/mount…. */
export function rewriteCookiePath(value: string, rule: ReverseRule): string {
  if (rule.upstreamPath === rule.mountPath) return value;
  return value.replace(/(;\s*path=)([^;]*)/i, (all, lead: string, path: string) => {
    const p = path.trim();
    if (!underPath(p, rule.upstreamPath)) return all;
    return `${lead}${joinPath(rule.mountPath, p.slice(rule.upstreamPath.replace(/\/$/, '').length)) || '/'}`;
  });
}

function underPath(path: string, prefix: string): boolean {
  const p = prefix.replace(/\/$/, '');
  if (p === '') return true;
  return path === p || path.startsWith(`${p}/`) || path.startsWith(`${p}?`) || path.startsWith(`${p};`);
}

function joinPath(base: string, rest: string): string {
  const b = base.replace(/\/$/, '');
  if (rest === '') return b === '' ? '/' : b;
  if (rest[0] === '/') return `${b}${rest}`;
  return `${b}/${rest}`;
}

/**
 * The client address for logs: the connection's peer, or — when the peer is
 * a trusted proxy — the rightmost X-Forwarded-For address that is not a
 * trusted proxy itself (httpd mod_remoteip's reading of the chain). Values
 * sent by an untrusted peer are never believed.
 */
export function clientFromChain(peer: string, rawHeaders: readonly string[], isTrusted: (ip: string) => boolean): string {
  if (!isTrusted(peer)) return peer;
  let chain: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (isName(rawHeaders[i]!, 'x-forwarded-for')) {
      for (const a of rawHeaders[i + 1]!.split(',')) (chain ??= []).push(a.trim());
    }
  }
  if (chain === undefined) return peer;
  for (let i = chain.length - 1; i >= 0; i--) {
    const a = chain[i]!;
    if (a === '' || !/^[0-9A-Fa-f.:]+$/.test(a)) return peer;
    if (!isTrusted(a) || i === 0) return a;
  }
  return peer;
}
