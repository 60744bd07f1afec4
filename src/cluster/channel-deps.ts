/**
 * What a cluster node (channel.ts) takes from outside (all injectable, all
 * optional), the non-fatal error events it reports, and the built-in
 * membership services with their typed dependencies.
 */
import type { Clock, Random } from '../util/clock.js';
import { MembershipRegistry } from './membership.js';
import { createStaticMembership } from './membership-static.js';
import { createDnsMembership, type DnsResolver } from './membership-dns.js';
import { createMulticastMembership, type UdpSocketFactory } from './membership-multicast.js';
import type { NetFactory } from './net.js';

/** A non-fatal problem reported by the node (it keeps running). */
export interface ClusterErrorEvent {
  readonly code: string;
  readonly message: string;
  /** Member id concerned, if known. */
  readonly peer?: string;
  /** Remote socket address, if relevant. */
  readonly remote?: string;
  /** COHORT_CLUSTER_VERSION: the protocol versions of this node and of the peer. */
  readonly localVersion?: number;
  readonly peerVersion?: number;
}

/** Everything the node takes from outside; all optional. */
export interface ClusterNodeDeps {
  /** Timers, monotonic time, and wall time for event timestamps and startTime. */
  readonly clock?: Clock;
  /** Probe targets, the node id, handshake nonces. */
  readonly random?: Random;
  /** Environment for COHORT_CLUSTER_SECRET; default process.env (read at creation, not import). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly net?: NetFactory;
  /** Membership services by type; default: static, multicast, dns (with dnsResolver and createUdpSocket below). */
  readonly membershipRegistry?: MembershipRegistry;
  readonly dnsResolver?: DnsResolver;
  readonly createUdpSocket?: UdpSocketFactory;
  /** Source file name for config errors. */
  readonly configFile?: string;
  /** The cluster protocol version the handshake speaks (default PROTOCOL_VERSION; tests: a node of another version mid-rollout). */
  readonly protocolVersion?: number;
}

/** A registry with the built-in membership services, given their dependencies (default: the system's DNS and UDP). */
export function defaultMembershipRegistry(deps: Pick<ClusterNodeDeps, 'dnsResolver' | 'createUdpSocket'> = {}): MembershipRegistry {
  return new MembershipRegistry()
    .register('static', createStaticMembership)
    .register('multicast', createMulticastMembership, deps.createUdpSocket ? { createUdpSocket: deps.createUdpSocket } : {})
    .register('dns', createDnsMembership, deps.dnsResolver ? { dnsResolver: deps.dnsResolver } : {});
}
