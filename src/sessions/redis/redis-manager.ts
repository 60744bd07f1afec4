/**
 * Redis/Valkey backend: the same SessionManager API, sessions stored in a
 * Redis hash per session (`<prefix><base>`: `_v` version, `_r` route, `_c`
 * created, `_m` max inactive ms, `a:<name>` JSON per attribute). A commit
 * ships only the changed attributes in one Lua script (atomic; per-attribute
 * last writer wins between concurrent requests); the version is incremented
 * by Redis. Expiry is Redis's PEXPIRE, refreshed on every access: a single
 * clock, so consistent across nodes. For clusters beyond all-to-all.
 */
import { EventEmitter } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import type { JsonValue } from '../../cluster/types.js';
import { systemClock, systemRandom, type Clock, type Random } from '../../util/clock.js';
import { DEFAULT_MAX_ATTRIBUTE_BYTES, DEFAULT_MAX_INACTIVE_MS, DEFAULT_MAX_SESSION_BYTES } from '../config.js';
import { SessionError, SessionErrorCode } from '../errors.js';
import { silentLogger, type CommitOptions, type CommitResult, type LoadOptions, type SessionLogger, type SessionManager } from '../contract.js';
import { Session, type SessionLimits } from '../model/session.js';
import { newSessionBase, parseSessionId, parseSessionIdOrThrow } from '../model/session-id.js';

export interface RedisManagerOptions {
  /** This node's route (id suffix). */
  readonly route: string;
  /** An ioredis client (Redis or Valkey); or `url`/`redis` to create one (closed by close()). */
  readonly client?: Redis;
  readonly url?: string;
  readonly redis?: RedisOptions;
  /** Key prefix; default `cohort:sess:`. */
  readonly prefix?: string;
  readonly maxInactiveMs?: number;
  readonly maxAttributeBytes?: number;
  readonly maxSessionBytes?: number;
  /** Sync commits wait for `WAIT 1` replica acknowledgement (Redis replication). Default false. */
  readonly waitReplicas?: number;
  readonly consistency?: 'async' | 'sync';
  /** Monotonic time, and wall time for the informative creation time. */
  readonly clock?: Clock;
  /** Session ids. */
  readonly random?: Random;
  readonly logger?: SessionLogger;
}

// KEYS[1] key, KEYS[2] previous key ('' if none)
// ARGV: base version (0 = create), max inactive ms, route, created, nset, name1, json1, ..., ndel, name...
const COMMIT_LUA = `
local key = KEYS[1]
if KEYS[2] ~= '' then
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], key) end
end
local b = tonumber(ARGV[1])
if b > 0 and redis.call('EXISTS', key) == 0 then return 0 end
local v = redis.call('HINCRBY', key, '_v', 1)
redis.call('HSET', key, '_r', ARGV[3], '_m', ARGV[2])
redis.call('HSETNX', key, '_c', ARGV[4])
local i = 5
local nset = tonumber(ARGV[i]); i = i + 1
for _ = 1, nset do
  redis.call('HSET', key, 'a:' .. ARGV[i], ARGV[i + 1]); i = i + 2
end
local ndel = tonumber(ARGV[i]); i = i + 1
for _ = 1, ndel do
  redis.call('HDEL', key, 'a:' .. ARGV[i]); i = i + 1
end
redis.call('PEXPIRE', key, ARGV[2])
return v
`;

export class RedisSessionManager extends EventEmitter implements SessionManager {
  readonly route: string;
  readonly defaultMaxInactiveMs: number;
  readonly syncByDefault: boolean;
  private readonly client: Redis;
  private readonly ownsClient: boolean;
  private readonly prefix: string;
  private readonly limits: SessionLimits;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: SessionLogger;
  private state: 'new' | 'running' | 'closed' = 'new';

  constructor(private readonly opts: RedisManagerOptions) {
    super();
    this.route = opts.route;
    this.prefix = opts.prefix ?? 'cohort:sess:';
    this.defaultMaxInactiveMs = opts.maxInactiveMs ?? DEFAULT_MAX_INACTIVE_MS;
    this.syncByDefault = opts.consistency === 'sync';
    this.limits = { maxAttributeBytes: opts.maxAttributeBytes ?? DEFAULT_MAX_ATTRIBUTE_BYTES, maxSessionBytes: opts.maxSessionBytes ?? DEFAULT_MAX_SESSION_BYTES };
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? systemRandom;
    this.log = opts.logger ?? silentLogger;
    this.ownsClient = !opts.client;
    this.client = opts.client ?? (opts.url ? new Redis(opts.url, { lazyConnect: true, ...opts.redis }) : new Redis({ lazyConnect: true, ...opts.redis }));
    this.client.defineCommand('cohortCommit', { numberOfKeys: 2, lua: COMMIT_LUA });
  }

  get ready(): boolean {
    return this.state === 'running';
  }

  private key(base: string): string {
    return this.prefix + base;
  }

  private wrap<T>(what: string, p: Promise<T>): Promise<T> {
    return p.catch((err: unknown) => {
      throw new SessionError(SessionErrorCode.StoreFailed, `redis ${what} failed: ${String((err as Error)?.message ?? err)}`, { cause: err });
    });
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    if (this.client.status === 'wait') await this.wrap('connect', this.client.connect());
    await this.wrap('ping', this.client.ping());
    this.state = 'running';
    this.log.info({ node: this.route, prefix: this.prefix }, 'redis session store ready');
  }

  create(id?: string): Session {
    const base = id === undefined ? newSessionBase(this.random) : parseSessionIdOrThrow(id).base;
    return new Session({ base, route: this.route, version: 0, createdAt: this.clock.wallNow(), maxInactiveMs: this.defaultMaxInactiveMs, now: this.clock.now() }, this.limits);
  }

  async load(id: string, options: LoadOptions = {}): Promise<Session | undefined> {
    this.assertRunning();
    const p = parseSessionId(id);
    if (!p) return undefined;
    const h = await this.wrap('load', this.client.hgetall(this.key(p.base)));
    if (!h._v) return undefined;
    const attrs: Record<string, JsonValue> = {};
    for (const f of Object.keys(h)) if (f.startsWith('a:')) attrs[f.slice(2)] = JSON.parse(h[f]!) as JsonValue;
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

  async commit(session: Session, options: CommitOptions = {}): Promise<CommitResult> {
    this.assertRunning();
    const sync = options.sync ?? this.syncByDefault;
    if (session.invalidated) {
      const keys = [this.key(session.base)];
      if (session.previousBase) keys.push(this.key(session.previousBase));
      await this.wrap('destroy', this.client.del(...keys));
      this.emit('destroyed', { id: session.id, replica: false, reason: 'invalidated' });
      return { version: session.version, changed: true, replicatedTo: [], failed: {} };
    }
    const prev = session.previousBase;
    const wasNew = session.isNew;
    const d = session.takeDelta();
    if (!d) {
      await this.wrap('touch', this.client.pexpire(this.key(session.base), session.maxInactiveMs));
      return { version: session.version, changed: false, replicatedTo: [], failed: {} };
    }
    const args: Array<string | number> = [d.b, session.maxInactiveMs, session.route, session.createdAt];
    const set = Object.entries(d.s ?? {});
    args.push(set.length);
    for (const [k, v] of set) args.push(k, JSON.stringify(v));
    args.push(d.d?.length ?? 0, ...(d.d ?? []));
    const cmd = (this.client as unknown as { cohortCommit(k1: string, k2: string, ...a: Array<string | number>): Promise<number> }).cohortCommit;
    const v = await this.wrap('commit', cmd.call(this.client, this.key(session.base), prev ? this.key(prev) : '', ...args));
    if (v === 0) {
      // Destroyed (or expired) elsewhere meanwhile: do not resurrect half a session.
      session.markInvalid();
      return { version: session.version, changed: false, replicatedTo: [], failed: {} };
    }
    session.version = v;
    if (sync && this.opts.waitReplicas) await this.wrap('wait', this.client.wait(this.opts.waitReplicas, 5000));
    if (wasNew) this.emit('created', { id: session.id, replica: false });
    for (const name of [...Object.keys(d.s ?? {}), ...(d.d ?? [])]) this.emit('attributeChanged', { id: session.id, name, replica: false });
    return { version: v, changed: true, replicatedTo: [], failed: {} };
  }

  regenerateId(session: Session): void {
    session.changeBase(newSessionBase(this.random));
  }

  async invalidate(session: Session, options: CommitOptions = {}): Promise<void> {
    session.markInvalid();
    await this.commit(session, options);
  }

  private async scanKeys(): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.wrap('scan', this.client.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1000));
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
    return out;
  }

  async ids(): Promise<string[]> {
    const keys = await this.scanKeys();
    if (keys.length === 0) return [];
    const pipe = this.client.pipeline();
    for (const k of keys) pipe.hget(k, '_r');
    const routes = (await this.wrap('ids', pipe.exec())) ?? [];
    return keys.map((k, i) => {
      const r = routes[i]?.[1];
      const base = k.slice(this.prefix.length);
      return typeof r === 'string' && r ? `${base}.${r}` : base;
    });
  }

  async clear(): Promise<void> {
    const keys = await this.scanKeys();
    for (let i = 0; i < keys.length; i += 500) await this.wrap('clear', this.client.del(...keys.slice(i, i + 500)));
  }

  private assertRunning(): void {
    if (this.state !== 'running') throw new SessionError(SessionErrorCode.NotRunning, `redis session manager on ${this.route} is ${this.state === 'new' ? 'not started' : 'closed'}`);
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.ownsClient) await this.client.quit().catch(() => this.client.disconnect());
  }

  destroy(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.ownsClient) this.client.disconnect();
  }
}
