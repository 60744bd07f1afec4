/**
 * The member's answer to an upgrade request, read before any tunnel is made.
 * Pure: bytes in, a verdict out. Only a `101` that switches to `websocket`
 * turns the connection into a tunnel; any other answer is a plain response
 * that ends the exchange, so that the client can never talk to the member
 * over a raw connection the balancer no longer parses (WebSocket smuggling).
 */

/** Largest accepted response head from a member on an upgrade, bytes. */
export const MAX_UPGRADE_RESPONSE_HEAD = 16 * 1024;

export type UpgradeResponse =
  /** Not a complete head yet: read more. */
  | { readonly kind: 'incomplete' }
  /** The head is larger than {@link MAX_UPGRADE_RESPONSE_HEAD} or not HTTP/1.x. */
  | { readonly kind: 'invalid'; readonly detail: string }
  /** `101` to websocket: splice. `headBytes` is the length of the head (rest is tunnel data). */
  | { readonly kind: 'switch'; readonly headBytes: number }
  /** Any other answer: forward it and close; `contentLength` when the head declares one. */
  | { readonly kind: 'refused'; readonly status: number; readonly headBytes: number; readonly contentLength: number | undefined };

export function parseUpgradeResponse(buf: Buffer): UpgradeResponse {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return buf.length > MAX_UPGRADE_RESPONSE_HEAD ? { kind: 'invalid', detail: `response head over ${MAX_UPGRADE_RESPONSE_HEAD} bytes` } : { kind: 'incomplete' };
  if (end + 4 > MAX_UPGRADE_RESPONSE_HEAD) return { kind: 'invalid', detail: `response head over ${MAX_UPGRADE_RESPONSE_HEAD} bytes` };
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]!);
  if (!m) return { kind: 'invalid', detail: 'not an HTTP/1.x status line' };
  const status = Number(m[1]);
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i <= 0) return { kind: 'invalid', detail: 'malformed response header line' };
    const name = l.slice(0, i).trim().toLowerCase();
    const value = l.slice(i + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  if (status === 101 && (headers.get('upgrade') ?? '').toLowerCase() === 'websocket') return { kind: 'switch', headBytes: end + 4 };
  const cl = headers.get('content-length');
  const contentLength = cl !== undefined && /^\d{1,15}$/.test(cl) ? Number(cl) : undefined;
  return { kind: 'refused', status, headBytes: end + 4, contentLength };
}
