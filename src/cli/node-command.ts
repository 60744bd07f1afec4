import { ConfigError } from '../errors.js';
import { loadNodeConfig, parseNodeConfig, type NodeConfig } from '../node/config.js';
import { NodeRuntime, type NodeRuntimeDeps } from '../node/runtime.js';
import { createLogger, LogOutputs, type LogFormat } from '../util/logger.js';
import { configFileFrom } from './check-config.js';
import { planNodeReload } from '../node/reload.js';
import { ReloadableStaticMembers } from '../node/static-members.js';
import type { Logger } from 'pino';

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
  /** `--resave` / `--no-resave` (undefined: the file's, else express-session's default true). */
  resave?: boolean;
  /** `--save-uninitialized` / `--no-save-uninitialized`. */
  saveUninitialized?: boolean;
  redis?: string;
  redisClient?: string;
  redisCluster?: string[];
  redisSentinel?: string[];
  redisMaster?: string;
  redisPasswordFile?: string;
  redisWaitReplicas?: string;
  loadfactor?: string;
  loadReport?: boolean;
  metricsPath?: string;
  logLevel?: string;
  /** Append the log here (reopened on SIGUSR2) instead of stderr. */
  logFile?: string;
  logFormat?: LogFormat;
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
  if (o.resave !== undefined) sessions.resave = o.resave;
  if (o.saveUninitialized !== undefined) sessions.saveUninitialized = o.saveUninitialized;
  const redis = redisFromFlags(sessions.redis, o);
  if (redis !== undefined) {
    sessions.store = 'redis';
    sessions.redis = redis;
  }
  const merged = {
    ...base,
    ...(o.route ? { route: o.route } : {}),
    ...(o.listen ? { listen: o.listen } : {}),
    ...(o.app ? { app: o.app } : {}),
    ...(o.logLevel ? { loglevel: o.logLevel } : {}),
    ...(o.loadfactor !== undefined ? { loadfactor: Number(o.loadfactor) } : {}),
    ...(o.loadReport ? { loadReport: true } : {}),
    ...(o.metricsPath !== undefined ? { metricsPath: o.metricsPath === 'false' ? false : o.metricsPath } : {}),
    cluster,
    sessions,
  };
  if (!merged.route) throw new ConfigError(o.config, ['node.route: expected a route id, e.g. --route tc1']);
  if (!merged.app) throw new ConfigError(o.config, ['node.app: expected the app module, e.g. --app ./app.mjs']);
  return parseNodeConfig(merged, o.config);
}

/**
 * `sessions.redis` after the flags (undefined: no Redis flag). A topology
 * flag (`--redis URL`, `--redis-cluster`, `--redis-sentinel`) replaces the
 * file's topology; the file's other keys (prefix, credentials...) stay.
 */
function redisFromFlags(fromFile: unknown, o: NodeCliOptions): unknown {
  const flags = o.redis !== undefined || (o.redisCluster?.length ?? 0) > 0 || (o.redisSentinel?.length ?? 0) > 0 || o.redisMaster !== undefined || o.redisClient !== undefined || o.redisPasswordFile !== undefined || o.redisWaitReplicas !== undefined;
  if (!flags) return undefined;
  const spec: Record<string, unknown> = typeof fromFile === 'string' ? { url: fromFile } : typeof fromFile === 'object' && fromFile !== null ? { ...fromFile } : {};
  const topology = (k: 'url' | 'nodes' | 'sentinels', v: unknown) => {
    delete spec.url;
    delete spec.nodes;
    delete spec.sentinels;
    if (k !== 'sentinels') delete spec.masterName;
    spec[k] = v;
  };
  if (o.redis !== undefined) topology('url', o.redis);
  if (o.redisCluster && o.redisCluster.length > 0) topology('nodes', o.redisCluster);
  if (o.redisSentinel && o.redisSentinel.length > 0) topology('sentinels', o.redisSentinel);
  if (o.redisMaster !== undefined) spec.masterName = o.redisMaster;
  if (o.redisClient !== undefined) spec.client = o.redisClient;
  if (o.redisPasswordFile !== undefined) {
    delete spec.password;
    spec.passwordFile = o.redisPasswordFile;
  }
  if (o.redisWaitReplicas !== undefined) spec.waitReplicas = Number(o.redisWaitReplicas);
  return spec;
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

/**
 * `cohort node`: runs until SIGTERM (graceful) or SIGINT. SIGHUP reloads the
 * config file (what can change at run time: src/node/reload.ts), SIGUSR2
 * reopens `--log-file`. Neither ever ends the process.
 */
export async function runNode(options: NodeCliOptions, deps: NodeRuntimeDeps = {}): Promise<NodeRuntime> {
  const o = { ...options, config: configFileFrom(options.config) };
  const cfg = resolveNodeConfig(o);
  const ctx: Partial<ReloadContext> = {};
  // First, before the log file shows up: from then on a SIGHUP must not end the process.
  installNodeReload(o, ctx);
  ctx.outputs = new LogOutputs((message, err) => {
    process.stderr.write(`cohort node: ${message}: ${err.message}\n`);
    ctx.log?.warn({ err: err.message }, message);
  });
  const log = createLogger(`cohort-node-${cfg.route}`, cfg.loglevel as never, ctx.outputs.open(o.logFile ?? 2, o.logFormat));
  ctx.log = log;
  // The app may read its node's route (e.g. to say which node answered): set here, at the process edge.
  process.env.COHORT_ROUTE = cfg.route;
  ctx.members = new ReloadableStaticMembers(cfg.cluster.members);
  const node = new NodeRuntime(cfg, log, o.config, nodeRuntimeDeps(ctx.members, deps));
  ctx.node = node;
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
  const channel = node.cluster ? `cluster ${node.cluster.self.channelAddress.host}:${node.cluster.self.channelAddress.port}` : 'sessions in Redis, no cluster channel';
  process.stderr.write(`cohort node ${cfg.route} ready on ${node.httpUrl} (${channel})\n`);
  return node;
}

/**
 * What `cohort node` gives its runtime: the caller's dependencies, with the reloadable static list as
 * the membership registry — built with the caller's DNS resolver and UDP socket factory, so a fake
 * resolver injected for the cluster reaches the `dns` service as it does with the default registry.
 */
export function nodeRuntimeDeps(members: ReloadableStaticMembers, deps: NodeRuntimeDeps = {}): NodeRuntimeDeps {
  return { ...deps, cluster: { ...deps.cluster, membershipRegistry: members.registry(deps.cluster) } };
}

/**
 * SIGHUP and SIGUSR2 on `cohort node`, installed before start() so that a
 * signal during the state transfer cannot kill the process (SIGHUP's default
 * action). A reload that fails (invalid file) keeps the running settings.
 */
/** Filled in as `runNode` constructs them; the handlers do nothing until the node exists. */
interface ReloadContext {
  node: NodeRuntime;
  log: Logger;
  members: ReloadableStaticMembers;
  outputs: LogOutputs;
}

function installNodeReload(o: NodeCliOptions, ctx: Partial<ReloadContext>): void {
  process.on('SIGUSR2', () => {
    const { outputs, log } = ctx;
    if (!outputs || !log) return;
    outputs.reopen();
    log.info({ files: outputs.files() }, 'SIGUSR2: log files reopened');
  });
  process.on('SIGHUP', () => {
    const { node, log, members } = ctx;
    if (!node || !log || !members) return; // not constructed yet: nothing to reload into
    if (!o.config) {
      log.warn('SIGHUP: no --config file (or COHORT_CONFIG) to reload; nothing changed');
      return;
    }
    try {
      const next = resolveNodeConfig(o);
      const plan = planNodeReload(node.config, next);
      const applied: string[] = [];
      if (plan.loglevel) {
        log.level = plan.loglevel;
        node.config.loglevel = plan.loglevel;
        applied.push(`loglevel=${plan.loglevel}`);
      }
      if (plan.loadfactor) {
        node.setLoadfactor(plan.loadfactor.value);
        applied.push(`loadfactor=${plan.loadfactor.value ?? '(unset)'}`);
      }
      if (plan.members) {
        const diff = members.set(plan.members);
        node.config.cluster.members = [...plan.members];
        applied.push(`members +[${diff.added.join(',')}] -[${diff.removed.join(',')}]`);
      }
      if (plan.needRestart.length > 0) log.warn({ keys: plan.needRestart }, 'SIGHUP: these changes take effect after a restart; the node keeps running with the previous values');
      log.info({ applied, state: node.state }, applied.length > 0 ? `SIGHUP: reloaded ${o.config}: ${applied.join('; ')}` : `SIGHUP: reloaded ${o.config}: nothing to change`);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'SIGHUP: reload refused (invalid configuration); keeping the running one');
    }
  });
}
