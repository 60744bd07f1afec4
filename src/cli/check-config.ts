import type { ConfigError } from '../errors.js';
import { parseBalancerConfig, readConfigFile } from '../config/load.js';
import { parseNodeConfig, nodeSection } from '../node/config.js';

/** The environment variable naming the config file when `--config` is absent. */
export const CONFIG_ENV = 'COHORT_CONFIG';

/** `--config FILE`, else `$COHORT_CONFIG`, else undefined (quick mode). */
export function configFileFrom(flag: string | undefined, env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  if (flag !== undefined && flag !== '') return flag;
  const fromEnv = env[CONFIG_ENV];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined;
}

export type ConfigKind = 'balancer' | 'node';

/**
 * `cohort check-config`: validates a balancer file, or a node file (one with
 * a top-level `node:` section), the way `cohort balancer` / `cohort node`
 * would load it. Throws {@link ConfigError} naming the file and key.
 */
export function checkConfigFile(file: string): ConfigKind {
  const raw = readConfigFile(file);
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw) && 'node' in raw) {
    parseNodeConfig(nodeSection(raw, file), file);
    return 'node';
  }
  parseBalancerConfig(raw, file);
  return 'balancer';
}
