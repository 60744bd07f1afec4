/**
 * Operator conventions (issue 12, item 3): ${VAR} in YAML, *_FILE secrets,
 * check-config on node files, COHORT_CONFIG, SIGHUP reload on `cohort node`
 * (also while it is still starting), --log-file reopened on SIGUSR2, and a log
 * file that can't be reopened (a warning, the process keeps serving).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { stringify } from 'yaml';
import { expandEnvVars } from '../../src/config/env-vars.js';
import { ConfigError } from '../../src/errors.js';
import { planNodeReload } from '../../src/node/reload.js';
import { parseNodeConfig } from '../../src/node/config.js';
import { configFileFrom } from '../../src/cli/check-config.js';
import { BIN, freePort } from '../helpers/cluster-procs.js';
import { until, request } from '../helpers/backends.js';

let dir: string;
const children = new Set<ChildProcess>();
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'cohort-conv-'));
});
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('${VAR} in configuration values', () => {
  const env = { HOST: '10.0.0.5', EMPTY: '', PASSWORD_FILE: '/run/secrets/pw' };
  const readFile = (p: string) => {
    if (p === '/run/secrets/pw') return 's3cret\n';
    throw new Error(`ENOENT: no such file, open '${p}'`);
  };
  test('set, default, empty with default, *_FILE, literal $${', () => {
    const out = expandEnvVars({
      listen: '${HOST}:8080',
      a: ['${MISSING:-x}', '${EMPTY:-fallback}', 'plain', 5],
      redis: { url: 'redis://:${PASSWORD}@h:6379' },
      lit: '$${HOST}',
    }, 'f.yaml', { env, readFile });
    assert.deepEqual(out, { listen: '10.0.0.5:8080', a: ['x', 'fallback', 'plain', 5], redis: { url: 'redis://:s3cret@h:6379' }, lit: '${HOST}' });
  });
  test('unset without default: an error naming the file and the key (every one)', () => {
    assert.throws(() => expandEnvVars({ node: { sessions: { redis: '${REDIS_URL}' } }, x: ['${NOPE}'] }, 'node.yaml', { env, readFile }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /node\.yaml/);
      assert.match(err.message, /node\.sessions\.redis: \$\{REDIS_URL\} is not set/);
      assert.match(err.message, /x\[0\]: \$\{NOPE\} is not set/);
      return true;
    });
  });
  test('an unreadable *_FILE and a malformed reference are errors too', () => {
    assert.throws(() => expandEnvVars({ k: '${X}' }, 'f.yaml', { env: { X_FILE: '/nope' }, readFile }), /k: \$\{X\}: cannot read X_FILE=\/nope/);
    assert.throws(() => expandEnvVars({ k: 'a ${1BAD} b' }, 'f.yaml', { env, readFile }), /k: "\$\{1BAD\}" is not a valid reference/);
  });
});

test('configFileFrom: --config wins, COHORT_CONFIG otherwise', () => {
  assert.equal(configFileFrom('a.yaml', { COHORT_CONFIG: 'b.yaml' }), 'a.yaml');
  assert.equal(configFileFrom(undefined, { COHORT_CONFIG: 'b.yaml' }), 'b.yaml');
  assert.equal(configFileFrom(undefined, {}), undefined);
});

test('planNodeReload: loglevel, loadfactor and static members apply; the rest is listed as needing a restart', () => {
  const base = { route: 'tc1', app: './app.mjs', cluster: { members: ['127.0.0.1:4002'] } };
  const cur = parseNodeConfig(base);
  const next = parseNodeConfig({ ...base, loglevel: 'debug', loadfactor: 7, listen: '127.0.0.1:9999', cluster: { members: ['127.0.0.1:4002', '127.0.0.1:4003'], name: 'other' } });
  const plan = planNodeReload(cur, next);
  assert.equal(plan.loglevel, 'debug');
  assert.deepEqual(plan.loadfactor, { value: 7 });
  assert.deepEqual(plan.members, ['127.0.0.1:4002', '127.0.0.1:4003']);
  assert.deepEqual([...plan.needRestart].sort(), ['node.cluster.name', 'node.listen']);
  assert.deepEqual(planNodeReload(cur, cur), { needRestart: [] });
  // members under DNS discovery are not the static list: a restart
  const dns = parseNodeConfig({ ...base, cluster: { dns: 'nodes.local', members: [] } });
  assert.deepEqual(planNodeReload(dns, parseNodeConfig({ ...base, cluster: { dns: 'nodes.local', members: ['127.0.0.1:1'] } })).needRestart, ['node.cluster.members']);
});

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 30_000 });
}

describe('cohort check-config on node files', () => {
  test('a valid node file (with ${VAR}) is ok; COHORT_CONFIG names the file when the argument is absent', () => {
    const f = join(dir, 'node-ok.yaml');
    writeFileSync(f, 'node:\n  route: ${ROUTE:-tc1}\n  app: ./app.mjs\n  cluster:\n    secret: ${SECRET}\n');
    const r = cli(['check-config', f], { SECRET: 'x'.repeat(44) });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${f}: ok (node)\n`);
    const viaEnv = cli(['check-config'], { SECRET: 'x'.repeat(44), COHORT_CONFIG: f });
    assert.equal(viaEnv.status, 0, viaEnv.stderr);
  });
  test('unknown keys and unset variables: exit 2 naming the file and the key', () => {
    const f = join(dir, 'node-bad.yaml');
    writeFileSync(f, 'node:\n  route: tc1\n  app: ./app.mjs\n  loadfactr: 3\n');
    const r = cli(['check-config', f]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${f.replace(/[.]/g, '\\.')}.*\\n?.*node\\.loadfactr: unknown key`, 's'));
    const top = join(dir, 'node-top.yaml');
    writeFileSync(top, 'node:\n  route: tc1\n  app: ./app.mjs\nbalancers: []\n');
    const t = cli(['check-config', top]);
    assert.equal(t.status, 2);
    assert.match(t.stderr, /balancers: unknown key in a node file/);
    const unset = join(dir, 'node-unset.yaml');
    writeFileSync(unset, 'node:\n  route: tc1\n  app: ./app.mjs\n  sessions:\n    store: redis\n    redis: ${REDIS_URL}\n');
    const u = cli(['check-config', unset], {});
    assert.equal(u.status, 2);
    assert.match(u.stderr, /node-unset\.yaml/);
    assert.match(u.stderr, /node\.sessions\.redis: \$\{REDIS_URL\} is not set/);
  });
});

interface Proc {
  child: ChildProcess;
  stderr(): string;
}

function start(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  return { child, stderr: () => err };
}

const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

describe('a real `cohort node`: SIGHUP reloads, SIGUSR2 reopens the log file', () => {
  test('SIGHUP while starting and when ready never exits; loglevel and loadfactor change; logrotate; an unreopenable file only warns', async () => {
    const app = join(dir, 'app.mjs');
    writeFileSync(app, "export default (req, res) => { res.end('hello from ' + process.env.COHORT_ROUTE); };\n");
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, randomBytes(32).toString('base64'));
    const [httpPort, clusterPort, peerPort] = [await freePort(), await freePort(), await freePort()];
    const cfgFile = join(dir, 'node.yaml');
    const nodeCfg = (extra: Record<string, unknown>) => stringify({
      node: { route: 'tc1', app, listen: `127.0.0.1:${httpPort}`, loglevel: 'info', cluster: { listen: '${CLUSTER_LISTEN}', secret: '${CLUSTER_SECRET}', members: [`127.0.0.1:${peerPort}`] }, ...extra },
    });
    writeFileSync(cfgFile, nodeCfg({}));
    const logDir = join(dir, 'logs');
    mkdirSync(logDir);
    const logFile = join(logDir, 'node.log');
    // COHORT_CONFIG instead of --config; the secret from CLUSTER_SECRET_FILE
    const p = start(['node', '--log-file', logFile], { COHORT_CONFIG: cfgFile, CLUSTER_LISTEN: `127.0.0.1:${clusterPort}`, CLUSTER_SECRET_FILE: secretFile });
    // The log file exists once the handlers are installed; the node is then still starting (it waits for its peer).
    await until(() => existsSync(logFile) || !alive(p.child), 10_000, 'the log file');
    process.kill(p.child.pid!, 'SIGHUP');
    await until(() => /ready on (http\S+)/.test(p.stderr()) || !alive(p.child), 20_000, 'the node to be ready');
    assert.ok(alive(p.child), `alive after a SIGHUP during start-up: ${p.stderr()}`);
    const log = () => readFileSync(logFile, 'utf8');
    await until(() => /SIGHUP: reloaded/.test(log()), 5_000, 'the reload line');
    const first = log().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => /SIGHUP: reloaded/.test(String(l.msg)));
    assert.ok(first && ['new', 'starting'].includes(String(first.state)), JSON.stringify(first));

    // Ready: change loglevel and loadfactor, SIGHUP.
    writeFileSync(cfgFile, nodeCfg({ loglevel: 'debug', loadfactor: 7, shutdownTimeout: 3 }));
    process.kill(p.child.pid!, 'SIGHUP');
    await until(() => /loadfactor=7/.test(log()), 5_000, 'the second reload');
    assert.match(log(), /loglevel=debug/);
    assert.match(log(), /"keys":\["node\.shutdownTimeout"\],"msg":"SIGHUP: these changes take effect after a restart/);
    const members = await request(`http://127.0.0.1:${httpPort}/.cohort/members`);
    assert.equal(members.status, 200);
    assert.match(members.body, /"loadfactor":"7"/);
    // Static members: a node tc2 appears on another port; list it and SIGHUP: tc1 dials it at once.
    const [tc2Cluster, tc2Http] = [await freePort(), await freePort()];
    const tc2 = start(['node', '--route', 'tc2', '--app', app, '--listen', `127.0.0.1:${tc2Http}`, '--cluster-listen', `127.0.0.1:${tc2Cluster}`, '--secret-file', secretFile, '--log-level', 'warn']);
    await until(() => /ready on/.test(tc2.stderr()) || !alive(tc2.child), 15_000, 'tc2 ready');
    writeFileSync(cfgFile, nodeCfg({ loglevel: 'debug', loadfactor: 7, shutdownTimeout: 3 }).replace(`127.0.0.1:${peerPort}`, `127.0.0.1:${tc2Cluster}`));
    process.kill(p.child.pid!, 'SIGHUP');
    await until(() => /member tc2 added/.test(log()), 10_000, 'tc1 to find tc2 after the reload');
    assert.match(log(), new RegExp(`members \\+\\[127\\.0\\.0\\.1:${tc2Cluster}\\] -\\[127\\.0\\.0\\.1:${peerPort}\\]`));
    tc2.child.kill('SIGTERM');
    // An invalid file: refused, keeps running.
    writeFileSync(cfgFile, `node:\n  route: tc1\n  app: ${app}\n  bogus: 1\n`);
    process.kill(p.child.pid!, 'SIGHUP');
    await until(() => /reload refused/.test(log()), 5_000, 'the refusal');
    assert.match(log(), /node\.bogus: unknown key/);

    // logrotate: move the file, SIGUSR2, the process writes to a new file at the old path.
    renameSync(logFile, `${logFile}.1`);
    process.kill(p.child.pid!, 'SIGUSR2');
    await until(() => existsSync(logFile) && /log files reopened/.test(log()), 5_000, 'the reopened log file');
    assert.match(readFileSync(`${logFile}.1`, 'utf8'), /reload refused/);
    assert.doesNotMatch(log(), /reload refused/);

    // A log file that cannot be reopened (its directory is gone): a warning on stderr, and it keeps serving.
    rmSync(logDir, { recursive: true, force: true });
    process.kill(p.child.pid!, 'SIGUSR2');
    await until(() => /cannot be opened or written/.test(p.stderr()), 5_000, 'the warning');
    assert.match(p.stderr(), new RegExp(`log file ${logFile.replace(/[.]/g, '\\.')}`));
    const r = await request(`http://127.0.0.1:${httpPort}/hello`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hello from tc1');
    assert.ok(alive(p.child));
    p.child.kill('SIGTERM');
    await until(() => !alive(p.child), 15_000, 'the node to stop');
    assert.equal(p.child.exitCode, 0);
  });
});

test('a --log-file that cannot be opened at start: exit 2 naming the flag and the file', () => {
  const r = cli(['balancer', '--listen', '127.0.0.1:0', '--member', 'a=http://127.0.0.1:9', '--log-file', join(dir, 'no-such-dir', 'b.log')]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--log-file: cannot open .*no-such-dir\/b\.log for appending: ENOENT/);
});

describe('a real `cohort balancer`: COHORT_CONFIG, --log-file and SIGUSR2', () => {
  test('config from COHORT_CONFIG with ${VAR:-default}; the log file is reopened after a move', async () => {
    const cfg = join(dir, 'balancer.yaml');
    writeFileSync(cfg, 'listen: ${LISTEN:-127.0.0.1:0}\naccesslog: false\nbalancers:\n  - name: b\n    members:\n      - { route: a, url: "http://127.0.0.1:${BACKEND_PORT:-9}" }\nmounts:\n  - { path: /, balancer: b }\n');
    const logFile = join(dir, 'balancer.log');
    const p = start(['balancer', '--log-file', logFile], { COHORT_CONFIG: cfg });
    await until(() => /listening on http/.test(p.stderr()) || !alive(p.child), 15_000, 'the balancer to listen');
    assert.ok(alive(p.child), p.stderr());
    await until(() => existsSync(logFile), 5_000, 'the log file');
    renameSync(logFile, `${logFile}.1`);
    process.kill(p.child.pid!, 'SIGUSR2');
    await until(() => existsSync(logFile) && /log files reopened/.test(readFileSync(logFile, 'utf8')), 5_000, 'the reopened log file');
    p.child.kill('SIGTERM');
    await until(() => !alive(p.child), 10_000, 'the balancer to stop');
    assert.equal(p.child.exitCode, 0);
  });
});

describe('a real `cohort balancer`: the access log file is reopened on SIGUSR2 (logrotate)', () => {
  test('lines before the move stay in the moved file, lines after it go to a new file at the path', async () => {
    const { startBackend } = await import('../helpers/backends.js');
    const backend = await startBackend('a');
    const access = join(dir, 'access.log');
    const cfg = join(dir, 'balancer-access.yaml');
    writeFileSync(cfg, `listen: 127.0.0.1:0\naccesslog: { path: ${JSON.stringify(access)}, format: combined }\nbalancers:\n  - name: b\n    members:\n      - { route: a, url: "${backend.url}" }\nmounts:\n  - { path: /, balancer: b }\n`);
    const p = start(['balancer', '--config', cfg], {});
    try {
      await until(() => /listening on http/.test(p.stderr()) || !alive(p.child), 15_000, 'the balancer to listen');
      assert.ok(alive(p.child), p.stderr());
      const url = /listening on (http:\/\/\S+)/.exec(p.stderr())![1]!;
      assert.equal((await request(`${url}/before`)).status, 200);
      await until(() => existsSync(access) && readFileSync(access, 'utf8').includes('GET /before '), 5_000, 'the first line');
      renameSync(access, `${access}.1`);
      process.kill(p.child.pid!, 'SIGUSR2');
      await until(() => existsSync(access), 5_000, 'the reopened access log');
      assert.equal((await request(`${url}/after`)).status, 200);
      await until(() => readFileSync(access, 'utf8').includes('GET /after '), 5_000, 'the line after the move in the new file');
      assert.ok(!readFileSync(`${access}.1`, 'utf8').includes('GET /after '), 'nothing after the move goes to the moved file');
      assert.ok(!readFileSync(access, 'utf8').includes('GET /before '));
    } finally {
      p.child.kill('SIGTERM');
      await until(() => !alive(p.child), 10_000, 'the balancer to stop');
      await backend.close();
    }
  });
});

test('ReloadableStaticMembers: the registry\'s static service proposes the list every refreshMs; set() swaps it and proposes at once', async () => {
  const { ReloadableStaticMembers } = await import('../../src/node/static-members.js');
  const { ManualClock } = await import('../../src/util/clock.js');
  const clock = new ManualClock();
  const seen: string[][] = [];
  const members = new ReloadableStaticMembers(['127.0.0.1:4002']);
  const service = members.registry().create({ type: 'static', members: ['127.0.0.1:4002'], refreshMs: 1000 } as never, { clock, self: () => ({}) as never, keys: undefined });
  await service.start({ candidates: (a) => seen.push(a.map((x) => `${x.host}:${x.port}`)), evidence: () => {}, isKnown: () => false, error: () => {} });
  assert.deepEqual(seen, [['127.0.0.1:4002']]);
  assert.deepEqual(members.set(['127.0.0.1:4003']), { added: ['127.0.0.1:4003'], removed: ['127.0.0.1:4002'] });
  assert.deepEqual(seen.at(-1), ['127.0.0.1:4003']);
  clock.advance(1000);
  assert.deepEqual(seen, [['127.0.0.1:4002'], ['127.0.0.1:4003'], ['127.0.0.1:4003']]);
  service.close();
  clock.advance(5000);
  assert.equal(seen.length, 3);
});
