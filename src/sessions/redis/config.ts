/**
 * The `sessions.redis` configuration: one zod schema, three topologies.
 *
 * - standalone: `url` (`redis://[user:pass@]host:port[/db]`, `rediss://` for TLS);
 * - Redis Cluster: `nodes`, a list of seed `host:port` (or URLs); the client
 *   learns the other masters and follows MOVED/ASK;
 * - Sentinel: `sentinels` (a list of `host:port`) and `masterName`; the
 *   client asks the sentinels for the master and follows a failover.
 *
 * Exactly one of the three. Credentials: `username`, `password`, or
 * `passwordFile` (a file holding the password, one trailing newline
 * trimmed), or the environment (`COHORT_REDIS_PASSWORD`,
 * `COHORT_REDIS_USERNAME`) when the config names neither.
 * A bare string is shorthand for `{ url }`. Defaults are the named constants
 * below, documented in docs/redis.md.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { RedisError, RedisErrorCode } from './errors.js';

export const DEFAULT_REDIS_PREFIX = 'cohort:sess:';
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
/** ms a command may take (queued while reconnecting included) before it fails. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 5_000;
/** ms a commit waits for `waitReplicas` replica acknowledgements (WAIT's timeout). */
export const DEFAULT_WAIT_TIMEOUT_MS = 1_000;
/** ms a failed operation keeps being retried (READONLY, LOADING, connection lost, CLUSTERDOWN, TRYAGAIN). */
export const DEFAULT_RETRY_WINDOW_MS = 10_000;
/** Environment variables read when the config names no credentials. */
export const REDIS_PASSWORD_ENV = 'COHORT_REDIS_PASSWORD';
export const REDIS_USERNAME_ENV = 'COHORT_REDIS_USERNAME';

const hostPortOrUrl = z.string().regex(/^(rediss?:\/\/.+|(\[[0-9a-fA-F:.]+\]|[^\s:\[\]/]+):\d{1,5})$/, 'expected host:port or redis://host:port');
const ms = z.number().int().positive();

export const redisClientNames = ['node-redis', 'ioredis'] as const;
export type RedisClientName = (typeof redisClientNames)[number];

export const redisConfigObjectSchema = z.strictObject({
  /** Which client library talks to Redis: `node-redis` (the `redis` package, v5) or `ioredis`; installed by the application. */
  client: z.enum(redisClientNames, { error: 'expected node-redis or ioredis' }).default('node-redis'),
  url: z.string().regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://host:port').optional(),
  nodes: z.array(hostPortOrUrl).min(1, 'expected at least one cluster seed node').optional(),
  sentinels: z.array(hostPortOrUrl).min(1, 'expected at least one sentinel host:port').optional(),
  masterName: z.string().min(1).optional(),
  username: z.string().min(1).optional(),
  password: z.string().min(1).optional(),
  passwordFile: z.string().min(1).optional(),
  /** Password of the sentinels themselves (when they have `requirepass`). */
  sentinelPassword: z.string().min(1).optional(),
  /** TLS to Redis (`rediss://` turns it on for a URL). */
  tls: z.boolean().default(false),
  /** Logical database (standalone and Sentinel only; Redis Cluster has only db 0). */
  db: z.number().int().min(0).default(0),
  prefix: z.string().default(DEFAULT_REDIS_PREFIX),
  /** Overrides `sessions.replication.maxInactiveMs`. */
  maxInactiveMs: ms.optional(),
  /** Overrides `sessions.replication.consistency`. */
  consistency: z.enum(['async', 'sync']).optional(),
  /** > 0: every commit issues `WAIT n waitTimeoutMs` and fails (COHORT_REDIS_NOT_REPLICATED) when fewer replicas acknowledged. */
  waitReplicas: z.number().int().min(0).default(0),
  waitTimeoutMs: ms.default(DEFAULT_WAIT_TIMEOUT_MS),
  commandTimeoutMs: ms.default(DEFAULT_COMMAND_TIMEOUT_MS),
  retryWindowMs: z.number().int().min(0).default(DEFAULT_RETRY_WINDOW_MS),
  /** Standalone and Sentinel: a session not found under its key is looked for under the pre-hash-tag key `<prefix><base>` and moved (one more round trip per miss). */
  legacyKeys: z.boolean().default(true),
}).superRefine((c, ctx) => {
  const given = [c.url !== undefined && 'url', c.nodes !== undefined && 'nodes', c.sentinels !== undefined && 'sentinels'].filter(Boolean);
  if (given.length > 1) ctx.addIssue({ code: 'custom', path: [], message: `expected one of url, nodes (Redis Cluster) or sentinels (Sentinel), got ${given.join(' and ')}` });
  if (c.sentinels !== undefined && c.masterName === undefined) ctx.addIssue({ code: 'custom', path: ['masterName'], message: 'expected the master name the sentinels monitor (sentinel monitor <name> ...)' });
  if (c.masterName !== undefined && c.sentinels === undefined) ctx.addIssue({ code: 'custom', path: ['sentinels'], message: 'masterName needs sentinels: a list of host:port' });
  if (c.password !== undefined && c.passwordFile !== undefined) ctx.addIssue({ code: 'custom', path: ['passwordFile'], message: 'expected password or passwordFile, not both' });
  if (c.nodes !== undefined && c.db !== 0) ctx.addIssue({ code: 'custom', path: ['db'], message: 'Redis Cluster has only database 0' });
  if (c.waitReplicas > 0 && c.waitTimeoutMs >= c.commandTimeoutMs) ctx.addIssue({ code: 'custom', path: ['waitTimeoutMs'], message: `must be below commandTimeoutMs (${c.commandTimeoutMs} ms), or WAIT would time out as a command` });
});

/** `sessions.redis`: a URL string (shorthand for `{ url }`), or the object form. */
export const redisConfigSchema = z.preprocess((v) => (typeof v === 'string' ? { url: v } : v), redisConfigObjectSchema);

export type RedisConfigInput = z.input<typeof redisConfigObjectSchema>;
export type RedisConfig = z.output<typeof redisConfigObjectSchema>;

export type RedisTopology =
  | { readonly kind: 'standalone'; readonly url: string }
  | { readonly kind: 'cluster'; readonly nodes: readonly string[] }
  | { readonly kind: 'sentinel'; readonly sentinels: readonly { host: string; port: number }[]; readonly masterName: string };

/** Where to connect, from a parsed config (standalone at DEFAULT_REDIS_URL when it names nothing). */
export function topologyOf(c: Pick<RedisConfig, 'url' | 'nodes' | 'sentinels' | 'masterName'>): RedisTopology {
  if (c.nodes) return { kind: 'cluster', nodes: c.nodes.map(toUrl) };
  if (c.sentinels) return { kind: 'sentinel', sentinels: c.sentinels.map(hostPortOf), masterName: c.masterName! };
  return { kind: 'standalone', url: c.url ?? DEFAULT_REDIS_URL };
}

function toUrl(s: string): string {
  return /^rediss?:\/\//.test(s) ? s : `redis://${s}`;
}

function hostPortOf(s: string): { host: string; port: number } {
  const u = new URL(toUrl(s));
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 26379) };
}

export interface RedisCredentials {
  readonly username?: string;
  readonly password?: string;
}

/**
 * The credentials to use: the config's, else the password file's, else the
 * environment's. A URL's own `user:pass@` is left to the client.
 * Throws COHORT_REDIS_PASSWORD_FILE when the file cannot be read or is empty.
 */
export function resolveCredentials(c: Pick<RedisConfig, 'username' | 'password' | 'passwordFile'>, env: NodeJS.ProcessEnv = process.env, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): RedisCredentials {
  let password = c.password;
  if (c.passwordFile !== undefined) {
    let text: string;
    try {
      text = readFile(c.passwordFile);
    } catch (err) {
      throw new RedisError(RedisErrorCode.PasswordFile, `sessions.redis.passwordFile: cannot read ${c.passwordFile}: ${(err as Error).message}`, { cause: err });
    }
    password = text.replace(/\r?\n$/, '');
    if (password === '') throw new RedisError(RedisErrorCode.PasswordFile, `sessions.redis.passwordFile: ${c.passwordFile} is empty`);
  }
  password ??= env[REDIS_PASSWORD_ENV] || undefined;
  const username = c.username ?? (env[REDIS_USERNAME_ENV] || undefined);
  return { ...(username !== undefined ? { username } : {}), ...(password !== undefined ? { password } : {}) };
}
