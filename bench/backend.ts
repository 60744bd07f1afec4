/**
 * A benchmark backend process: answers `<name>\n` after `DELAY_MS` (0 = at once).
 * Env: NAME, DELAY_MS. Prints its port on stdout.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const name = process.env.NAME ?? 'backend';
const delay = Number(process.env.DELAY_MS ?? 0);
const body = Buffer.from(`${name}\n`);
const server = http.createServer((_req, res) => {
  const send = () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  };
  if (delay > 0) setTimeout(send, delay);
  else send();
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
