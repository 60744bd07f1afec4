/**
 * Whether a node that introduced itself (its hello, over an authenticated
 * connection) is admitted. Pure: identities in, a tagged decision out.
 */
import { addressKey } from './membership.js';
import { MemberState, type MemberInfo, type MemberView } from './types.js';

export type Admission =
  /** Another cluster sharing the address list or group: ignored, not an error. */
  | { readonly kind: 'other-cluster' }
  /** We dialed ourselves. */
  | { readonly kind: 'self' }
  /** Its route is in use: refuse with this message (COHORT_ROUTE_CONFLICT). */
  | { readonly kind: 'refuse'; readonly message: string }
  /** Admit; a stale holder of the same route (no open connection, or not alive) is replaced. */
  | { readonly kind: 'admit'; readonly replaces?: string };

/**
 * @param holder the live member currently using the newcomer's route, if any
 * @param holderConnected whether that holder has an open connection with us
 */
export function admit(self: MemberInfo, m: MemberInfo, holder: MemberView | undefined, holderConnected: boolean): Admission {
  if (m.clusterName !== self.clusterName) return { kind: 'other-cluster' };
  if (m.id === self.id) return { kind: 'self' };
  if (m.route === self.route) {
    return { kind: 'refuse', message: `route "${m.route}" is already used by node ${self.id} at ${addressKey(self.channelAddress)}; every node needs a unique route` };
  }
  if (!holder || holder.id === m.id) return { kind: 'admit' };
  if (holderConnected && holder.state === MemberState.Alive) {
    return { kind: 'refuse', message: `route "${m.route}" is already used by live node ${holder.id} at ${addressKey(holder.channelAddress)}; every node needs a unique route` };
  }
  return { kind: 'admit', replaces: holder.id };
}
