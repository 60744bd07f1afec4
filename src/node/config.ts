import { z } from 'zod';
import { readConfigFile, formatIssues } from '../config/load.js';
import { ConfigError } from '../errors.js';
import { defaultSessionBackends } from '../sessions/registry.js';
import { clusterSectionShape, hostPort } from '../config/cluster-section.js';
import { mutualTlsIssues } from '../config/pem-files.js';

/**
 * `cohort node` configuration: the `node:` section of a YAML file, or the
 * same from flags. Documented in docs/node.md.
 */

export const nodeSectionSchema = z.strictObject({
  route: z.string().regex(/^[A-Za-z0-9_-]+$/, 'expected a route of letters, digits, "_" or "-"'),
  /** The app's HTTP listener. */
  listen: hostPort.default('127.0.0.1:8081'),
  /** Module whose default export is a request listener, an Express app or a Fastify instance. */
  app: z.string().min(1),
  cluster: z.strictObject(clusterSectionShape('127.0.0.1:4000')).prefault({}),
  /** The session backend registry's section (src/sessions/registry.ts): `store`, `cookie`, `replication`, `redis`. */
  sessions: defaultSessionBackends().sectionSchema().prefault({}),
  /**
   * The balancer's weight for this node (1..100, like httpd's loadfactor),
   * published in the cluster meta; a balancer that learns the nodes applies
   * it. Unset: nothing is published and the balancer keeps its own setting
   * (1 for a discovered node). With `loadReport`, the loadfactor of an idle node.
   */
  loadfactor: z.number().int('expected an integer 1..100').min(1, 'expected an integer 1..100').max(100, 'expected an integer 1..100').optional(),
  /**
   * Publish a loadfactor derived from the event loop's utilization (every
   * 2 s, only when it changed): from `loadfactor` (default 100) when idle
   * down to 1 when saturated.
   */
  loadReport: z.boolean().default(false),
  /** Besides loopback, clients (IPs or CIDRs) allowed to scrape the node's metrics. */
  metricsFrom: z.array(z.string()).default([]),
  /**
   * Another path where the node serves its Prometheus metrics on the app
   * listener, besides /.cohort/metrics (always). Default false: only there, so
   * an app's own `/metrics` route is never hidden. A path set here is answered
   * by the node before the app.
   */
  metricsPath: z.union([z.literal(false), z.string().regex(/^\/[^?#\s]*$/, 'expected a path like "/metrics", or false')]).default(false),
  /** Seconds to finish in-flight requests on SIGTERM. */
  shutdownTimeout: z.number().min(0).default(10),
  loglevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});

export type NodeConfig = z.output<typeof nodeSectionSchema>;

export function parseNodeConfig(raw: unknown, file?: string): NodeConfig {
  const r = nodeSectionSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(file, formatIssues(r.error).map((l) => `node.${l}`));
  const tlsIssues = r.data.cluster.tls ? mutualTlsIssues('node.cluster.tls', r.data.cluster.tls) : [];
  if (tlsIssues.length > 0) throw new ConfigError(file, tlsIssues);
  return r.data;
}

/** The top-level keys of a node file. */
export const NODE_FILE_KEYS: readonly string[] = ['node'];

/**
 * Whether the node joins the cluster channel. Replicated sessions need it;
 * in Redis mode it is only started when the `cluster` section says how to
 * find members (members, multicast, dns) or configures its security (secret,
 * secretFile, tls) — e.g. for a balancer that discovers the nodes — so a
 * Redis-mode node needs no cluster secret.
 */
export function usesClusterChannel(cfg: NodeConfig): boolean {
  if (cfg.sessions.store !== 'redis') return true;
  const c = cfg.cluster;
  return c.members.length > 0 || c.multicast !== false || c.dns !== undefined || c.secret !== undefined || c.secretFile !== undefined || c.tls !== undefined;
}

/** Reads the `node:` section of a YAML file; any other top-level key is an error. */
export function loadNodeConfig(file: string): Record<string, unknown> {
  return nodeSection(readConfigFile(file), file);
}

/** The `node:` section of a parsed node file; any other top-level key is an error. */
export function nodeSection(parsed: unknown, file: string): Record<string, unknown> {
  const raw = parsed as Record<string, unknown> | null;
  if (!raw || typeof raw !== 'object' || typeof raw.node !== 'object' || raw.node === null) {
    throw new ConfigError(file, ['node: expected a "node:" section with route, listen, app and cluster']);
  }
  const unknown = Object.keys(raw).filter((k) => !NODE_FILE_KEYS.includes(k));
  if (unknown.length > 0) throw new ConfigError(file, unknown.map((k) => `${k}: unknown key in a node file (a node file has only a "node:" section; see docs/node.md)`));
  return raw.node as Record<string, unknown>;
}
