import type { Logger } from 'pino';
import type { MethodRegistry } from '../balancer/methods/index.js';
import type { BalancerConfig } from '../config/balancer-schema.js';
import { resolveCredentials } from './credentials.js';
import { ManagerServer, type ManagedBalancers } from './manager-server.js';
import { statePathFor } from './persist.js';
import { ClusterSource } from './dashboard-source-cluster.js';
import { systemClock } from '../util/clock.js';

/**
 * Builds the manager for `cohort balancer` when the config has a `manager`
 * section: resolves credentials (generating a password on first start and
 * printing it once) and the state file (`<config>.state.json`; none in quick
 * mode or with `persist: false`). Returns undefined when the manager is off.
 */
export async function createManager(
  target: ManagedBalancers,
  cfg: BalancerConfig,
  configFile: string | undefined,
  log: Logger,
  methods?: MethodRegistry,
  print: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<ManagerServer | undefined> {
  const spec = cfg.manager;
  if (spec === undefined || spec === false) return undefined;
  const creds = await resolveCredentials(spec, configFile);
  if (creds.generated?.password !== undefined) {
    print(`cohort balancer manager: generated a password for user "${creds.generated.user}": ${creds.generated.password}`);
    print(`  (saved in ${creds.generated.file}, mode 0600; it is shown only this once — configure manager.users to replace it)`);
  } else if (creds.generated) {
    print(`cohort balancer manager: user "${creds.generated.user}", password in ${creds.generated.file}`);
  }
  const statePath = configFile !== undefined && cfg.persist ? statePathFor(configFile) : undefined;
  // With a `cluster` section the balancer joins the session cluster (in its start()); the dashboard then
  // gets a panel of the nodes. Read loosely so this file doesn't depend on that section's schema.
  const joinsCluster = (cfg as { cluster?: unknown }).cluster !== undefined;
  const sources = joinsCluster ? [new ClusterSource(() => target.cluster, systemClock, spec.history)] : [];
  return new ManagerServer(target, { spec, users: creds.users, tokens: creds.tokens, log, sources, ...(methods ? { methods } : {}), ...(statePath !== undefined ? { statePath } : {}) });
}
