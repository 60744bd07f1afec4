/**
 * Cohort's public API: the balancer, the cluster layer, replicated sessions,
 * the node runtime and the manager. Everything else is internal.
 *
 *   import { BalancerServer, parseBalancerConfig } from 'cohort-cluster';
 *   import { createClusterNode, ReplicatedSessionManager, sessionMiddleware } from 'cohort-cluster';
 */

// Errors and time
export { CohortError, ConfigError } from './errors.js';
export { systemClock, ManualClock, seededRandom, type Clock, type Random } from './util/clock.js';

// The balancer
export { BalancerServer, type BalancerServerOptions, type ListeningAddress } from './proxy/balancer-server.js';
export { parseBalancerConfig, loadBalancerConfig } from './config/load.js';
export { balancerConfigSchema, DEFAULTS as BALANCER_DEFAULTS, type BalancerConfig, type BalancerConfigInput, type BalancerSpec, type MemberSpec } from './config/balancer-schema.js';
export { Balancer } from './balancer/balancer.js';
export { Member, MemberFlag, MemberHealth, type MemberSnapshot, type MemberTransition } from './balancer/member.js';
export { MethodRegistry, type LbMethod, type LbContext } from './balancer/methods/index.js';
export { decide, type Decision, type PickReason } from './balancer/picker.js';
export { extractRoute, parseStickyNames, type StickyNames, type StickyResult } from './balancer/sticky.js';
export { BalancerDiscovery } from './discovery/balancer-discovery.js';
export { importHttpd, type ImportResult } from './import/httpd.js';

// The cluster layer
export {
  createClusterNode,
  ClusterNode,
  parseClusterConfig,
  MemberState,
  formatMembersTable,
  type ClusterChannel,
  type ClusterConfigInput,
  type MemberInfo,
  type MemberView,
  type MembershipEvent,
  type SendOptions,
  type JsonValue,
} from './cluster/index.js';

// Replicated sessions
export {
  ReplicatedSessionManager,
  RedisSessionManager,
  RedisError,
  RedisErrorCode,
  sessionMiddleware,
  withSessions,
  cohortFastifySessions,
  cohortStore,
  CohortSessionStore,
  SessionError,
  type SessionManager,
  type SessionFacade,
  type ReplicationConfigInput,
  type RedisConfigInput,
} from './sessions/index.js';

// The node runtime
export { NodeRuntime, NodeState, HEALTH_PATH } from './node/runtime.js';
export { parseNodeConfig, type NodeConfig } from './node/config.js';

// The manager
export { ManagerServer, createManager, hashPassword, verifyPassword } from './manager/index.js';
