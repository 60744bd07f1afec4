/**
 * The discovery and security keys shared by the two products' `cluster`
 * sections (`cohort node`'s `node.cluster`, the balancer's `cluster`), and
 * their mapping onto the cluster library's configuration (src/cluster/config.ts).
 * Documented in docs/node.md, docs/configuration.md and docs/cluster.md.
 */
import { z } from 'zod';
import { isHostPort, parseHostPort } from '../util/address.js';

/** `host:port` (IPv6 in brackets), as the products' listen and member keys take it. */
export const hostPort = z.string().refine(isHostPort, 'expected host:port, e.g. 127.0.0.1:8080');

const port = z.number().int().min(1, 'expected a port 1..65535').max(65535, 'expected a port 1..65535');
const positiveMs = z.number().int().positive('expected milliseconds > 0');

/**
 * The message of a union of a scalar form and an object form: for an object,
 * the object form's own first issue (with its key), else `expected`. (Zod's
 * default for a union is a bare "Invalid input".)
 */
function unionError(expected: string) {
  return (iss: { code?: string; input?: unknown; errors?: readonly (readonly { code: string; path: readonly PropertyKey[]; message: string }[])[] }): string | undefined => {
    if (iss.code !== 'invalid_union') return undefined;
    if (typeof iss.input === 'object' && iss.input !== null && !Array.isArray(iss.input)) {
      const branch = iss.errors?.find((errs) => !errs.some((e) => e.code === 'invalid_type' && e.path.length === 0));
      const first = branch?.[0];
      if (first) return `${first.path.length > 0 ? `${first.path.map(String).join('.')}: ` : ''}${first.message}`;
    }
    return expected;
  };
}

/** The record types a product's `dns` accepts; `A+AAAA` (both families) is what a bare name means. */
export const DNS_TYPES = ['A', 'AAAA', 'A+AAAA', 'SRV'] as const;
export const DEFAULT_DNS_TYPE = 'A+AAAA';

/**
 * `dns`: a name (its A and AAAA records, both), or
 * `{name, type, port, intervalMs}`. `port` is the members' channel port for
 * A/AAAA answers; SRV records carry their own.
 */
export const dnsSpecSchema = z.union([
  z.string().min(1, 'expected a DNS name'),
  z
    .strictObject({
      name: z.string().min(1, 'expected a DNS name'),
      type: z.enum(DNS_TYPES, { error: 'expected A, AAAA, A+AAAA or SRV' }).optional(),
      port: port.optional(),
      intervalMs: positiveMs.optional(),
    })
    .refine((d) => !(d.type === 'SRV' && d.port !== undefined), { message: 'SRV records carry the members\' ports: port is only for A/AAAA answers', path: ['port'] }),
], { error: unionError('expected a DNS name, or {name, type: A|AAAA|A+AAAA|SRV, port, intervalMs}') });
export type DnsSpec = z.output<typeof dnsSpecSchema>;

/** `multicast`: `true` (Tomcat's defaults, 228.0.0.4:45564) or the library's multicast keys. */
export const multicastSpecSchema = z.union([
  z.boolean(),
  z.strictObject({
    address: z.string().min(1).optional(),
    port: port.optional(),
    intervalMs: positiveMs.optional(),
    dropTimeMs: positiveMs.optional(),
    ttl: z.number().int().min(0).max(255, 'expected a TTL 0..255').optional(),
    interface: z.string().min(1).optional(),
    bind: z.string().min(1).optional(),
    loopback: z.boolean().optional(),
  }),
], { error: unionError('expected true, false, or {address, port, intervalMs, dropTimeMs, ttl, interface, bind, loopback}') });
export type MulticastSpec = z.output<typeof multicastSpecSchema>;

/** `tls`: mutual TLS on the channel instead of (or besides) the shared secret; PEM file paths. */
export const clusterTlsSchema = z.strictObject({
  ca: z.string().min(1, 'expected the path of the cluster CA certificate (PEM)'),
  cert: z.string().min(1, 'expected the path of this process\'s certificate (PEM), signed by the cluster CA'),
  key: z.string().min(1, 'expected the path of this process\'s private key (PEM)'),
});
export type ClusterTlsSpec = z.output<typeof clusterTlsSchema>;

export interface DiscoverySection {
  readonly members: readonly string[];
  readonly multicast: MulticastSpec;
  readonly dns?: DnsSpec | undefined;
}

/**
 * The library's `membership` for a product's section: `dns` if set, else
 * `multicast` if on, else the static `members`. `dnsPort`: the channel port
 * for A/AAAA answers when the section names none (undefined = the library's
 * default, this process's own channel port).
 */
export function membershipFor(section: DiscoverySection, dnsPort?: number): Record<string, unknown> {
  const { dns, multicast } = section;
  if (dns !== undefined) {
    const spec = typeof dns === 'string' ? { name: dns } : dns;
    const rrtype = spec.type ?? DEFAULT_DNS_TYPE;
    const p = rrtype === 'SRV' ? undefined : (spec.port ?? dnsPort);
    return { type: 'dns', name: spec.name, rrtype, ...(p !== undefined ? { port: p } : {}), ...(spec.intervalMs !== undefined ? { intervalMs: spec.intervalMs } : {}) };
  }
  if (multicast !== false) return { type: 'multicast', ...(typeof multicast === 'object' ? withoutUndefined(multicast) : {}) };
  return { type: 'static', members: [...section.members] };
}

export interface SecuritySection {
  readonly secret?: string | undefined;
  readonly secretFile?: string | undefined;
  readonly tls?: ClusterTlsSpec | undefined;
}

/** The library's `secret`, `secretFile` and `tls` keys, those set only. */
export function securityFor(section: SecuritySection): Record<string, unknown> {
  return {
    ...(section.secret ? { secret: section.secret } : {}),
    ...(section.secretFile ? { secretFile: section.secretFile } : {}),
    ...(section.tls ? { tls: { ca: section.tls.ca, cert: section.tls.cert, key: section.tls.key } } : {}),
  };
}

/** A product's whole `cluster` section (as parsed by {@link clusterSectionShape}). */
export interface ClusterSection extends DiscoverySection, SecuritySection {
  readonly name: string;
  readonly listen: string;
  readonly advertise?: string | undefined;
}

/**
 * The library's channel configuration for a product's section: cluster name, listen and advertise
 * addresses, security and membership (see {@link membershipFor} for `dnsPort`). The caller adds
 * its route and meta.
 */
export function channelConfigFor(section: ClusterSection, dnsPort?: number) {
  return {
    clusterName: section.name,
    listen: parseHostPort(section.listen),
    ...(section.advertise ? { advertise: parseHostPort(section.advertise) } : {}),
    ...securityFor(section),
    membership: membershipFor(section, dnsPort),
  };
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * The keys both products' `cluster` sections have; each adds its own (the balancer: which
 * balancer learns the nodes) and its listen default (nodes 4000, the balancer an ephemeral port).
 */
export function clusterSectionShape(listenDefault: string) {
  return {
    name: z.string().default('cohort'),
    listen: hostPort.default(listenDefault),
    advertise: hostPort.optional(),
    secret: z.string().optional(),
    secretFile: z.string().optional(),
    /** Mutual TLS on the channel (PEM files, checked at load). */
    tls: clusterTlsSchema.optional(),
    members: z.array(hostPort).default([]),
    multicast: multicastSpecSchema.default(false),
    dns: dnsSpecSchema.optional(),
  };
}
