/**
 * The `sessions.redis` schema and its errors, credentials from a file or the
 * environment (against a real password-protected server, both clients), the
 * retry decision, and that importing the package loads no Redis client.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseConfig } from '../../src/sessions/config.js';
import { redisConfigSchema, resolveCredentials, topologyOf } from '../../src/sessions/redis/config.js';
import { retryReason } from '../../src/sessions/redis/errors.js';
import { RedisSessionManager } from '../../src/sessions/redis/redis-manager.js';
import { redisManagerFromConfig } from '../../src/sessions/redis/from-config.js';
import { parseNodeConfig, usesClusterChannel } from '../../src/node/config.js';
import { ConfigError } from '../../src/errors.js';
import { cli, freePort, redisTopologyUnavailable, serverArgs, startProcess, type RedisProcess } from './helpers/redis-topology.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const dir = mkdtempSync(join(tmpdir(), 'cohort-redis-config-'));
const procs: RedisProcess[] = [];
after(async () => {
  for (const p of procs) await p.kill();
  rmSync(dir, { recursive: true, force: true });
});

const parse = (input: unknown) => parseConfig(redisConfigSchema, input, 'sessions.redis', 'node.yaml');
const issues = (input: unknown): string[] => {
  try {
    parse(input);
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return [...e.issues];
  }
  assert.fail('expected a ConfigError');
};

test('sessions.redis: a URL, cluster seed nodes, or sentinels + master name', () => {
  assert.deepEqual(topologyOf(parse('redis://10.0.0.5:6379')), { kind: 'standalone', url: 'redis://10.0.0.5:6379' });
  assert.equal(parse('redis://h:1').client, 'node-redis');
  assert.deepEqual(topologyOf(parse({ nodes: ['10.0.0.1:7000', 'redis://10.0.0.2:7000'] })), { kind: 'cluster', nodes: ['redis://10.0.0.1:7000', 'redis://10.0.0.2:7000'] });
  assert.deepEqual(topologyOf(parse({ client: 'ioredis', sentinels: ['10.0.0.1:26379', '[::1]:26380'], masterName: 'mymaster' })), {
    kind: 'sentinel', masterName: 'mymaster', sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: '::1', port: 26380 }],
  });
  assert.deepEqual(topologyOf(parse({})), { kind: 'standalone', url: 'redis://127.0.0.1:6379' });
  const d = parse({ url: 'rediss://r:6380' });
  assert.deepEqual([d.prefix, d.waitReplicas, d.waitTimeoutMs, d.commandTimeoutMs, d.retryWindowMs], ['cohort:sess:', 0, 1000, 5000, 10000]);
});

test('sessions.redis: clear errors that name the file, the key and what was expected', () => {
  assert.deepEqual(issues('http://x'), ['sessions.redis.url: expected redis://host:port or rediss://host:port']);
  assert.deepEqual(issues({ url: 'redis://a:1', nodes: ['b:2'] }), ['sessions.redis: expected one of url, nodes (Redis Cluster) or sentinels (Sentinel), got url and nodes']);
  assert.deepEqual(issues({ sentinels: ['a:1'] }), ['sessions.redis.masterName: expected the master name the sentinels monitor (sentinel monitor <name> ...)']);
  assert.deepEqual(issues({ masterName: 'm' }), ['sessions.redis.sentinels: masterName needs sentinels: a list of host:port']);
  assert.deepEqual(issues({ password: 'a', passwordFile: '/p' }), ['sessions.redis.passwordFile: expected password or passwordFile, not both']);
  assert.deepEqual(issues({ nodes: ['nohost'] }), ['sessions.redis.nodes.0: expected host:port or redis://host:port']);
  assert.deepEqual(issues({ client: 'jedis' }), ['sessions.redis.client: expected node-redis or ioredis']);
  assert.deepEqual(issues({ nodes: ['a:1'], db: 2 }), ['sessions.redis.db: Redis Cluster has only database 0']);
  assert.deepEqual(issues({ waitReplicas: 1, waitTimeoutMs: 5000 }), ['sessions.redis.waitTimeoutMs: must be below commandTimeoutMs (5000 ms), or WAIT would time out as a command']);
  assert.match(issues({ urll: 'redis://a:1' })[0]!, /^sessions\.redis: Unrecognized key: "urll"/);
  try {
    parse({ client: 'x' });
  } catch (e) {
    assert.match((e as Error).message, /^node\.yaml: invalid configuration/);
  }
});

test('credentials: config, then passwordFile (one trailing newline trimmed), then COHORT_REDIS_PASSWORD / COHORT_REDIS_USERNAME', () => {
  const file = join(dir, 'pw');
  writeFileSync(file, 's3cret\n');
  assert.deepEqual(resolveCredentials({ password: 'p', username: 'u' }, {}), { username: 'u', password: 'p' });
  assert.deepEqual(resolveCredentials({ passwordFile: file }, { COHORT_REDIS_PASSWORD: 'env' }), { password: 's3cret' });
  assert.deepEqual(resolveCredentials({}, { COHORT_REDIS_PASSWORD: 'env', COHORT_REDIS_USERNAME: 'app' }), { username: 'app', password: 'env' });
  assert.deepEqual(resolveCredentials({}, {}), {});
  assert.throws(() => resolveCredentials({ passwordFile: join(dir, 'missing') }, {}), (e: { code?: string; message: string }) => e.code === 'COHORT_REDIS_PASSWORD_FILE' && /cannot read .*missing/.test(e.message));
  writeFileSync(join(dir, 'empty'), '\n');
  assert.throws(() => resolveCredentials({ passwordFile: join(dir, 'empty') }, {}), (e: { code?: string }) => e.code === 'COHORT_REDIS_PASSWORD_FILE');
});

test('start() with an unreadable passwordFile: COHORT_REDIS_PASSWORD_FILE, every time (the manager is not left half-started)', async () => {
  const m = new RedisSessionManager({ route: 'x', url: 'redis://127.0.0.1:1', passwordFile: join(dir, 'nope') });
  for (let i = 0; i < 2; i++) await assert.rejects(m.start(), (e: { code?: string }) => e.code === 'COHORT_REDIS_PASSWORD_FILE');
  assert.equal(m.ready, false);
  await m.close();
});

test('retry decision: only what a retry can fix', () => {
  const table: Array<[unknown, string | undefined]> = [
    [new Error("READONLY You can't write against a read only replica."), 'readonly'],
    [new Error('LOADING Redis is loading the dataset in memory'), 'loading'],
    [new Error('CLUSTERDOWN The cluster is down'), 'cluster-down'],
    [new Error('TRYAGAIN Multiple keys request during rehashing of slot'), 'try-again'],
    [new Error('MOVED 3999 127.0.0.1:6381'), 'redirect'],
    [new Error('ASK 3999 127.0.0.1:6381'), 'redirect'],
    [new Error('MASTERDOWN Link with MASTER is down'), 'master-down'],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'connection'],
    [new Error('Connection is closed.'), 'connection'],
    [new Error('ERR Error running script (call to f_x): @user_script:1: oops'), undefined],
    [new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), undefined],
    [new Error('WRONGPASS invalid username-password pair or user is disabled.'), undefined],
    [new Error('NOAUTH Authentication required.'), undefined],
  ];
  for (const [err, want] of table) assert.equal(retryReason(err), want, String((err as Error).message));
});

test('the Redis backend takes the replicated modes\' session settings: max inactive, size limits, consistency; sessions.redis overrides', () => {
  const m = redisManagerFromConfig({ route: 'n1', redis: 'redis://127.0.0.1:1', replication: { maxInactiveMs: 120_000, maxAttributeBytes: 64, consistency: 'sync' } });
  assert.equal(m.defaultMaxInactiveMs, 120_000);
  assert.equal(m.syncByDefault, true);
  const s = m.create();
  assert.equal(s.maxInactiveMs, 120_000);
  assert.throws(() => (s.attributes.big = 'x'.repeat(100)), (e: { code?: string }) => e.code === 'COHORT_SESSION_TOO_LARGE');
  const o = redisManagerFromConfig({ route: 'n1', redis: { url: 'redis://127.0.0.1:1', maxInactiveMs: 5_000, consistency: 'async' }, replication: { maxInactiveMs: 120_000, consistency: 'sync' } });
  assert.deepEqual([o.defaultMaxInactiveMs, o.syncByDefault], [5_000, false]);
  assert.throws(() => redisManagerFromConfig({ route: 'n1', redis: { sentinels: ['a:1'] }, file: 'node.yaml' }), /node\.yaml: invalid configuration[\s\S]*sessions\.redis\.masterName/);
});

test('a Redis-mode node starts the cluster channel only when its cluster section configures one', () => {
  const base = { route: 'n1', app: 'app.mjs', sessions: { store: 'redis', redis: 'redis://h:1' } };
  assert.equal(usesClusterChannel(parseNodeConfig(base)), false);
  assert.equal(usesClusterChannel(parseNodeConfig({ ...base, cluster: { members: ['10.0.0.9:4000'] } })), true);
  assert.equal(usesClusterChannel(parseNodeConfig({ ...base, cluster: { multicast: true } })), true);
  assert.equal(usesClusterChannel(parseNodeConfig({ ...base, cluster: { secretFile: '/run/secret' } })), true);
  assert.equal(usesClusterChannel(parseNodeConfig({ ...base, cluster: { listen: '127.0.0.1:4100' } })), false);
  assert.equal(usesClusterChannel(parseNodeConfig({ route: 'n1', app: 'app.mjs' })), true, 'replicated sessions always need it');
});

test('importing the package loads no Redis client; the client loads on start()', async () => {
  const hooks = pathToFileURL(join(root, 'test/sessions/helpers/no-redis-clients-hooks.mjs')).href;
  const index = pathToFileURL(join(root, 'dist/src/index.js')).href;
  const script = (body: string) => `import { register } from 'node:module'; register(${JSON.stringify(hooks)}); ${body}`;
  const run = (body: string) => new Promise<{ code: number | null; out: string }>((res) => {
    execFile(process.execPath, ['--input-type=module', '-e', script(body)], { cwd: root, timeout: 30_000 }, (err, stdout, stderr) => res({ code: err ? (err as { code?: number }).code ?? 1 : 0, out: stdout + stderr }));
  });
  const ok = await run(`const m = await import(${JSON.stringify(index)}); new m.RedisSessionManager({ route: 'x', client: 'ioredis' }); new m.RedisSessionManager({ route: 'y' }); console.log('imported');`);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /imported/);
  // The hooks do catch a client import: start() with ioredis fails under them.
  const loads = await run(`const m = await import(${JSON.stringify(index)}); await new m.RedisSessionManager({ route: 'x', client: 'ioredis' }).start();`);
  assert.notEqual(loads.code, 0);
  assert.match(loads.out, /COHORT_REDIS_CLIENT_MISSING|client package loaded: ioredis/);
});

describe('a password-protected Redis', { skip: redisTopologyUnavailable() }, () => {
  for (const client of ['node-redis', 'ioredis'] as const) {
    test(`${client}: passwordFile works; a wrong password is a clear, unretried error`, async () => {
      const port = await freePort();
      procs.push(await startProcess('redis-server', port, serverArgs(port, dir, ['--dbfilename', `${client}.rdb`])));
      await cli(port, 'CONFIG', 'SET', 'requirepass', 'pa55');
      const file = join(dir, `pw-${client}`);
      writeFileSync(file, 'pa55\n');
      const m = new RedisSessionManager({ route: 'p1', client, url: `redis://127.0.0.1:${port}`, passwordFile: file });
      await m.start();
      const s = m.create();
      s.attributes.a = 1;
      await m.commit(s);
      assert.equal((await m.load(s.id))?.rawAttributes.a, 1);
      await m.close();
      const bad = new RedisSessionManager({ route: 'p1', client, url: `redis://127.0.0.1:${port}`, password: 'wrong', commandTimeoutMs: 1000, retryWindowMs: 1000 });
      await assert.rejects(bad.start(), (e: unknown) => (e as { code?: string }).code === 'COHORT_SESSION_STORE_FAILED' && (e as { cause?: { code?: string } }).cause?.code === 'COHORT_REDIS_AUTH_FAILED' && /WRONGPASS/.test((e as Error).message));
      assert.equal(bad.getStats().failures.COHORT_REDIS_AUTH_FAILED, 1);
      bad.destroy();
    });
  }
});
