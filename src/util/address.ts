import net from "node:net";
import { CohortError } from '../errors.js';

/** `host:port` or `[v6]:port`; the host has no whitespace, colon or bracket unless bracketed. */
const HOST_PORT_RE = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:\[\]]+)):(\d{1,5})$/;

/**
 * The one host:port parser of the code base (config schemas, listeners,
 * static members): "host:port" / "[v6]:port", port 0..65535 (0 means an
 * ephemeral port). Throws COHORT_CONFIG_INVALID.
 */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = HOST_PORT_RE.exec(s.trim());
  if (!m) throw new CohortError('COHORT_CONFIG_INVALID', `expected host:port, got "${s}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new CohortError('COHORT_CONFIG_INVALID', `port out of range in "${s}"`);
  return { host: m[1] ?? m[2]!, port };
}

/** Whether {@link parseHostPort} accepts `s` (for schemas). */
export function isHostPort(s: string): boolean {
  const m = HOST_PORT_RE.exec(s.trim());
  return m !== null && Number(m[3]) <= 65535;
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A matcher for a list of IPs and CIDRs (IPv4 and IPv6; IPv4-mapped IPv6
 * client addresses match their IPv4 form). An empty list matches nothing.
 * IPv4 addresses are matched in JavaScript against the IPv4 entries (a
 * `BlockList.check` costs about 2.5 µs, and the balancer asks for every
 * request when `trustedproxies` is set); anything else, and IPv4 addresses
 * when the list has IPv6 entries, goes to node's BlockList, which decides
 * exactly as before.
 */
export function ipMatcher(list: readonly string[]): (ip: string) => boolean {
  if (list.length === 0) return () => false;
  const block = new net.BlockList();
  const v4: { net: number; mask: number }[] = [];
  let v6Entries = false;
  for (const entry of list) {
    const [addr, bits] = entry.split('/');
    const type = net.isIPv6(addr!) ? 'ipv6' : 'ipv4';
    if (bits !== undefined) block.addSubnet(addr!, Number(bits), type);
    else block.addAddress(addr!, type);
    const n = type === 'ipv4' ? ipv4ToInt(addr!) : -1;
    if (n >= 0) {
      const b = bits === undefined ? 32 : Number(bits);
      const mask = b <= 0 ? 0 : b >= 32 ? 0xffffffff : (0xffffffff << (32 - b)) >>> 0;
      v4.push({ net: (n & mask) >>> 0, mask });
    } else v6Entries = true;
  }
  return (ip) => {
    if (ip.startsWith('::ffff:')) ip = ip.slice(7);
    const n = ipv4ToInt(ip);
    if (n >= 0) {
      for (const r of v4) if (((n & r.mask) >>> 0) === r.net) return true;
      if (!v6Entries) return false;
    }
    return block.check(ip, net.isIPv6(ip) ? 'ipv6' : 'ipv4');
  };
}

/** A canonical dotted-quad IPv4 address as an unsigned 32-bit number; -1 for anything else (leading zeros included). */
export function ipv4ToInt(s: string): number {
  let n = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 255 || parts === 4) return -1;
      n = n * 256 + part;
      parts++;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1;
      part = part * 10 + (c - 48);
      if (++digits > 3) return -1;
    } else return -1;
  }
  return parts === 4 ? n : -1;
}

/** Loopback client addresses (127/8, ::1, IPv4-mapped 127/8). */
export function isLoopback(ip: string | undefined): boolean {
  return !!ip && (ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.'));
}

/**
 * The client a proxy in front of us says it forwarded (the entry the nearest proxy added: the last
 * `X-Forwarded-For` address, or the last `for=` of `Forwarded`), or undefined for a direct request.
 * A request that came through a proxy on this host is not a loopback client.
 */
export function forwardedClient(headers: Record<string, string | string[] | undefined>): string | undefined {
  const last = (v: string | string[] | undefined): string | undefined => {
    const all = (Array.isArray(v) ? v.join(',') : v ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    return all[all.length - 1];
  };
  const xff = last(headers['x-forwarded-for']);
  if (xff !== undefined) return xff;
  const fwd = last(headers['forwarded']);
  if (fwd === undefined) return undefined;
  const m = /(?:^|;)\s*for\s*=\s*"?\[?([^\]";]*)/i.exec(fwd);
  return m?.[1] ?? 'unknown';
}

/** A client on this host that came straight to us, not relayed by a proxy (which may be on this host too). */
export function isDirectLoopback(req: { readonly socket: { readonly remoteAddress?: string | undefined }; readonly headers: Record<string, string | string[] | undefined> }): boolean {
  return isLoopback(req.socket.remoteAddress) && forwardedClient(req.headers) === undefined;
}
