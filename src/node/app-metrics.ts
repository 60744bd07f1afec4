/**
 * The app's own prom-client default registry, when it has one: the node's
 * `/.cohort/metrics` merges it, so one scrape gets the app's metrics and the
 * node's. The app's `prom-client` is resolved from the app module's
 * location (it may be another copy than Cohort's); an app without
 * prom-client, or with an empty default registry, adds nothing.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** What the node needs of a prom-client Registry. */
export interface RegistryLike {
  metrics(): Promise<string>;
  getSingleMetric(name: string): unknown;
  getMetricsAsArray(): readonly unknown[];
}

/** The app's prom-client global registry, or undefined when the app cannot import prom-client. */
export async function appDefaultRegistry(appModule: string): Promise<RegistryLike | undefined> {
  let resolved: string;
  try {
    resolved = createRequire(resolve(appModule)).resolve('prom-client');
  } catch {
    return undefined;
  }
  const mod = (await import(pathToFileURL(resolved).href)) as { register?: RegistryLike; default?: { register?: RegistryLike } };
  return mod.register ?? mod.default?.register;
}
