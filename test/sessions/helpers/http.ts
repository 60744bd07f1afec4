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
