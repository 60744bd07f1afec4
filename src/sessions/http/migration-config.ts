/**
 * `sessions.migrate` for `cohort node` (docs/migration.md, "Under `cohort node`"): the previous session
 * layer's cookie, its secret(s), and where its sessions are — a Redis that connect-redis wrote (a URL; the
 * value under `<prefix><sid>` is the session's JSON), or a module exporting an express-session Store (any
 * object with `get(sid, cb)`, e.g. an adapter to where Tomcat kept its sessions). Validated by zod with the
 * node config; {@link openMigration} turns the validated value into the middleware's `migrate` option.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ConfigError } from '../../errors.js';
import { redisClientNames, resolveCredentials, topologyOf } from '../redis/config.js';
import { redisPortFactories } from '../redis/connect.js';
import type { RedisPort } from '../redis/port.js';
import type { SessionLogger } from '../contract.js';
import { systemClock, type Clock, type TimerHandle } from '../../util/clock.js';
import { DEFAULT_MAX_OLD_ID_LENGTH, type MigrationCounts, type MigrationOptions, type OldSessionStore } from './migration.js';

/** connect-redis's default key prefix. */
export const CONNECT_REDIS_PREFIX = 'sess:';

const oldRedisSchema = z.preprocess(
  (v) => (typeof v === 'string' ? { url: v } : v),
  z.strictObject({
    url: z.string().regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://host:port'),
    /** connect-redis's `prefix` (default `sess:`). */
    prefix: z.string().default(CONNECT_REDIS_PREFIX),
    client: z.enum(redisClientNames, { error: 'expected node-redis or ioredis' }).default('node-redis'),
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    passwordFile: z.string().min(1).optional(),
    db: z.number().int().min(0).default(0),
    commandTimeoutMs: z.number().int().positive().default(2_000),
  }),
);

export const migrateConfigSchema = z
  .strictObject({
    /** The previous session cookie's name: `connect.sid` (express-session), `JSESSIONID` (Tomcat). */
    cookie: z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected a cookie name'),
    /** express-session's secret, or its list (every one is tried); omit for unsigned cookies (Tomcat). */
    secret: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
    /** A file holding the secret(s), one per line (instead of `secret`). */
    secretFile: z.string().min(1).optional(),
    /** Also read the old id from this `;name=` path parameter (Tomcat's URL rewriting: `jsessionid`). */
    pathParameter: z.string().min(1).optional(),
    clearOldCookie: z.boolean().default(true),
    maxIdLength: z.number().int().positive().default(DEFAULT_MAX_OLD_ID_LENGTH),
    /** Where the old sessions are: `{ redis: <url or object> }` (connect-redis) or `{ module: <path> }` (a Store). */
    store: z.strictObject({ redis: oldRedisSchema.optional(), module: z.string().min(1).optional() }),
  })
  .superRefine((m, ctx) => {
    if (m.secret !== undefined && m.secretFile !== undefined) ctx.addIssue({ code: 'custom', path: ['secretFile'], message: 'expected secret or secretFile, not both' });
    const given = [m.store.redis !== undefined && 'redis', m.store.module !== undefined && 'module'].filter(Boolean);
    if (given.length !== 1) ctx.addIssue({ code: 'custom', path: ['store'], message: `expected exactly one of redis (a connect-redis URL) or module (a file exporting an express-session Store)${given.length ? `, got ${given.join(' and ')}` : ''}` });
  });

export type MigrateConfig = z.output<typeof migrateConfigSchema>;

/** The middleware's `migrate` option from the config, its store opened; `close` releases the store's connection. */
export interface OpenedMigration {
  readonly options: MigrationOptions & { readonly counts: MigrationCounts; readonly onError: (err: unknown) => void };
  close(): Promise<void>;
}

/** Reads `secretFile` (one secret per line, blank lines ignored); ConfigError naming the key when unreadable or empty. */
export function readSecrets(c: Pick<MigrateConfig, 'secret' | 'secretFile'>, file?: string): readonly string[] | undefined {
  if (c.secretFile === undefined) return c.secret === undefined ? undefined : typeof c.secret === 'string' ? [c.secret] : c.secret;
  let text: string;
  try {
    text = readFileSync(c.secretFile, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`sessions.migrate.secretFile: cannot read ${c.secretFile}: ${(err as Error).message}`]);
  }
  const lines = text.split(/\r?\n/).filter((l) => l !== '');
  if (lines.length === 0) throw new ConfigError(file, [`sessions.migrate.secretFile: ${c.secretFile} is empty`]);
  return lines;
}

/** connect-redis's layout: `GET <prefix><sid>` → the session as JSON (null when unknown). */
export function connectRedisStore(port: Pick<RedisPort, 'send'>, prefix: string): OldSessionStore {
  return {
    get(sid, cb) {
      const key = prefix + sid;
      port.send(key, ['GET', key]).then(
        (v) => {
          if (v === null || v === undefined) return cb(null, null);
          let data: unknown;
          try {
            data = JSON.parse(String(v));
          } catch (err) {
            return cb(err);
          }
          cb(null, data && typeof data === 'object' ? (data as Record<string, unknown>) : null);
        },
        (err: unknown) => cb(err),
      );
    },
  };
}

/** Opens the configured old store and builds the `migrate` option (counts start at zero). */
export async function openMigration(c: MigrateConfig, counts: MigrationCounts, logger: SessionLogger, file?: string, clock: Clock = systemClock): Promise<OpenedMigration> {
  const secrets = readSecrets(c, file);
  const onError = (err: unknown) => logger.warn({ code: 'COHORT_SESSION_MIGRATION_STORE_FAILED', err: String(err) }, 'the previous session store failed; the request goes on with a new session');
  let store: OldSessionStore;
  let close = async () => {};
  if (c.store.redis) {
    const r = c.store.redis;
    const port = await redisPortFactories[r.client]({
      topology: topologyOf({ url: r.url, nodes: undefined, sentinels: undefined, masterName: undefined }),
      credentials: resolveCredentials(r),
      tls: r.url.startsWith('rediss://'),
      db: r.db,
      commandTimeoutMs: r.commandTimeoutMs,
      onClientError: (err) => logger.debug({ err: String(err) }, 'previous session store: redis client error'),
    });
    // Not reachable now: the node starts anyway (after commandTimeoutMs at most); lookups fail (store-failed)
    // until the client's reconnection gets through.
    let connected = false;
    let timer: TimerHandle | undefined;
    await Promise.race([
      port.connect().then(() => void (connected = true), (err: unknown) => onError(err)),
      new Promise<void>((res) => {
        timer = clock.setTimeout(() => {
          onError(new Error(`no connection to ${r.url} within ${r.commandTimeoutMs} ms`));
          res();
        }, r.commandTimeoutMs);
      }),
    ]);
    if (timer) clock.clearTimeout(timer);
    store = connectRedisStore(port, r.prefix);
    close = async () => {
      if (connected) await port.close();
      else port.destroy();
    };
  } else {
    const path = resolve(c.store.module!);
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
    } catch (err) {
      throw new ConfigError(file, [`sessions.migrate.store.module: cannot load ${path}: ${(err as Error).message}`]);
    }
    let exported = mod.default;
    if (typeof exported === 'function') exported = await (exported as () => unknown)();
    if (!exported || typeof (exported as OldSessionStore).get !== 'function') {
      throw new ConfigError(file, [`sessions.migrate.store.module: ${path} must export (default) an express-session Store, an object with get(sid, cb), or a function returning one`]);
    }
    store = exported as OldSessionStore;
  }
  return {
    options: {
      cookieName: c.cookie,
      ...(secrets ? { secret: secrets } : {}),
      store,
      maxIdLength: c.maxIdLength,
      ...(c.pathParameter ? { pathParameter: c.pathParameter } : {}),
      clearOldCookie: c.clearOldCookie,
      counts,
      onError,
    },
    close,
  };
}
