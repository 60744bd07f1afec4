/**
 * The cluster configuration: one zod schema, defaults as named constants,
 * unknown keys rejected. Documented in docs/cluster.md.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { CohortError, ConfigError } from '../errors.js';
import { isHostPort } from '../util/address.js';

export const DEFAULT_CLUSTER_NAME = 'cohort';
export const DEFAULT_LISTEN_HOST = '127.0.0.1';
export const DEFAULT_LISTEN_PORT = 4000;
export const DEFAULT_MULTICAST_ADDRESS = '228.0.0.4';
export const DEFAULT_MULTICAST_PORT = 45564;
export const DEFAULT_MULTICAST_INTERVAL_MS = 500;
export const DEFAULT_MULTICAST_DROP_MS = 3000;
export const DEFAULT_STATIC_REFRESH_MS = 1000;
export const DEFAULT_DNS_INTERVAL_MS = 5000;
export const DEFAULT_TIMING = {
  heartbeatIntervalMs: 250,
  suspectAfterMs: 900,
  confirmTimeoutMs: 500,
  probeIntervalMs: 200,
  probeTimeoutMs: 400,
  indirectProbes: 2,
  handshakeTimeoutMs: 2000,
  connectTimeoutMs: 1000,
  reconnectMs: 500,
  sendTimeoutMs: 5000,
  rttIntervalMs: 2000,
} as const;
export const DEFAULT_LIMITS = {
  maxFrameBytes: 16 * 1024 * 1024,
  maxQueueBytes: 64 * 1024 * 1024,
} as const;
export const SECRET_ENV = 'COHORT_CLUSTER_SECRET';

const ms = z.number().int().nonnegative();
const hostPort = z.string().refine(isHostPort, 'expected host:port');

const staticSchema = z
  .object({
    type: z.literal('static'),
    members: z.array(hostPort).default([]),
    refreshMs: ms.default(DEFAULT_STATIC_REFRESH_MS),
  })
  .strict();

const multicastSchema = z
  .object({
    type: z.literal('multicast'),
    address: z.string().default(DEFAULT_MULTICAST_ADDRESS),
    port: z.number().int().min(1).max(65535).default(DEFAULT_MULTICAST_PORT),
    intervalMs: ms.default(DEFAULT_MULTICAST_INTERVAL_MS),
    dropTimeMs: ms.default(DEFAULT_MULTICAST_DROP_MS),
    ttl: z.number().int().min(0).max(255).default(1),
    /** Local address of the interface to send and join on (IP_MULTICAST_IF). */
    interface: z.string().optional(),
    /** Address to bind the UDP socket to; default all addresses. */
    bind: z.string().optional(),
    loopback: z.boolean().default(true),
  })
  .strict();

const dnsSchema = z
  .object({
    type: z.literal('dns'),
    name: z.string().min(1),
    /** `A+AAAA`: both address families each round, merged. */
    rrtype: z.enum(['A', 'AAAA', 'SRV', 'A+AAAA']).default('A'),
    /** Channel port of the members for A/AAAA answers; default this node's listen port. */
    port: z.number().int().min(1).max(65535).optional(),
    intervalMs: ms.default(DEFAULT_DNS_INTERVAL_MS),
  })
  .strict();

const BUILT_IN_MEMBERSHIP = ['static', 'multicast', 'dns'];

/** A membership service registered by the application: its own keys, checked by its factory. */
const customMembershipSchema = z
  .object({ type: z.string().min(1).refine((t) => !BUILT_IN_MEMBERSHIP.includes(t), 'built-in membership config with invalid keys') })
  .passthrough();

export const clusterConfigSchema = z
  .object({
    route: z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only'),
    clusterName: z.string().min(1).max(128).default(DEFAULT_CLUSTER_NAME),
    listen: z
      .object({ host: z.string().default(DEFAULT_LISTEN_HOST), port: z.number().int().min(0).max(65535).default(DEFAULT_LISTEN_PORT) })
      .strict()
      .default({ host: DEFAULT_LISTEN_HOST, port: DEFAULT_LISTEN_PORT }),
    /** The address peers dial; default the listen address (required if listening on a wildcard). */
    advertise: z.object({ host: z.string(), port: z.number().int().min(1).max(65535).optional() }).strict().optional(),
    secret: z.string().optional(),
    secretFile: z.string().optional(),
    tls: z.object({ ca: z.string(), cert: z.string(), key: z.string() }).strict().optional(),
    membership: z.union([z.discriminatedUnion('type', [staticSchema, multicastSchema, dnsSchema]), customMembershipSchema]).default({ type: 'static', members: [], refreshMs: DEFAULT_STATIC_REFRESH_MS }),
    timing: z
      .object({
        heartbeatIntervalMs: ms.default(DEFAULT_TIMING.heartbeatIntervalMs),
        suspectAfterMs: ms.default(DEFAULT_TIMING.suspectAfterMs),
        confirmTimeoutMs: ms.default(DEFAULT_TIMING.confirmTimeoutMs),
        probeIntervalMs: ms.default(DEFAULT_TIMING.probeIntervalMs),
        probeTimeoutMs: ms.default(DEFAULT_TIMING.probeTimeoutMs),
        indirectProbes: z.number().int().min(0).max(10).default(DEFAULT_TIMING.indirectProbes),
        handshakeTimeoutMs: ms.default(DEFAULT_TIMING.handshakeTimeoutMs),
        connectTimeoutMs: ms.default(DEFAULT_TIMING.connectTimeoutMs),
        reconnectMs: ms.default(DEFAULT_TIMING.reconnectMs),
        sendTimeoutMs: ms.default(DEFAULT_TIMING.sendTimeoutMs),
        rttIntervalMs: ms.default(DEFAULT_TIMING.rttIntervalMs),
      })
      .strict()
      .default({ ...DEFAULT_TIMING }),
    limits: z
      .object({ maxFrameBytes: z.number().int().min(1024).max(0xffffffff).default(DEFAULT_LIMITS.maxFrameBytes), maxQueueBytes: z.number().int().min(1024).default(DEFAULT_LIMITS.maxQueueBytes) })
      .strict()
      .default({ ...DEFAULT_LIMITS }),
    meta: z.record(z.string(), z.string()).default({}),
  })
  .strict();

/** Config as written by the user (defaults optional). */
export type ClusterConfigInput = z.input<typeof clusterConfigSchema>;
/** Config after validation, defaults filled in. */
export type ClusterConfig = z.output<typeof clusterConfigSchema>;
export type MembershipConfig = ClusterConfig['membership'];

/** Validates; throws {@link ConfigError} naming each key path and what was expected. */
export function parseClusterConfig(input: unknown, file?: string, keyPrefix = 'cluster'): ClusterConfig {
  const r = clusterConfigSchema.safeParse(input);
  if (!r.success) {
    throw new ConfigError(file, r.error.issues.map((i) => `${[keyPrefix, ...i.path].join('.')}: ${i.message}`));
  }
  return r.data;
}

/**
 * The shared secret, from `secret`, `secretFile` or the environment. Throws
 * COHORT_SECRET_MISSING (saying how to set one) if none and no TLS.
 */
export function resolveSecret(config: ClusterConfig, env: Readonly<Record<string, string | undefined>>, readFile: (p: string) => string = (p) => readFileSync(p, 'utf8')): string | undefined {
  if (config.secret) return config.secret;
  if (config.secretFile) {
    try {
      return readFile(config.secretFile).trim();
    } catch (err) {
      throw new CohortError('COHORT_SECRET_MISSING', `cannot read the cluster secret file ${config.secretFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  const fromEnv = env[SECRET_ENV];
  if (fromEnv) return fromEnv;
  if (config.tls) return undefined;
  throw new CohortError(
    'COHORT_SECRET_MISSING',
    `the cluster channel refuses to start without a shared secret: pass --secret-file FILE, set cluster.secret (or cluster.secretFile) in the configuration, or set the environment variable ${SECRET_ENV}; ` +
      'alternatively configure cluster.tls with ca, cert and key for mutual TLS. Generate a secret with: openssl rand -base64 32 > cluster.secret',
  );
}
