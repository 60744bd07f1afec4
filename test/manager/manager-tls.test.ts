import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startBackend, startStack, tempDir, PASSWORD } from './helpers.js';

const OPENSSL = '/usr/bin/openssl';

test('manager over TLS: https listener, Secure session cookie, https origin check', { skip: existsSync(OPENSSL) ? false : 'openssl not installed', timeout: 30_000 }, async () => {
  const t = tempDir();
  const b1 = await startBackend('tc1');
  const cert = join(t.dir, 'cert.pem');
  const key = join(t.dir, 'key.pem');
  execFileSync(OPENSSL, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const s = await startStack({ backends: [b1], managerExtra: { tls: { cert, key } } });
  const agent = new Agent({ connect: { rejectUnauthorized: false } });
  try {
    const origin = s.origin.replace('http:', 'https:');
    assert.match(s.manager.address()!.url, /^https:/);
    const login = await request(`${origin}${s.base}/login`, {
      method: 'POST', dispatcher: agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin, 'sec-fetch-site': 'same-origin' },
      body: new URLSearchParams({ user: 'alice', password: PASSWORD }).toString(),
    });
    await login.body.dump();
    assert.equal(login.statusCode, 303);
    const cookie = String(login.headers['set-cookie']);
    assert.match(cookie, /; Secure/);
    // The plain-http origin of the same host:port is another origin.
    const cross = await request(`${origin}${s.base}/login`, {
      method: 'POST', dispatcher: agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: origin.replace('https:', 'http:') },
      body: 'user=alice&password=x',
    });
    await cross.body.dump();
    assert.equal(cross.statusCode, 403);
    const page = await request(`${origin}${s.base}/`, { dispatcher: agent, headers: { cookie: cookie.split(';')[0]! } });
    assert.equal(page.statusCode, 200);
    await page.body.dump();
  } finally {
    await agent.close();
    await s.close();
    await b1.close();
    t.cleanup();
  }
});
