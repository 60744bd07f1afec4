import { ConfigError } from '../errors.js';
import { loadNodeConfig, parseNodeConfig, type NodeConfig } from '../node/config.js';
import { NodeRuntime } from '../node/runtime.js';
import { createLogger } from '../util/logger.js';

export interface NodeCliOptions {
  config?: string;
  route?: string;
  listen?: string;
  app?: string;
  clusterListen?: string;
  clusterName?: string;
  advertise?: string;
  member?: string[];
  multicast?: boolean;
  dns?: string;
  dnsType?: string;
  dnsPort?: string;
  secretFile?: string;
  clusterTlsCa?: string;
  clusterTlsCert?: string;
  clusterTlsKey?: string;
  sessionsMode?: string;
  backups?: string;
  consistency?: string;
  redis?: string;
  loadfactor?: string;
  loadReport?: boolean;
  logLevel?: string;
}

/** Flags override the file's `node:` section. */
export function resolveNodeConfig(o: NodeCliOptions): NodeConfig {
  const base: Record<string, unknown> = o.config ? loadNodeConfig(o.config) : {};
  const cluster = { ...((base.cluster as Record<string, unknown>) ?? {}) };
  const sessions = { ...((base.sessions as Record<string, unknown>) ?? {}) };
  const replication = { ...((sessions.replication as Record<string, unknown>) ?? {}) };
  if (o.clusterListen) cluster.listen = o.clusterListen;
  if (o.clusterName) cluster.name = o.clusterName;
  if (o.advertise) cluster.advertise = o.advertise;
  if (o.member && o.member.length > 0) cluster.members = o.member;
  // --multicast turns it on; it keeps the file's multicast settings, if any
  if (o.multicast && (typeof cluster.multicast !== 'object' || cluster.multicast === null)) cluster.multicast = true;
  if (o.dns || o.dnsType || o.dnsPort) cluster.dns = dnsFromFlags(cluster.dns, o);
  if (o.secretFile) cluster.secretFile = o.secretFile;
  if (o.clusterTlsCa || o.clusterTlsCert || o.clusterTlsKey) {
    const tls = { ...((cluster.tls as Record<string, unknown> | undefined) ?? {}) };
    if (o.clusterTlsCa) tls.ca = o.clusterTlsCa;
    if (o.clusterTlsCert) tls.cert = o.clusterTlsCert;
    if (o.clusterTlsKey) tls.key = o.clusterTlsKey;
    for (const k of ['ca', 'cert', 'key'] as const) {
      if (tls[k] === undefined) throw new ConfigError(o.config, [`node.cluster.tls.${k}: mutual TLS needs ca, cert and key: add --cluster-tls-${k} FILE (or cluster.tls.${k} in the file)`]);
    }
    cluster.tls = tls;
  }
  if (o.sessionsMode) replication.mode = o.sessionsMode;
  if (o.backups) replication.backups = Number(o.backups);
  if (o.consistency) replication.consistency = o.consistency;
  if (Object.keys(replication).length > 0) sessions.replication = replication;
  if (o.redis) {
    sessions.store = 'redis';
    sessions.redis = o.redis;
  }
  const merged = {
    ...base,
    ...(o.route ? { route: o.route } : {}),
    ...(o.listen ? { listen: o.listen } : {}),
    ...(o.app ? { app: o.app } : {}),
    ...(o.logLevel ? { loglevel: o.logLevel } : {}),
    ...(o.loadfactor !== undefined ? { loadfactor: Number(o.loadfactor) } : {}),
    ...(o.loadReport ? { loadReport: true } : {}),
    cluster,
    sessions,
  };
  if (!merged.route) throw new ConfigError(o.config, ['node.route: expected a route id, e.g. --route tc1']);
  if (!merged.app) throw new ConfigError(o.config, ['node.app: expected the app module, e.g. --app ./app.mjs']);
  return parseNodeConfig(merged, o.config);
}

/**
 * `cluster.dns` after the flags: `--dns NAME` sets the name (alone it is the
 * plain string form, A and AAAA), `--dns-type` and `--dns-port` the other keys;
 * the file's other `dns` keys stay.
 */
function dnsFromFlags(fromFile: unknown, o: NodeCliOptions): unknown {
  const spec: Record<string, unknown> = typeof fromFile === 'string' ? { name: fromFile } : typeof fromFile === 'object' && fromFile !== null ? { ...fromFile } : {};
  if (o.dns) spec.name = o.dns;
  if (spec.name === undefined) throw new ConfigError(o.config, ['node.cluster.dns: --dns-type and --dns-port need the name to resolve: add --dns NAME (or cluster.dns in the file)']);
  if (o.dnsType) spec.type = o.dnsType.toUpperCase();
  if (o.dnsPort) spec.port = Number(o.dnsPort);
  return Object.keys(spec).length === 1 ? spec.name : spec;
}

/** `cohort node`: runs until SIGTERM (graceful) or SIGINT. */
export async function runNode(o: NodeCliOptions): Promise<NodeRuntime> {
  const cfg = resolveNodeConfig(o);
  const log = createLogger(`cohort-node-${cfg.route}`, cfg.loglevel as never, 2);
  // The app may read its node's route (e.g. to say which node answered): set here, at the process edge.
  process.env.COHORT_ROUTE = cfg.route;
  const node = new NodeRuntime(cfg, log, o.config);
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ signal: sig }, 'leaving the cluster gracefully');
    void node.close().then(() => {
      log.flush();
      setImmediate(() => process.exit(0));
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await node.start();
  } catch (err) {
    node.destroy();
    throw err;
  }
  process.stderr.write(`cohort node ${cfg.route} ready on ${node.httpUrl} (cluster ${node.cluster!.self.channelAddress.host}:${node.cluster!.self.channelAddress.port})\n`);
  return node;
}
