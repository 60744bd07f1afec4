import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashes for manager users: `scrypt$N$r$p$salt$hash` (salt and hash
 * base64url). scrypt from node:crypto, so no native dependency. The cost
 * defaults follow OWASP's scrypt minimum (N=2^15, r=8, p=1) and cost ~50 ms.
 */
export const SCRYPT_DEFAULTS = { N: 32768, r: 8, p: 1, keylen: 32, saltlen: 16 } as const;

function scryptAsync(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

/** Hashes a password for the config's `manager.users[].password`. */
export async function hashPassword(password: string, cost: { N?: number; r?: number; p?: number } = {}): Promise<string> {
  const N = cost.N ?? SCRYPT_DEFAULTS.N;
  const r = cost.r ?? SCRYPT_DEFAULTS.r;
  const p = cost.p ?? SCRYPT_DEFAULTS.p;
  const salt = randomBytes(SCRYPT_DEFAULTS.saltlen);
  const key = await scryptAsync(password, salt, SCRYPT_DEFAULTS.keylen, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

/** Checks a password against a hash made by {@link hashPassword}; constant time in the hash comparison. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  if (![N, r, p].every((x) => Number.isInteger(x) && x > 0) || N > 1 << 20) return false;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  if (expected.length < 16) return false;
  try {
    const key = await scryptAsync(password, salt, expected.length, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
    return timingSafeEqual(key, expected);
  } catch {
    return false;
  }
}

/** A random password for first start: 24 base64url characters (144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
