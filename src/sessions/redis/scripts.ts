/**
 * Key naming and the commit script. Every key a command touches is one
 * session's key, `<prefix>{<base>}`: the braces are a Redis Cluster hash tag,
 * so the slot depends on the session's base only and a commit never spans
 * two slots (no CROSSSLOT). A new id after login (a new base, another slot)
 * is written in full under the new key, then the old key is deleted: two
 * commands, never one spanning two keys.
 */
import { createHash } from 'node:crypto';

/** The Redis key of the session with this base. */
export function sessionKey(prefix: string, base: string): string {
  return `${prefix}{${base}}`;
}

/** The key of a session stored before hash tags (`<prefix><base>`), read once and renamed (legacyKeys). */
export function legacyKey(prefix: string, base: string): string {
  return prefix + base;
}

/** KEYS[1] the legacy key, KEYS[2] the new key: renames when only the legacy one exists; returns 1 if it did. */
export const ADOPT_LEGACY_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('RENAME', KEYS[1], KEYS[2])
  return 1
end
return 0
`;

/** The base of a session key, or undefined for another key under the prefix. */
export function baseOfKey(prefix: string, key: string): string | undefined {
  if (!key.startsWith(prefix) || key.charCodeAt(prefix.length) !== 123 /* { */ || !key.endsWith('}')) return undefined;
  return key.slice(prefix.length + 1, -1);
}

/** SCAN's MATCH pattern for every session key under the prefix (glob characters in the prefix escaped). */
export function scanPattern(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}{*}`;
}

/**
 * KEYS[1]: the session key.
 * ARGV: mode ('d' delta: apply to the stored hash; 'f' full: replace it),
 *   base version (delta: 0 = new session), version (full: the version to store),
 *   max inactive ms, route, created (epoch ms),
 *   nset, name1, json1, ..., ndel, name1, ...
 * Returns the stored version, or 0 when a delta's session no longer exists
 * (destroyed or expired elsewhere: half a session is not resurrected).
 * Hash fields: `_v` version, `_r` route, `_c` created, `_m` max inactive ms, `a:<name>` JSON.
 */
export const COMMIT_LUA = `
local key = KEYS[1]
local v
if ARGV[1] == 'f' then
  redis.call('DEL', key)
  v = tonumber(ARGV[3])
  redis.call('HSET', key, '_v', v, '_c', ARGV[6])
else
  if tonumber(ARGV[2]) > 0 and redis.call('EXISTS', key) == 0 then return 0 end
  v = redis.call('HINCRBY', key, '_v', 1)
  redis.call('HSETNX', key, '_c', ARGV[6])
end
redis.call('HSET', key, '_r', ARGV[5], '_m', ARGV[4])
local i = 7
local nset = tonumber(ARGV[i]); i = i + 1
for _ = 1, nset do
  redis.call('HSET', key, 'a:' .. ARGV[i], ARGV[i + 1]); i = i + 2
end
local ndel = tonumber(ARGV[i]); i = i + 1
for _ = 1, ndel do
  redis.call('HDEL', key, 'a:' .. ARGV[i]); i = i + 1
end
redis.call('PEXPIRE', key, ARGV[4])
return v
`;

export const COMMIT_SHA = createHash('sha1').update(COMMIT_LUA).digest('hex');

export interface CommitArgs {
  readonly mode: 'delta' | 'full';
  readonly baseVersion: number;
  readonly version: number;
  readonly maxInactiveMs: number;
  readonly route: string;
  readonly createdAt: number;
  readonly set: Readonly<Record<string, unknown>>;
  readonly del: readonly string[];
}

/** ARGV of {@link COMMIT_LUA}. */
export function commitArgv(a: CommitArgs): string[] {
  const out = [a.mode === 'full' ? 'f' : 'd', String(a.baseVersion), String(a.version), String(a.maxInactiveMs), a.route, String(a.createdAt)];
  const set = Object.entries(a.set);
  out.push(String(set.length));
  for (const [k, v] of set) out.push(k, JSON.stringify(v));
  out.push(String(a.del.length), ...a.del);
  return out;
}
