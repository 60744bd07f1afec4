/**
 * Operations (issue 2, behaviour 11) on a real `cohort balancer` child process
 * and in-process TLS: SIGTERM drains and exits 0, SIGHUP reloads without
 * dropping a keep-alive connection, invalid configs exit 2 naming file, key
 * path and expectation; TLS listeners; TLS to members verified by default.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startBackend, startBalancer, request, until, sleep, type Backend } from '../helpers/backends.js';

const BIN = fileURLToPath(new URL('../../../bin/cohort.js', import.meta.url));

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-ops-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

interface Cli {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  stderr(): string;
  exit: Promise<{ code: number | null; signal: string | null }>;
}

async function startCli(configFile: string): Promise<Cli> {
  const child = spawn(process.execPath, [BIN, 'balancer', '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  await until(() => /listening on (http\S+)/.test(err) || child.exitCode !== null, 10_000, 'the balancer to listen');
  const m = /listening on (http\S+)/.exec(err);
  if (!m) throw new Error(`balancer did not start: ${err}`);
  const url = m[1]!;
  return { child, url, port: Number(new URL(url).port), stderr: () => err, exit };
}

function kill(c: Cli): void {
  if (c.child.exitCode === null && c.child.signalCode === null) process.kill(c.child.pid!, 'SIGKILL');
}

function writeConfig(name: string, members: Record<string, unknown>[], extra: Record<string, unknown> = {}): string {
  const file = join(dir, name);
  writeFileSync(file, stringify({ listen: '127.0.0.1:0', accesslog: false, loglevel: 'warn', balancers: [{ name: 'b', slowstart: 0, members }], ...extra }));
  return file;
}

describe('signals on a real `cohort balancer` process', () => {
  test('SIGTERM: stops accepting, finishes the in-flight slow request (on a keep-alive connection), exits 0 promptly', async () => {
    const tc1 = await startBackend('tc1');
    const cli = await startCli(writeConfig('term.yaml', [{ url: tc1.url, route: 'tc1' }]));
    const agent = new http.Agent({ keepAlive: true });
    try {
      // An idle keep-alive connection and a busy one.
      assert.equal((await request(`${cli.url}/`, { agent })).status, 200);
      const slow = request(`${cli.url}/slow/1200`, { agent: new http.Agent({ keepAlive: true }) });
      await until(() => tc1.active === 1, 5000, 'the slow request to reach the member');
      process.kill(cli.child.pid!, 'SIGTERM');
      // New connections are refused while the slow one finishes.
      await until(
        () => new Promise<boolean>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port: cli.port });
          s.on('connect', () => (s.destroy(), resolve(false)));
          s.on('error', () => resolve(true));
        }),
        3000,
        'the listener to close',
      );
      const r = await slow;
      assert.equal(r.status, 200);
      assert.equal(r.body, 'tc1\n');
      const t0 = Date.now();
      const { code } = await cli.exit;
      assert.equal(code, 0, cli.stderr());
      // Well before the 30 s shutdown deadline: kept-alive connections do not hold the exit.
      assert.ok(Date.now() - t0 < 5000, `exited ${Date.now() - t0} ms after the slow request finished`);
    } finally {
      agent.destroy();
      kill(cli);
      await tc1.close();
    }
  });

  test('SIGHUP reloads a changed config (loadfactor, a new member) without dropping an open keep-alive connection', async () => {
    const tc1 = await startBackend('tc1');
    const tc2 = await startBackend('tc2');
    const file = writeConfig('hup.yaml', [{ url: tc1.url, route: 'tc1' }]);
    const cli = await startCli(file);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const ports = new Set<number>();
      const get = () =>
        new Promise<string>((resolve, reject) => {
          http.get(`${cli.url}/`, { agent }, (res) => {
            ports.add(res.socket.localPort!);
            let b = '';
            res.on('data', (c) => (b += c));
            res.on('end', () => resolve(b.trim()));
          }).on('error', reject);
        });
      assert.equal(await get(), 'tc1');
      writeConfig('hup.yaml', [{ url: tc1.url, route: 'tc1', loadfactor: 1 }, { url: tc2.url, route: 'tc2', loadfactor: 3 }]);
      process.kill(cli.child.pid!, 'SIGHUP');
      const got: string[] = [];
      await until(async () => {
        got.push(await get());
        return got.includes('tc2');
      }, 5000, 'the new member to get traffic');
      const more: string[] = [];
      for (let i = 0; i < 8; i++) more.push(await get());
      assert.equal(more.filter((x) => x === 'tc2').length, 6, `loadfactor 1:3 → ${more.join(',')}`);
      assert.equal(ports.size, 1, 'the client kept one connection throughout');
      assert.equal(cli.child.exitCode, null);
    } finally {
      agent.destroy();
      kill(cli);
      await tc1.close();
      await tc2.close();
    }
  });
});

test('structured access log: member, route, status and upstream time for each exchange', async () => {
  const { pino } = await import('pino');
  const lines: Record<string, unknown>[] = [];
  const accessLog = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  const tc1 = await startBackend('tc1');
  const bal = await startBalancer({ balancers: [{ name: 'b', members: [{ url: tc1.url, route: 'tc1' }] }] }, { accessLog });
  try {
    await request(`${bal.url}/page?x=1`, { headers: { cookie: 'JSESSIONID=abc.tc1' } });
    await request(`${bal.url}/status/404`);
    await until(() => lines.length >= 2, 2000, 'two access log lines');
    assert.equal(lines[0]!.url, '/page?x=1');
    assert.equal(lines[0]!.status, 200);
    assert.equal(lines[0]!.member, 'tc1');
    assert.equal(lines[0]!.route, 'tc1');
    assert.equal(lines[0]!.reason, 'sticky');
    assert.equal(typeof lines[0]!.upstreamMs, 'number');
    assert.equal(lines[1]!.status, 404);
  } finally {
    await bal.close();
    await tc1.close();
  }
});

test('graceful close has a deadline: a request still running after timeouts.shutdown is cut, and close() resolves', async () => {
  const tc1 = await startBackend('tc1');
  const bal = await startBalancer({ timeouts: { shutdown: 0.5 }, balancers: [{ name: 'b', members: [{ url: tc1.url, route: 'tc1' }] }] });
  try {
    const slow = request(`${bal.url}/slow/10000`).then((r) => `status ${r.status}`, (e: Error) => `cut: ${e.message}`);
    await until(() => tc1.active === 1, 3000, 'the slow request to start');
    const t0 = Date.now();
    await bal.server.close();
    const took = Date.now() - t0;
    assert.ok(took >= 400 && took < 5000, `close() took ${took} ms`);
    assert.match(await slow, /^cut/);
    await until(() => tc1.active === 0, 3000, 'the member request to be aborted');
  } finally {
    await bal.close();
    await tc1.close();
  }
});

describe('SIGHUP edge cases', () => {
  test('an invalid config on SIGHUP is refused with a message; the old one keeps serving', async () => {
    const tc1 = await startBackend('tc1');
    const file = writeConfig('hup-bad.yaml', [{ url: tc1.url, route: 'tc1' }]);
    const cli = await startCli(file);
    try {
      writeFileSync(file, 'balancers:\n  - name: b\n    members:\n      - url: nope\n');
      process.kill(cli.child.pid!, 'SIGHUP');
      await until(() => /reload refused/.test(cli.stderr()), 5000, 'the refusal to be logged');
      assert.match(cli.stderr(), /members\[0\]\.url/);
      const r = await request(`${cli.url}/`);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'tc1\n');
      assert.equal(cli.child.exitCode, null);
    } finally {
      kill(cli);
      await tc1.close();
    }
  });

  test('reload keeps a member\'s state (in error, with its reason) and removes dropped members', async () => {
    const tc1 = await startBackend('tc1');
    const tc2 = await startBackend('tc2');
    const tc3 = await startBackend('tc3');
    const members = [{ url: tc1.url, route: 'tc1' }, { url: tc2.url, route: 'tc2' }, { url: tc3.url, route: 'tc3' }];
    const bal = await startBalancer({ balancers: [{ name: 'b', slowstart: 0, members }] });
    try {
      await tc1.refuse();
      for (let i = 0; i < 3; i++) assert.equal((await request(`${bal.url}/`)).status, 200);
      const { parseBalancerConfig } = await import('../../src/config/load.js');
      await bal.server.reload(parseBalancerConfig({ listen: '127.0.0.1:0', accesslog: false, balancers: [{ name: 'b', slowstart: 0, members: [{ url: tc1.url, route: 'tc1' }, { url: tc2.url, route: 'tc2', loadfactor: 2 }] }] }));
      const snap = bal.server.snapshot()[0]!.members;
      assert.deepEqual(snap.map((m) => m.route), ['tc1', 'tc2']);
      assert.equal(snap[0]!.health, 'error');
      assert.equal(snap[0]!.reason?.source, 'connect');
      assert.equal(snap[1]!.loadfactor, 2);
      const n3 = tc3.seen.length;
      for (let i = 0; i < 4; i++) assert.equal((await request(`${bal.url}/`)).headers['x-backend'], 'tc2');
      assert.equal(tc3.seen.length, n3);
    } finally {
      await bal.close();
      for (const b of [tc1, tc2, tc3]) await b.close();
    }
  });
});

describe('invalid configuration → exit status 2, naming the file, the key path and what was expected', () => {
  const cases: { name: string; yaml: string; expect: RegExp[] }[] = [
    { name: 'loadfactor out of range', yaml: 'balancers:\n  - name: b\n    members:\n      - url: http://127.0.0.1:1\n        loadfactor: 500\n', expect: [/balancers\[0\]\.members\[0\]\.loadfactor/, /1\.\.100/] },
    { name: 'unknown key', yaml: 'balancers:\n  - name: b\n    stickysesion: JSESSIONID\n    members: []\n', expect: [/balancers\[0\]\.stickysesion/, /unknown key/] },
    { name: 'unknown top-level key', yaml: 'listen: 127.0.0.1:0\nbalancer: []\nbalancers:\n  - name: b\n', expect: [/balancer\b.*unknown key/] },
    { name: 'wrong type', yaml: 'balancers:\n  - name: b\n    nofailover: "yes"\n', expect: [/balancers\[0\]\.nofailover/, /boolean/] },
    { name: 'bad listen address', yaml: 'listen: localhost\nbalancers:\n  - name: b\n', expect: [/listen/, /host:port/] },
    { name: 'mount names no balancer', yaml: 'balancers:\n  - name: b\nmounts:\n  - { path: /x, balancer: nope }\n', expect: [/mounts\[0\]\.balancer/, /expected the name of a balancer/] },
    { name: 'missing TLS certificate file', yaml: 'listen:\n  address: 127.0.0.1:0\n  tls: { cert: /nonexistent/cert.pem, key: /nonexistent/key.pem }\nbalancers:\n  - name: b\n', expect: [/listen\.tls\.cert: expected a readable PEM file/, /listen\.tls\.key/] },
    { name: 'upstreamtls.ca is not PEM', yaml: `upstreamtls: { ca: ${JSON.stringify(BIN)} }\nbalancers:\n  - name: b\n`, expect: [/upstreamtls\.ca: expected a PEM file/] },
    { name: 'outlier ejection of more than half', yaml: 'balancers:\n  - name: b\n    outlier: { maxejectpercent: 100 }\n', expect: [/balancers\[0\]\.outlier\.maxejectpercent: expected a percentage 0\.\.50/] },
    { name: 'YAML syntax error', yaml: 'balancers:\n  - name: [b\n', expect: [/line \d+/] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const file = join(dir, `bad-${c.name.replace(/\W+/g, '-')}.yaml`);
      writeFileSync(file, c.yaml);
      let status = 0;
      let stderr = '';
      try {
        execFileSync(process.execPath, [BIN, 'balancer', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
      } catch (e) {
        const err = e as { status: number; stderr: Buffer };
        status = err.status;
        stderr = err.stderr.toString();
      }
      assert.equal(status, 2, stderr);
      assert.ok(stderr.includes(file), `names the file: ${stderr}`);
      for (const re of c.expect) assert.match(stderr, re);
    });
  }
});

describe('TLS', () => {
  let cert: string;
  let key: string;
  before(() => {
    cert = join(dir, 'cert.pem');
    key = join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  });

  async function httpsMember(name: string): Promise<{ url: string; close: () => Promise<void> }> {
    const s = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
      req.resume();
      res.writeHead(200, { 'x-backend': name }).end(`${name}\n`);
    });
    s.listen(0, '127.0.0.1');
    await once(s, 'listening');
    return { url: `https://127.0.0.1:${(s.address() as net.AddressInfo).port}`, close: () => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r()))) };
  }

  function httpsGet(url: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      https.get(url, { ca: readFileSync(cert), agent: false }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: b }));
      }).on('error', reject);
    });
  }

  test('a TLS listener serves HTTPS and sets X-Forwarded-Proto: https', async () => {
    const tc1: Backend = await startBackend('tc1');
    const bal = await startBalancer({ listen: { address: '127.0.0.1:0', tls: { cert, key } }, balancers: [{ name: 'b', members: [{ url: tc1.url, route: 'tc1' }] }] });
    try {
      assert.ok(bal.url.startsWith('https://'));
      const r = await httpsGet(`${bal.url}/echo`);
      assert.equal(r.status, 200);
      const raw = (JSON.parse(r.body) as { rawHeaders: string[] }).rawHeaders;
      assert.equal(raw[raw.findIndex((h, i) => i % 2 === 0 && h.toLowerCase() === 'x-forwarded-proto') + 1], 'https');
    } finally {
      await bal.close();
      await tc1.close();
    }
  });

  test('TLS to members is verified by default: a self-signed member is refused unless upstreamtls.ca is given', async () => {
    const m = await httpsMember('tls1');
    const strict = await startBalancer({ balancers: [{ name: 'b', members: [{ url: m.url, route: 'tls1' }] }] });
    const withCa = await startBalancer({ upstreamtls: { ca: cert }, balancers: [{ name: 'b', members: [{ url: m.url, route: 'tls1' }] }] });
    try {
      const refused = await request(`${strict.url}/`);
      assert.equal(refused.status, 502, refused.body);
      assert.match(refused.body, /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/i);
      const ok = await request(`${withCa.url}/`);
      assert.equal(ok.status, 200, ok.body);
      assert.equal(ok.headers['x-backend'], 'tls1');
    } finally {
      await strict.close();
      await withCa.close();
      await m.close();
    }
  });

  test('health checks to a TLS member use upstreamtls.ca too', async () => {
    const m = await httpsMember('tls1');
    const bal = await startBalancer({ upstreamtls: { ca: cert }, balancers: [{ name: 'b', hcheck: { path: '/', interval: 0.2, timeout: 0.5, rise: 1, fall: 1 }, members: [{ url: m.url, route: 'tls1' }] }] });
    try {
      await sleep(800);
      const snap = bal.server.snapshot()[0]!.members[0]!;
      assert.equal(snap.health, 'ok', JSON.stringify(snap.lastCheck));
      assert.equal(snap.lastCheck?.ok, true);
    } finally {
      await bal.close();
      await m.close();
    }
  });
});
