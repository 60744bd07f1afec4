/**
 * Session configuration: one zod schema, defaults as named constants
 * (documented in docs/sessions.md), unknown keys rejected.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.js';

export const DEFAULT_MAX_INACTIVE_MS = 30 * 60_000;
export const DEFAULT_GRACE_MS = 120_000;
export const DEFAULT_ACCESS_NOTIFY_MS = 30_000;
export const DEFAULT_SWEEP_INTERVAL_MS = 5_000;
export const DEFAULT_FLUSH_INTERVAL_MS = 200;
export const DEFAULT_GAP_TIMEOUT_MS = 500;
export const DEFAULT_SYNC_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_ATTRIBUTE_BYTES = 256 * 1024;
export const DEFAULT_MAX_SESSION_BYTES = 1024 * 1024;
export const DEFAULT_BACKUPS = 1;
export const DEFAULT_TRANSFER_CHUNK = 1_000;
export const DEFAULT_TRANSFER_TIMEOUT_MS = 30_000;
export const DEFAULT_TRANSFER_REQUEST_TIMEOUT_MS = 10_000;
export const DEFAULT_TOMBSTONE_TTL_MS = 10 * 60_000;
export const DEFAULT_REPLICATION_BATCH = 500;
export const DEFAULT_ANTI_ENTROPY_INTERVAL_MS = 5 * 60_000;
export const DEFAULT_HANDOFF_TIMEOUT_MS = 5_000;

const ms = z.number().int().positive();

export const replicationConfigSchema = z.strictObject({
  mode: z.enum(['all-to-all', 'backup']).default('all-to-all'),
  /** backup mode: copies besides the owner's */
  backups: z.number().int().min(1).max(16).default(DEFAULT_BACKUPS),
  consistency: z.enum(['async', 'sync']).default('async'),
  /** sync commits: wait for every holder ('all') or the first one that applied ('one') */
  syncAcks: z.enum(['all', 'one']).default('all'),
  maxInactiveMs: ms.default(DEFAULT_MAX_INACTIVE_MS),
  graceMs: ms.default(DEFAULT_GRACE_MS),
  accessNotifyMs: ms.default(DEFAULT_ACCESS_NOTIFY_MS),
  sweepIntervalMs: ms.default(DEFAULT_SWEEP_INTERVAL_MS),
  flushIntervalMs: ms.default(DEFAULT_FLUSH_INTERVAL_MS),
  gapTimeoutMs: ms.default(DEFAULT_GAP_TIMEOUT_MS),
  syncTimeoutMs: ms.default(DEFAULT_SYNC_TIMEOUT_MS),
  maxAttributeBytes: ms.default(DEFAULT_MAX_ATTRIBUTE_BYTES),
  maxSessionBytes: ms.default(DEFAULT_MAX_SESSION_BYTES),
  transferChunk: z.number().int().min(1).max(100_000).default(DEFAULT_TRANSFER_CHUNK),
  transferTimeoutMs: ms.default(DEFAULT_TRANSFER_TIMEOUT_MS),
  transferRequestTimeoutMs: ms.default(DEFAULT_TRANSFER_REQUEST_TIMEOUT_MS),
  tombstoneTtlMs: ms.default(DEFAULT_TOMBSTONE_TTL_MS),
  replicationBatch: z.number().int().min(1).max(100_000).default(DEFAULT_REPLICATION_BATCH),
  /** periodic digest comparison with one random peer; 0 disables */
  antiEntropyIntervalMs: z.number().int().min(0).default(DEFAULT_ANTI_ENTROPY_INTERVAL_MS),
  /** graceful close: ms to hand owned sessions over to survivors before leaving; 0 disables the handoff */
  handoffTimeoutMs: z.number().int().min(0).default(DEFAULT_HANDOFF_TIMEOUT_MS),
  /** async commits wait until the channel wrote the delta (no ack), so a kill -9 after the response keeps it */
  asyncAwaitsWrite: z.boolean().default(true),
  /** fire created/destroyed/attributeChanged on replicas too */
  replicaEvents: z.boolean().default(false),
}).superRefine((c, ctx) => {
  if (c.graceMs <= c.accessNotifyMs + c.flushIntervalMs) {
    ctx.addIssue({ code: 'custom', path: ['graceMs'], message: `must exceed accessNotifyMs + flushIntervalMs (${c.accessNotifyMs + c.flushIntervalMs} ms), or replicas could expire live sessions` });
  }
});

export type ReplicationConfigInput = z.input<typeof replicationConfigSchema>;
export type ReplicationConfig = z.output<typeof replicationConfigSchema>;

export const cookieConfigSchema = z.strictObject({
  name: z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/).default('JSESSIONID'),
  /** `;name=value` path parameter accepted in place of the cookie */
  pathParameter: z.string().min(1).default('jsessionid'),
  path: z.string().default('/'),
  domain: z.string().optional(),
  httpOnly: z.boolean().default(true),
  sameSite: z.enum(['Lax', 'Strict', 'None']).default('Lax'),
  /** 'auto': Secure when the request came over TLS */
  secure: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  /** trust X-Forwarded-Proto: https for 'auto' (behind a TLS-terminating balancer) */
  trustProxy: z.boolean().default(false),
  /** persistent cookie lifetime in ms; omitted: a browser-session cookie */
  maxAgeMs: z.number().int().positive().optional(),
});

export type CookieConfigInput = z.input<typeof cookieConfigSchema>;
export type CookieConfig = z.output<typeof cookieConfigSchema>;

/** Parses with the schema, turning zod issues into a ConfigError naming key paths. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, where: string, file?: string): z.output<S> {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  throw new ConfigError(
    file,
    r.error.issues.map((i) => `${[where, ...i.path.map(String)].join('.')}: ${i.message}`),
  );
}
