/**
 * Wires the fleet into `cohort balancer` when the balancer joined the cluster
 * (config `cluster`): sync over the channel, the manager's changes out, peers'
 * changes in and saved, a dashboard panel and /metrics counters.
 */
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Balancer } from '../balancer/balancer.js';
import type { MethodRegistry } from '../balancer/methods/index.js';
import type { ClusterChannel } from '../cluster/types.js';
import type { ManagerServer } from '../manager/manager-server.js';
import { systemClock, type Clock } from '../util/clock.js';
import { FleetSource } from './fleet-source.js';
import { FleetStore } from './fleet-store.js';
import { FleetSync, type FleetCounters } from './fleet-sync.js';

export interface FleetHost {
  readonly balancers: ReadonlyMap<string, Balancer>;
  readonly cluster?: ClusterChannel | undefined;
}

/** The file that keeps the fleet's registers for a config file. */
export function fleetPathFor(configFile: string): string {
  return `${configFile}.fleet.json`;
}

/**
 * Starts the fleet when `host` joined a cluster (undefined when there is none). `storePath`: where the
 * registers' stamps are kept (`fleetPathFor(config)`; undefined: in memory only, e.g. quick mode).
 */
export async function startFleet(host: FleetHost, manager: ManagerServer | undefined, methods: MethodRegistry, log: Logger, storePath?: string, clock: Clock = systemClock): Promise<FleetSync | undefined> {
  const channel = host.cluster;
  if (!channel) return undefined;
  const fleet = new FleetSync({
    channel,
    balancers: () => host.balancers,
    methods,
    clock,
    log,
    ...(manager && manager.persisted ? { persist: () => manager.saveState() } : {}),
    ...(manager ? { markAdded: (m) => manager.markAdded(m) } : {}),
    ...(storePath !== undefined ? { store: new FleetStore(storePath) } : {}),
  });
  if (manager) {
    manager.onChanges({ changed: (s) => void fleet.localChange(s) });
    manager.addSource(new FleetSource(fleet, clock));
    registerFleetMetrics(manager.metrics.registry, fleet.counters);
  }
  await fleet.start();
  log.info({ peers: fleet.peers().map((p) => p.route), highest: fleet.ledger.highest }, 'fleet: sharing state with the other balancers');
  return fleet;
}

/** `cohort_fleet_*_total` counters (docs/metrics.md), read from the fleet's own counters at scrape time. */
export function registerFleetMetrics(registry: Registry, counters: Readonly<FleetCounters>): void {
  new Counter({
    name: 'cohort_fleet_refused_total',
    help: 'State changes from peer balancers refused, by reason (stale, forged, invalid).',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ reason: 'stale' }, counters.stale);
      this.inc({ reason: 'forged' }, counters.forged);
      this.inc({ reason: 'invalid' }, counters.invalid);
    },
  });
  const simple = (name: string, help: string, read: () => number) =>
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read()); } });
  simple('cohort_fleet_applied_total', 'State changes from peer balancers applied here.', () => counters.applied);
  simple('cohort_fleet_sent_total', 'This balancer\'s state changes delivered to a peer (one per peer).', () => counters.sent);
  simple('cohort_fleet_exchanges_total', 'State exchanges (catch-up) completed with a peer balancer.', () => counters.exchanges);
  new Counter({
    name: 'cohort_fleet_evidence_total',
    help: 'Member failure reports: sent to peers, acted on (member avoided), outweighed by fresher evidence here.',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ outcome: 'sent' }, counters.evidenceSent);
      this.inc({ outcome: 'avoided' }, counters.evidenceAvoided);
      this.inc({ outcome: 'ignored' }, counters.evidenceIgnored);
    },
  });
}
