import type { RequestHead } from './parse.js';
import { isName } from './header-names.js';

/**
 * Checks that llhttp (strict mode) leaves to us: framing that two HTTP
 * implementations could read differently must never be forwarded, and a
 * target must name a path under our mounts. Pure: a parsed head in, a
 * refusal (status and reason) or undefined out.
 */
export interface Rejection {
  readonly status: 400 | 405 | 414;
  readonly reason: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * A "." or ".." path segment, raw or percent-encoded. Mounts match on the raw
 * path, so `/app/../admin` would match the /app mount and the member, which
 * normalizes, would serve /admin: a way out of the mounted prefix.
 */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:[/;?#]|$)/i;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * `charsChecked`: the head came through llhttp in strict mode, which already
 * refuses header names that are not tokens and values with control
 * characters (the same sets as TOKEN and FIELD_VALUE); HTTP/2 heads are
 * checked here.
 */
export function validateRequest(req: RequestHead, maxUrlLength: number, charsChecked = false): Rejection | undefined {
  const url = req.url;
  if (url.length > maxUrlLength) return { status: 414, reason: `request target longer than ${maxUrlLength} bytes` };
  if (req.method === 'CONNECT') return { status: 405, reason: 'CONNECT is not supported (not a forward proxy)' };
  if (url === '' || (url[0] !== '/' && !(url === '*' && req.method === 'OPTIONS') && !/^https?:\/\//i.test(url))) {
    return { status: 400, reason: 'invalid request target' };
  }
  if (url[0] === '/') {
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if ((path.includes('.') || path.includes('%')) && DOT_SEGMENT.test(path)) return { status: 400, reason: 'dot-segment ("." or "..") in the request path' };
  }
  const raw = req.rawHeaders;
  let cl: string | undefined;
  let clCount = 0;
  let te: string | undefined;
  let teCount = 0;
  let hostCount = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (!charsChecked) {
      if (!TOKEN.test(name)) return { status: 400, reason: 'invalid header name' };
      if (!FIELD_VALUE.test(value)) return { status: 400, reason: `invalid characters in header ${name}` };
    }
    switch (name.length) {
      case 4:
        if (isName(name, 'host')) hostCount++;
        break;
      case 14:
        if (isName(name, 'content-length')) {
          clCount++;
          cl = value;
        }
        break;
      case 17:
        if (isName(name, 'transfer-encoding')) {
          teCount++;
          te = value;
        }
        break;
    }
  }
  // RFC 9112 §3.2: a client MUST send Host in HTTP/1.1 (node:http's requireHostHeader).
  if (hostCount === 0 && req.versionMinor >= 1) return { status: 400, reason: 'missing Host header' };
  if (hostCount > 1) return { status: 400, reason: 'more than one Host header' };
  if (clCount > 1) return { status: 400, reason: 'more than one Content-Length header' };
  if (cl !== undefined && !/^\d{1,15}$/.test(cl.trim())) return { status: 400, reason: 'invalid Content-Length' };
  if (teCount > 0) {
    if (cl !== undefined) return { status: 400, reason: 'both Content-Length and Transfer-Encoding' };
    if (req.versionMajor === 1 && req.versionMinor === 0) return { status: 400, reason: 'Transfer-Encoding in an HTTP/1.0 request' };
    // RFC 9112 §6.1: a request whose final coding is not chunked cannot be framed: 400.
    if (teCount > 1 || te!.trim().toLowerCase() !== 'chunked') return { status: 400, reason: `unsupported Transfer-Encoding "${te}" (the final coding must be chunked, once)` };
  }
  return undefined;
}
