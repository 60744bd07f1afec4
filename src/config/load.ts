import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { balancerConfigSchema, type BalancerConfig } from './balancer-schema.js';
import { mutualTlsIssues, pemFileIssues } from './pem-files.js';
import { expandEnvVars } from './env-vars.js';

/** Renders a zod issue path as a key path: `balancers[0].members[1].loadfactor`. */
export function keyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(top level)';
}

/** Turns zod issues into lines that name the key path and what was expected. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const keys = (issue as { keys: string[] }).keys;
      const where = keyPath(issue.path);
      return `${keys.map((k) => (where === '(top level)' ? k : `${where}.${k}`)).join(', ')}: unknown key${keys.length > 1 ? 's' : ''} (not a Cohort setting; see docs/configuration.md)`;
    }
    return `${keyPath(issue.path)}: ${issue.message}`;
  });
}

/** Validates an already-parsed object, and that the PEM files it names can be read. `file` only labels errors. */
export function parseBalancerConfig(raw: unknown, file?: string): BalancerConfig {
  const result = balancerConfigSchema.safeParse(raw ?? {});
  if (!result.success) throw new ConfigError(file, formatIssues(result.error));
  const issues = configPemIssues(result.data);
  if (issues.length > 0) throw new ConfigError(file, issues);
  return result.data;
}

/**
 * The certificate, key and CA files a config names must exist and hold PEM
 * data; otherwise the balancer would die at start (or at reload) with a bare
 * ENOENT instead of a message naming the key.
 */
function configPemIssues(cfg: BalancerConfig): string[] {
  const refs: [string, string][] = [];
  const listen = Array.isArray(cfg.listen) ? cfg.listen : [cfg.listen];
  listen.forEach((l, i) => {
    if (typeof l === 'string' || l.tls === undefined) return;
    const at = Array.isArray(cfg.listen) ? `listen[${i}]` : 'listen';
    refs.push([`${at}.tls.cert`, l.tls.cert], [`${at}.tls.key`, l.tls.key]);
  });
  if (cfg.upstreamtls.ca !== undefined) refs.push(['upstreamtls.ca', cfg.upstreamtls.ca]);
  return [...pemFileIssues(refs), ...(cfg.cluster?.tls ? mutualTlsIssues('cluster.tls', cfg.cluster.tls) : [])];
}

/** Reads YAML (or JSON) text and validates it. */
export function parseYamlText(text: string, file: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      throw new ConfigError(file, [`${pos ? `line ${pos.line}, column ${pos.col}: ` : ''}${err.message.split('\n')[0]}`]);
    }
    throw err;
  }
}

export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`]);
  }
  // ${VAR}, ${VAR:-default} and VAR_FILE in values (src/config/env-vars.ts).
  return expandEnvVars(parseYamlText(text, file), file);
}

/** Loads and validates a balancer configuration file. Throws {@link ConfigError}. */
export function loadBalancerConfig(file: string): BalancerConfig {
  return parseBalancerConfig(readConfigFile(file), file);
}
