/**
 * Command-line options of `npm run chaos` and the named profiles. Pure:
 * argv in, validated options out (or a usage error).
 */

export type Profile = 'default' | 'short' | 'netns' | 'rolling';
export type Consistency = 'sync' | 'async';

export interface ChaosOptions {
  readonly profile: Profile;
  /** Length of the traffic phase, ms. */
  readonly durationMs: number;
  /** Concurrent virtual users (each runs one request at a time). */
  readonly users: number;
  readonly consistency: Consistency;
  /** Seed of the fault plan and the users' think times. */
  readonly seed: number;
  /** Print the result as JSON after the table. */
  readonly json: boolean;
}

/** Defaults per profile: duration (s) and users. */
export const PROFILES: Readonly<Record<Profile, { durationS: number; users: number }>> = {
  default: { durationS: 120, users: 60 },
  short: { durationS: 25, users: 40 },
  netns: { durationS: 120, users: 60 },
  /** The duration is an upper bound: the traffic stops 2 s after the rollout is done. */
  rolling: { durationS: 90, users: 30 },
};

/** Bounds that keep a run from exhausting a small machine. */
export const MAX_USERS = 200;
export const MIN_DURATION_S = 10;
export const MAX_DURATION_S = 3600;

export class UsageError extends Error {
  readonly code = 'COHORT_CHAOS_USAGE';
}

export const USAGE = `usage: npm run chaos -- [--profile default|short|netns|rolling] [--duration S] [--users N] [--consistency sync|async] [--seed N] [--json]
  default  ${PROFILES.default.durationS} s, ${PROFILES.default.users} users: SIGKILL + restart and SIGSTOP/SIGCONT of the nodes in turn
  short    ${PROFILES.short.durationS} s, ${PROFILES.short.users} users: one kill + restart and one pause (for CI)
  netns    ${PROFILES.netns.durationS} s, ${PROFILES.netns.users} users: each node in its own network namespace; adds partitions (root required)
  rolling  ≤ ${PROFILES.rolling.durationS} s, ${PROFILES.rolling.users} users: a rolling restart of every node (cohort rollout's steps: drain, SIGTERM handoff, start, ready)`;

export function parseChaosArgs(argv: readonly string[]): ChaosOptions {
  const raw = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(a)}\n${USAGE}`);
    const [k, inline] = a.slice(2).split('=', 2) as [string, string | undefined];
    if (k === 'json' || k === 'help') {
      raw.set(k, true);
      continue;
    }
    const v = inline ?? argv[++i];
    if (v === undefined) throw new UsageError(`--${k} needs a value\n${USAGE}`);
    raw.set(k, v);
  }
  if (raw.has('help')) throw new UsageError(USAGE);
  for (const k of raw.keys()) if (!['profile', 'duration', 'users', 'consistency', 'seed', 'json'].includes(k)) throw new UsageError(`unknown option --${k}\n${USAGE}`);
  const profile = (raw.get('profile') ?? 'default') as Profile;
  if (!(profile in PROFILES)) throw new UsageError(`--profile: expected default, short, netns or rolling, got ${JSON.stringify(profile)}`);
  const num = (k: string, dflt: number, min: number, max: number): number => {
    const v = raw.get(k);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${k}: expected an integer ${min}..${max}, got ${JSON.stringify(v)}`);
    return n;
  };
  const consistency = (raw.get('consistency') ?? 'sync') as Consistency;
  if (consistency !== 'sync' && consistency !== 'async') throw new UsageError(`--consistency: expected sync or async, got ${JSON.stringify(consistency)}`);
  return {
    profile,
    durationMs: num('duration', PROFILES[profile].durationS, MIN_DURATION_S, MAX_DURATION_S) * 1000,
    users: num('users', PROFILES[profile].users, 1, MAX_USERS),
    consistency,
    seed: num('seed', 1, 0, 2 ** 31 - 1),
    json: raw.get('json') === true,
  };
}
