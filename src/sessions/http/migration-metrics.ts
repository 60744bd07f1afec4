/**
 * The migration outcomes as a Prometheus counter, read from the counts object at scrape time:
 * `cohort_session_migrations_total{outcome="imported|not-found|bad-signature|malformed|store-failed"}`.
 * The registry is the caller's (never prom-client's global one).
 */
import { Counter, type Registry } from 'prom-client';
import type { MigrationCounts, MigrationOutcome } from './migration.js';

export const MIGRATIONS_METRIC = 'cohort_session_migrations_total';

export function registerMigrationMetric(registry: Registry, counts: MigrationCounts): void {
  new Counter({
    name: MIGRATIONS_METRIC,
    help: 'Requests that presented the previous session layer\'s cookie, by outcome (imported, not-found, bad-signature, malformed, store-failed).',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const o of Object.keys(counts) as MigrationOutcome[]) this.inc({ outcome: o }, counts[o]);
    },
  });
}
