import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';

/**
 * `${VAR}` and `${VAR:-default}` in YAML configuration values (every config
 * file: balancer and node), as in docker compose and the shell:
 *
 * - `${VAR}`: the variable's value; unset (and no `VAR_FILE`) is an error
 *   naming the file and the key.
 * - `${VAR:-default}`: `default` when VAR is unset or empty.
 * - `VAR_FILE`: when VAR is unset but `VAR_FILE` names a file, its content
 *   (one trailing newline removed) — the Docker/Kubernetes secrets convention,
 *   so a password never sits in the environment or on a command line.
 * - `$${` is a literal `${`.
 *
 * Substitution happens in string values after YAML parsing, so a value can
 * never inject YAML structure; keys are not substituted. The result is
 * always a string: use it for strings (addresses, URLs, passwords, paths);
 * a number-valued key given as `${VAR}` is reported by the schema as a string.
 */

/** Reads a `*_FILE` secret (tests replace it). */
export type SecretFileReader = (path: string) => string;

const PATTERN = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?/g;

export interface EnvSource {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readFile?: SecretFileReader;
}

/** Returns `raw` with every string value expanded. Throws {@link ConfigError} listing every unresolved reference. */
export function expandEnvVars(raw: unknown, file: string | undefined, source: EnvSource = { env: process.env }): unknown {
  const issues: string[] = [];
  const read = source.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const walk = (v: unknown, path: string): unknown => {
    if (typeof v === 'string') return v.includes('$') ? expandString(v, path, source.env, read, issues) : v;
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}[${i}]`));
    if (v !== null && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x, path ? `${path}.${k}` : k);
      return out;
    }
    return v;
  };
  const result = walk(raw, '');
  if (issues.length > 0) throw new ConfigError(file, issues);
  return result;
}

function expandString(s: string, path: string, env: EnvSource['env'], read: SecretFileReader, issues: string[]): string {
  return s.replace(PATTERN, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === '$${') return '${';
    if (name === undefined) {
      issues.push(`${path || '(top level)'}: "${match}" is not a valid reference: expected \${NAME} or \${NAME:-default} (NAME of letters, digits, "_"; "$\${" for a literal "\${")`);
      return match;
    }
    const value = env[name];
    if (fallback !== undefined) {
      if (value !== undefined && value !== '') return value;
    } else if (value !== undefined) {
      return value;
    }
    const fileVar = env[`${name}_FILE`];
    if (fileVar !== undefined && fileVar !== '') {
      try {
        return read(fileVar).replace(/\r?\n$/, '');
      } catch (err) {
        issues.push(`${path}: \${${name}}: cannot read ${name}_FILE=${fileVar}: ${(err as Error).message}`);
        return match;
      }
    }
    if (fallback !== undefined) return fallback;
    issues.push(`${path}: \${${name}} is not set (set ${name} or ${name}_FILE, or give a default: \${${name}:-value})`);
    return match;
  });
}
