/**
 * Membership services: pluggable discovery of candidate peers. A service only
 * proposes channel addresses (and, for multicast, evidence of life of members
 * already verified); the node verifies every candidate over the authenticated
 * channel before it becomes a member. Services register by name in a
 * {@link MembershipRegistry} owned by the cluster node (no module globals).
 */
import { CohortError } from '../errors.js';
import type { Clock } from '../util/clock.js';
import type { ClusterKeys } from './crypto.js';
import type { MemberInfo } from './types.js';

export interface Address {
  readonly host: string;
  readonly port: number;
}

export function addressKey(a: Address): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}



/** What a membership service may tell the node. */
export interface DiscoverySink {
  /** Channel addresses worth verifying (the node dials those it is not connected to). */
  candidates(addrs: readonly Address[], source: string): void;
  /**
   * Evidence of life of a member from outside the channel (e.g. an
   * authenticated multicast heartbeat). With `maxChannelSilenceMs` it counts
   * only while the channel itself heard from the member within that many ms:
   * a member heard on this side path alone is then still suspected, once its
   * channel has been silent that long (plus `timing.suspectAfterMs`).
   */
  evidence(id: string, incarnation: number, maxChannelSilenceMs?: number): void;
  /** Whether a member id is already verified and not gone. */
  isKnown(id: string): boolean;
  /** A non-fatal problem (resolver failure, bad datagram...). */
  error(err: CohortError): void;
}

/** What the node gives every service. */
export interface MembershipNodeContext {
  readonly clock: Clock;
  /** This node's current identity (incarnation changes). */
  self(): MemberInfo;
  /** Keys for authenticating datagrams; undefined under TLS-only security. */
  readonly keys: ClusterKeys | undefined;
}

/** A service's context: the node's, plus the typed dependencies it was registered with (e.g. a fake resolver). */
export interface MembershipContext<D = unknown> extends MembershipNodeContext {
  readonly deps: D;
}

export interface MembershipService {
  readonly type: string;
  start(sink: DiscoverySink): Promise<void>;
  /** Stops timers and sockets. Safe to call twice. */
  close(): void;
}

export type MembershipFactory<C = unknown, D = unknown> = (config: C, ctx: MembershipContext<D>) => MembershipService;

interface Registration {
  readonly factory: MembershipFactory<unknown, unknown>;
  readonly deps: unknown;
}

/** Membership services by name, each with its typed dependencies. One per cluster node. */
export class MembershipRegistry {
  private readonly factories = new Map<string, Registration>();

  /** Registers a service; `deps` (typed by the factory) are handed to it at creation. */
  register<C, D extends object = Record<never, never>>(type: string, factory: MembershipFactory<C, D>, deps?: D): this {
    if (this.factories.has(type)) throw new CohortError('COHORT_MEMBERSHIP_DUPLICATE', `membership service ${type} is already registered`);
    this.factories.set(type, { factory: factory as MembershipFactory<unknown, unknown>, deps: deps ?? {} });
    return this;
  }

  has(type: string): boolean {
    return this.factories.has(type);
  }

  types(): string[] {
    return [...this.factories.keys()];
  }

  create(config: { readonly type: string }, ctx: MembershipNodeContext): MembershipService {
    const r = this.factories.get(config.type);
    if (!r) throw new CohortError('COHORT_MEMBERSHIP_UNKNOWN', `unknown membership type ${JSON.stringify(config.type)}; registered: ${this.types().join(', ')}`);
    return r.factory(config, { ...ctx, deps: r.deps });
  }
}
