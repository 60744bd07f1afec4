/**
 * Redis/Valkey backend: the same SessionManager API, sessions stored in a
 * Redis hash per session (`<prefix>{<base>}`, see scripts.ts). A commit
 * ships only the changed attributes in one Lua script on one key (atomic;
 * per-attribute last writer wins between concurrent requests); the version
 * is incremented by Redis. Expiry is Redis's PEXPIRE, refreshed on every
 * access: one clock, so consistent across nodes.
 *
 * Topologies (config.ts): standalone, Redis Cluster (every key of a commit
 * in one slot; listing and counting SCAN every master) and Sentinel (the
 * client follows a failover). Clients (port.ts): node-redis or ioredis,
 * imported only when used.
 *
 * Invariants:
 * - a failed command is retried only when retrying can help (errors.ts:
 *   READONLY, LOADING, CLUSTERDOWN, TRYAGAIN, lost connection) and only
 *   within `retryWindowMs`; every retry and every failure is counted
 *   (getStats(), the node's metrics);
 * - with `waitReplicas` n > 0 a commit resolves only after WAIT saw n
 *   replicas acknowledge it on the connection that wrote it; fewer is an
 *   error (COHORT_REDIS_NOT_REPLICATED), never a silent success;
 * - every failure reaches the caller as COHORT_SESSION_STORE_FAILED with the
 *   Redis-specific error (a stable COHORT_REDIS_* code) as its cause.
 */
import { EventEmitter } from 'node:events';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import type { JsonValue } from '../../cluster/types.js';
import { systemClock, systemRandom, type Clock, type Random } from '../../util/clock.js';
import { backoffDelay, type BackoffPolicy } from '../../util/backoff.js';
import { DEFAULT_MAX_ATTRIBUTE_BYTES, DEFAULT_MAX_INACTIVE_MS, DEFAULT_MAX_SESSION_BYTES, parseConfig } from '../config.js';
import { SessionError, SessionErrorCode } from '../errors.js';
import { silentLogger, type CommitOptions, type CommitResult, type LoadOptions, type SessionLogger, type SessionManager } from '../contract.js';
import { Session, type SessionLimits } from '../model/session.js';
import { newSessionBase, parseSessionId, parseSessionIdOrThrow } from '../model/session-id.js';
import { redisConfigObjectSchema, resolveCredentials, topologyOf, type RedisConfig, type RedisConfigInput } from './config.js';
import { redisPortFactories } from './connect.js';
import { describeError, isAuthError, RedisError, RedisErrorCode, retryReason, type RetryReason } from './errors.js';
import type { RedisCommand, RedisPort, RedisPortFactory } from './port.js';
import { ADOPT_LEGACY_LUA, baseOfKey, COMMIT_LUA, COMMIT_SHA, commitArgv, legacyKey, scanPattern, sessionKey, type CommitArgs } from './scripts.js';

export interface RedisManagerOptions extends Omit<RedisConfigInput, 'maxInactiveMs' | 'consistency' | 'client'> {
  /** This node's route (id suffix). */
  readonly route: string;
  /** An application's own ioredis `Redis` or `Cluster` (not closed by close()); otherwise the manager connects from the config keys. */
  readonly client?: RedisClientArg;
  /** Extra ioredis options (with `client: 'ioredis'`, no `client` instance). */
  readonly redis?: RedisOptions;
  readonly maxInactiveMs?: number;
  readonly maxAttributeBytes?: number;
  readonly maxSessionBytes?: number;
  readonly consistency?: 'async' | 'sync';
  readonly clock?: Clock;
  /** Session ids. */
  readonly random?: Random;
  readonly logger?: SessionLogger;
  /** Tests: replaces the client adapters. */
  readonly portFactory?: RedisPortFactory;
}

/** `client`: a client name from the config, or an application's ioredis instance. */
export type RedisClientArg = RedisConfig['client'] | Redis | Cluster;

/** Counters read by getStats() and the node's /metrics. */
export interface RedisStats {
  readonly topology: RedisPort['topology'] | 'unknown';
  /** Operations (load, commit, touch, destroy, list) that succeeded, possibly after retries. */
  readonly operations: number;
  /** Retries by reason. */
  readonly retries: Readonly<Record<RetryReason, number>>;
  /** Operations that failed, by COHORT_REDIS_* code. */
  readonly failures: Readonly<Record<string, number>>;
  /** Errors the client reported in the background (lost connections, failed reconnects). */
  readonly clientErrors: number;
}

/** Retries of a failed command: 50 ms doubling to 1 s, within retryWindowMs. */
const RETRY_BACKOFF: BackoffPolicy = { initialMs: 50, maxMs: 1_000 };
/** Concurrent per-key commands when listing or clearing. */
const LIST_CHUNK = 500;
/** ms between two logs of the client's background errors. */
const CLIENT_ERROR_LOG_MS = 5_000;

export class RedisSessionManager extends EventEmitter implements SessionManager {
  readonly route: string;
  readonly defaultMaxInactiveMs: number;
  readonly syncByDefault: boolean;
  private readonly config: RedisConfig;
  private readonly prefix: string;
  private readonly limits: SessionLimits;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: SessionLogger;
  private port: RedisPort | undefined;
  private state: 'new' | 'starting' | 'running' | 'closed' = 'new';
  private operations = 0;
  private readonly retries: Record<RetryReason, number> = { readonly: 0, loading: 0, 'cluster-down': 0, 'try-again': 0, redirect: 0, 'master-down': 0, connection: 0 };
  private readonly failures: Record<string, number> = {};
  private clientErrors = 0;
  private lastClientErrorLog = -Infinity;
  /** The client's last background error: why a connect timed out (e.g. WRONGPASS during the handshake). */
  private lastClientError: unknown;

  constructor(private readonly opts: RedisManagerOptions) {
    super();
    this.route = opts.route;
    const { route: _r, client, redis: _x, maxInactiveMs, maxAttributeBytes, maxSessionBytes, consistency, clock, random, logger, portFactory: _p, ...redisKeys } = opts;
    this.config = parseConfig(redisConfigObjectSchema, { ...redisKeys, ...(typeof client === 'string' ? { client } : {}) }, 'redis');
    this.prefix = this.config.prefix;
    this.defaultMaxInactiveMs = maxInactiveMs ?? DEFAULT_MAX_INACTIVE_MS;
    this.syncByDefault = consistency === 'sync';
    this.limits = { maxAttributeBytes: maxAttributeBytes ?? DEFAULT_MAX_ATTRIBUTE_BYTES, maxSessionBytes: maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES };
    this.clock = clock ?? systemClock;
    this.random = random ?? systemRandom;
    this.log = logger ?? silentLogger;
  }

  get ready(): boolean {
    return this.state === 'running';
  }

  getStats(): RedisStats {
    return { topology: this.port?.topology ?? 'unknown', operations: this.operations, retries: { ...this.retries }, failures: { ...this.failures }, clientErrors: this.clientErrors };
  }

  private key(base: string): string {
    return sessionKey(this.prefix, base);
  }

  private readonly onClientError = (err: unknown): void => {
    this.clientErrors++;
    this.lastClientError = err;
    const now = this.clock.now();
    if (now - this.lastClientErrorLog < CLIENT_ERROR_LOG_MS) return;
    this.lastClientErrorLog = now;
    this.log.warn({ node: this.route, err: describeError(err) }, 'redis client error (reconnecting)');
  };

  /**
   * Connects (with the configured client, or the application's ioredis
   * instance) and checks Redis with PING. Rejects with
   * COHORT_REDIS_CLIENT_MISSING, COHORT_REDIS_PASSWORD_FILE, or
   * COHORT_SESSION_STORE_FAILED (cause COHORT_REDIS_UNAVAILABLE).
   */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    const c = this.config;
    const client = this.opts.client;
    let port: RedisPort;
    try {
      port = await this.openPort();
    } catch (err) {
      if (this.state === 'starting') this.state = 'new';
      throw err; // COHORT_REDIS_CLIENT_MISSING, COHORT_REDIS_PASSWORD_FILE
    }
    this.port = port;
    try {
      await this.withTimeout(port.connect(), c.commandTimeoutMs, 'connect');
      await this.run('ping', () => port.send('', ['PING']));
    } catch (err) {
      port.destroy();
      this.port = undefined;
      if (this.state === 'starting') this.state = 'new';
      if (err instanceof SessionError) throw err;
      // A refused AUTH shows as a connect that never finishes: name the real cause.
      const cause = this.lastClientError !== undefined && isAuthError(this.lastClientError) ? this.lastClientError : err;
      throw this.failure('connect', cause);
    }
    if ((this.state as string) !== 'starting') return; // destroyed meanwhile
    this.state = 'running';
    this.log.info({ node: this.route, prefix: this.prefix, topology: port.topology, client: typeof client === 'object' ? 'ioredis (application\'s)' : c.client }, 'redis session store ready');
  }

  /** The application's ioredis instance wrapped, or a client built by the configured adapter. */
  private async openPort(): Promise<RedisPort> {
    const client = this.opts.client;
    if (client !== undefined && typeof client !== 'string') {
      const { ioredisPortFor } = await import('./client-ioredis.js');
      return ioredisPortFor(client, this.onClientError, false);
    }
    const c = this.config;
    const factory = this.opts.portFactory ?? redisPortFactories[c.client];
    return factory({
      topology: topologyOf(c),
      credentials: resolveCredentials(c),
      sentinelPassword: c.sentinelPassword,
      tls: c.tls,
      db: c.db,
      commandTimeoutMs: c.commandTimeoutMs,
      onClientError: this.onClientError,
      ...(this.opts.redis ? { ioredisOptions: this.opts.redis } : {}),
    });
  }

  private withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = this.clock.setTimeout(() => reject(new RedisError(RedisErrorCode.Unavailable, `redis ${what}: no connection within ${ms} ms`)), ms);
      p.then((v) => { this.clock.clearTimeout(t); resolve(v); }, (e: unknown) => { this.clock.clearTimeout(t); reject(e); });
    });
  }

  /** The error a failed operation rejects with: STORE_FAILED, cause a RedisError with its specific code. */
  private failure(what: string, err: unknown): SessionError {
    const redisErr = err instanceof RedisError
      ? err
      : isAuthError(err)
        ? new RedisError(RedisErrorCode.AuthFailed, `redis ${what}: Redis refused the credentials (${describeError(err)}): check sessions.redis username, password or passwordFile`, { cause: err })
      : retryReason(err) === 'connection'
        ? new RedisError(RedisErrorCode.Unavailable, `redis ${what}: no connection to Redis (${describeError(err)})`, { cause: err })
        : new RedisError(RedisErrorCode.CommandFailed, `redis ${what}: ${describeError(err)}`, { cause: err });
    this.failures[redisErr.code] = (this.failures[redisErr.code] ?? 0) + 1;
    this.log.warn({ node: this.route, op: what, code: redisErr.code, err: redisErr.message }, 'redis operation failed');
    return new SessionError(SessionErrorCode.StoreFailed, `${redisErr.code}: ${redisErr.message}`, { cause: redisErr });
  }

  /** Runs `op`, retrying while {@link retryReason} says it may help, within retryWindowMs. */
  private async run<T>(what: string, op: () => Promise<T>): Promise<T> {
    const started = this.clock.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await op();
        this.operations++;
        return r;
      } catch (err) {
        const reason = retryReason(err);
        const delay = backoffDelay(RETRY_BACKOFF, attempt);
        const open = this.state === 'running' || this.state === 'starting';
        if (reason === undefined || !open || this.clock.now() - started + delay > this.config.retryWindowMs) throw this.failure(what, err);
        this.retries[reason]++;
        this.log.debug({ node: this.route, op: what, reason, attempt }, 'redis operation retried');
        await new Promise<void>((r) => this.clock.setTimeout(r, delay));
      }
    }
  }

  create(id?: string): Session {
    const base = id === undefined ? newSessionBase(this.random) : parseSessionIdOrThrow(id).base;
    return new Session({ base, route: this.route, version: 0, createdAt: this.clock.wallNow(), maxInactiveMs: this.defaultMaxInactiveMs, now: this.clock.now() }, this.limits);
  }

  async load(id: string, options: LoadOptions = {}): Promise<Session | undefined> {
    const port = this.running();
    const p = parseSessionId(id);
    if (!p) return undefined;
    const key = this.key(p.base);
    let h = hashReply(await this.run('load', () => port.send(key, ['HGETALL', key])));
    if (!h._v && this.config.legacyKeys && port.topology !== 'cluster') h = await this.adoptLegacy(port, p.base, key);
    if (!h._v) return undefined;
    const attrs: Record<string, JsonValue> = {};
    for (const f of Object.keys(h)) {
      if (!f.startsWith('a:')) continue;
      try {
        attrs[f.slice(2)] = JSON.parse(h[f]!) as JsonValue;
      } catch (err) {
        // Written by something else than Cohort: a clear error, not a SyntaxError from deep inside.
        throw this.failure('load', new RedisError(RedisErrorCode.CommandFailed, `session ${p.base.slice(0, 6)}…: attribute ${JSON.stringify(f.slice(2))} in ${key} is not JSON`, { cause: err }));
      }
    }
    const s = new Session(
      { base: p.base, route: h._r ?? p.route, version: Number(h._v), createdAt: Number(h._c ?? 0), maxInactiveMs: Number(h._m ?? this.defaultMaxInactiveMs), attrs, now: this.clock.now() },
      this.limits,
    );
    if (options.takeOver !== false && s.route !== this.route) {
      const previousId = s.id;
      s.setRoute(this.route);
      this.emit('takenOver', { id: s.id, previousId, replica: false });
    }
    return s;
  }

  /** The stored copy, read again from Redis (a new object: the request's changes stay behind in the old one). */
  async reload(session: Session): Promise<Session | undefined> {
    if (session.isNew || session.invalidated) return undefined;
    return this.load(session.id);
  }

  /**
   * A session stored by a version before hash-tagged keys (`<prefix><base>`):
   * renamed to its new key in one script (standalone and Sentinel only: on a
   * Redis Cluster the two keys are in different slots, and that version
   * could not run there), then read.
   */
  private async adoptLegacy(port: RedisPort, base: string, key: string): Promise<Record<string, string>> {
    const legacy = legacyKey(this.prefix, base);
    const moved = await this.run('load', () => port.send(key, ['EVAL', ADOPT_LEGACY_LUA, '2', legacy, key]));
    if (Number(moved) !== 1) return {};
    this.log.info({ node: this.route, session: `${base.slice(0, 6)}…` }, 'redis session moved from its pre-hash-tag key');
    return hashReply(await this.run('load', () => port.send(key, ['HGETALL', key])));
  }

  async commit(session: Session, _options: CommitOptions = {}): Promise<CommitResult> {
    const port = this.running();
    const key = this.key(session.base);
    if (session.invalidated) {
      const prev = session.previousBase;
      await this.run('destroy', () => port.send(key, ['DEL', key]));
      if (prev) await this.deleteKey(port, this.key(prev));
      this.emit('destroyed', { id: session.id, replica: false, reason: 'invalidated' });
      return { version: session.version, changed: true, replicatedTo: [], failed: {} };
    }
    const prev = session.previousBase;
    const wasNew = session.isNew;
    const d = session.takeDelta();
    if (!d) {
      await this.run('touch', () => port.send(key, ['PEXPIRE', key, String(session.maxInactiveMs)]));
      return { version: session.version, changed: false, replicatedTo: [], failed: {} };
    }
    // A new base (login) is another slot: write the whole session under the new key, then drop the old key.
    const args: CommitArgs = prev
      ? { mode: 'full', baseVersion: d.b, version: d.v, maxInactiveMs: session.maxInactiveMs, route: session.route, createdAt: session.createdAt, set: session.rawAttributes, del: [] }
      : { mode: 'delta', baseVersion: d.b, version: d.v, maxInactiveMs: session.maxInactiveMs, route: session.route, createdAt: session.createdAt, set: d.s ?? {}, del: d.d ?? [] };
    const v = await this.runCommit(port, key, commitArgv(args));
    if (prev) await this.deleteKey(port, this.key(prev));
    if (v === 0) {
      // Destroyed (or expired) elsewhere meanwhile: do not resurrect half a session.
      session.markInvalid();
      return { version: session.version, changed: false, replicatedTo: [], failed: {} };
    }
    session.version = v;
    if (wasNew) this.emit('created', { id: session.id, replica: false });
    for (const name of [...Object.keys(d.s ?? {}), ...(d.d ?? [])]) this.emit('attributeChanged', { id: session.id, name, replica: false });
    return { version: v, changed: true, replicatedTo: [], failed: {} };
  }

  /** The commit script (EVALSHA, EVAL when the server does not have it yet), then WAIT on the same connection when configured. */
  private async runCommit(port: RedisPort, key: string, argv: string[]): Promise<number> {
    const { waitReplicas, waitTimeoutMs } = this.config;
    const script = (cmd: 'EVALSHA' | 'EVAL'): RedisCommand => [cmd, cmd === 'EVALSHA' ? COMMIT_SHA : COMMIT_LUA, '1', key, ...argv];
    const wait: RedisCommand = ['WAIT', String(waitReplicas), String(waitTimeoutMs)];
    const once = async (cmd: 'EVALSHA' | 'EVAL'): Promise<unknown[]> =>
      waitReplicas > 0 ? port.sendOnOneConnection(key, [script(cmd), wait]) : [await port.send(key, script(cmd))];
    const replies = await this.run('commit', async () => {
      try {
        return await once('EVALSHA');
      } catch (err) {
        if (/^NOSCRIPT\b/.test(String((err as Error)?.message))) return once('EVAL');
        throw err;
      }
    });
    const v = Number(replies[0]);
    if (waitReplicas > 0) {
      const acked = Number(replies[1]);
      if (!(acked >= waitReplicas)) {
        throw this.failure('commit', new RedisError(RedisErrorCode.NotReplicated, `commit of session ${key.slice(this.prefix.length + 1, this.prefix.length + 7)}… reached the master but ${acked} of ${waitReplicas} replicas acknowledged it within ${waitTimeoutMs} ms`));
      }
    }
    return v;
  }

  private async deleteKey(port: RedisPort, key: string): Promise<void> {
    await this.run('destroy', () => port.send(key, ['DEL', key]));
  }

  regenerateId(session: Session): void {
    session.changeBase(newSessionBase(this.random));
  }

  async invalidate(session: Session, options: CommitOptions = {}): Promise<void> {
    session.markInvalid();
    await this.commit(session, options);
  }

  /** Every session key, SCANning every master (Redis Cluster: each holds some slots). */
  private async scanKeys(port: RedisPort): Promise<string[]> {
    const out: string[] = [];
    const match = scanPattern(this.prefix);
    const masters = await this.run('list', () => port.masters());
    for (const send of masters) {
      let cursor = '0';
      do {
        const reply = await this.run('list', () => send(['SCAN', cursor, 'MATCH', match, 'COUNT', '1000'])) as [unknown, unknown[]];
        cursor = String(reply[0]);
        for (const k of reply[1]) out.push(String(k));
      } while (cursor !== '0');
    }
    return out;
  }

  /** All session ids in Redis (all nodes' sessions), `<base>.<route>`. */
  async ids(): Promise<string[]> {
    const port = this.running();
    const keys = await this.scanKeys(port);
    const out: string[] = [];
    for (let i = 0; i < keys.length; i += LIST_CHUNK) {
      const chunk = keys.slice(i, i + LIST_CHUNK);
      const routes = await Promise.all(chunk.map((k) => this.run('list', () => port.send(k, ['HGET', k, '_r']))));
      chunk.forEach((k, j) => {
        const base = baseOfKey(this.prefix, k);
        const r = routes[j];
        if (base !== undefined) out.push(r ? `${base}.${String(r)}` : base);
      });
    }
    return out;
  }

  /** Number of sessions in Redis (every master). */
  async count(): Promise<number> {
    return (await this.scanKeys(this.running())).length;
  }

  async clear(): Promise<void> {
    const port = this.running();
    const keys = await this.scanKeys(port);
    for (let i = 0; i < keys.length; i += LIST_CHUNK) {
      await Promise.all(keys.slice(i, i + LIST_CHUNK).map((k) => this.deleteKey(port, k)));
    }
  }

  private running(): RedisPort {
    if (this.state !== 'running' || !this.port) throw new SessionError(SessionErrorCode.NotRunning, `redis session manager on ${this.route} is ${this.state === 'closed' ? 'closed' : 'not started'}`);
    return this.port;
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.port?.close();
  }

  destroy(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.port?.destroy();
  }
}

/** HGETALL's reply as an object, whichever shape the client returns (flat array, object, Map). */
function hashReply(reply: unknown): Record<string, string> {
  if (Array.isArray(reply)) {
    const out: Record<string, string> = {};
    for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = String(reply[i + 1]);
    return out;
  }
  if (reply instanceof Map) return Object.fromEntries([...reply].map(([k, v]) => [String(k), String(v)]));
  if (reply && typeof reply === 'object') return reply as Record<string, string>;
  return {};
}
