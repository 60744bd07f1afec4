/** Small HTTP helpers for session tests: servers on ephemeral ports, a cookie-keeping client. */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

export async function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

export interface Reply {
  status: number;
  body: string;
  setCookie: string[];
}

export async function get(url: string, cookie?: string, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(url, { headers: { ...(cookie ? { cookie } : {}), ...headers } });
  return { status: res.status, body: await res.text(), setCookie: res.headers.getSetCookie() };
}

/** `NAME=value` from a Set-Cookie list. */
export function cookieFrom(setCookie: readonly string[], name = 'JSESSIONID'): string | undefined {
  const c = setCookie.find((x) => x.startsWith(`${name}=`));
  return c?.split(';')[0];
}

/**
 * A signed `NAME=s%3A<id>.<sig>` cookie with one character of its signature changed, still well encoded. Cutting
 * characters off the encoded value is not enough: a signature ending in `%2F` or `%2B` cut inside the escape
 * leaves a broken percent-encoding (a malformed cookie, not a forged one).
 */
export function forgeSignature(cookie: string): string {
  const eq = cookie.indexOf('=');
  const value = decodeURIComponent(cookie.slice(eq + 1));
  const at = value.lastIndexOf('.') + 1; // the signature's first character: all six of its bits count
  const forged = value.slice(0, at) + (value[at] === 'A' ? 'B' : 'A') + value.slice(at + 1);
  return `${cookie.slice(0, eq + 1)}${encodeURIComponent(forged)}`;
}
