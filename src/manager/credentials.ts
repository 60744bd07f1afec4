import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ManagerSpec } from '../config/balancer-schema.js';
import type { AuthUser } from './auth.js';
import { generatePassword, hashPassword } from './password.js';

/** The user name that goes with a generated password. */
export const GENERATED_USER = 'admin';

export interface ResolvedCredentials {
  readonly users: AuthUser[];
  readonly tokens: string[];
  /** Set when a password was generated now (print it once) or read back from its file. */
  readonly generated?: { readonly user: string; readonly file: string; readonly password?: string };
}

/** Default location of the generated password file. */
export function passwordFileFor(configFile: string | undefined): string {
  return configFile ? `${configFile}.manager-password` : '.cohort-state/manager-password';
}

/**
 * Users and tokens from the config. With none configured, a random password
 * for user `admin` is generated on first start and written to a 0600 file
 * (created exclusively: an existing file is read back, never overwritten);
 * the caller prints it once.
 */
export async function resolveCredentials(spec: ManagerSpec, configFile: string | undefined): Promise<ResolvedCredentials> {
  const users: AuthUser[] = spec.users.map((u) => ({ name: u.name, password: u.password }));
  const tokens: string[] = [];
  if (spec.token !== undefined) tokens.push(spec.token);
  if (spec.tokenfile !== undefined) {
    const t = readFileSync(spec.tokenfile, 'utf8').split('\n')[0]!.trim();
    if (t.length < 16) throw new Error(`${spec.tokenfile}: expected a token of at least 16 characters on its first line`);
    tokens.push(t);
  }
  if (users.length > 0 || tokens.length > 0) return { users, tokens };

  const file = spec.passwordfile ?? passwordFileFor(configFile);
  let password: string;
  let fresh = false;
  try {
    password = readFileSync(file, 'utf8').split('\n')[0]!.trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    password = generatePassword();
    writeFileSync(file, `${password}\n`, { mode: 0o600, flag: 'wx' });
    fresh = true;
  }
  users.push({ name: GENERATED_USER, password: await hashPassword(password) });
  return { users, tokens, generated: { user: GENERATED_USER, file, ...(fresh ? { password } : {}) } };
}
