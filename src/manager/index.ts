/**
 * The manager's public surface (for the package entry point): the server,
 * the CLI's factory, password hashing, the dashboard's data-source contract
 * and the two sources, the metrics registry owner, and the error class.
 */
export { ManagerServer, type ManagedBalancers, type ManagerServerOptions } from './manager-server.js';
export { createManager } from './start.js';
export { hashPassword, verifyPassword } from './password.js';
export { BalancerSource, type DashboardSource, type HistoryEntry } from './dashboard-source.js';
export { ClusterSource, type ClusterView } from './dashboard-source-cluster.js';
export { BalancerMetrics } from './metrics.js';
export { ManagerError, MANAGER_ERRORS, type ManagerErrorCode } from './errors.js';
