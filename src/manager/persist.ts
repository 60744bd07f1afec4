import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { z } from 'zod';
import type { Balancer } from '../balancer/balancer.js';
import type { BalancerSpec } from '../config/balancer-schema.js';
import type { MethodRegistry } from '../balancer/methods/index.js';
import { applyMemberSettings, balancerChangeSchema, balancerSettings, changeBalancer, memberSettings, type MemberSettings } from './actions.js';
import { ManagerError } from './errors.js';

/**
 * The manager's changes survive a restart (httpd's BalancerPersist, HAProxy's
 * server-state file): after every change the members' operator settings are
 * written to `<config>.state.json`, atomically (temp file, fsync, rename), and
 * re-applied at start. As in httpd, a balancer's saved state is used only
 * while its section in the config file is unchanged (a hash of it is saved
 * with it): edit the config and the config wins.
 */

const persistedMember = z.object({
  url: z.string(),
  route: z.string(),
  loadfactor: z.number(),
  lbset: z.number(),
  max: z.number(),
  retry: z.number(),
  status: z.array(z.string()),
});

const stateFileSchema = z.object({
  version: z.literal(1),
  savedAt: z.string(),
  balancers: z.array(z.object({ name: z.string(), confighash: z.string(), settings: balancerChangeSchema.optional(), members: z.array(persistedMember) })),
});
export type StateFile = z.infer<typeof stateFileSchema>;

/** Hash of a balancer's section as configured (not as changed at runtime). */
export function configHash(spec: BalancerSpec): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 32);
}

/** The state file that belongs to a config file. */
export function statePathFor(configFile: string): string {
  return `${configFile}.state.json`;
}

export class StateStore {
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly path: string) {}

  /** Reads the state file; undefined when there is none. A corrupt file is an error, not silently ignored. */
  async load(): Promise<StateFile | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ManagerError('COHORT_MANAGER_STATE_UNREADABLE', `cannot read ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const parsed = stateFileSchema.safeParse(JSON.parse(text));
      if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      return parsed.data;
    } catch (err) {
      throw new ManagerError('COHORT_MANAGER_STATE_UNREADABLE', `${this.path} is not a Cohort state file: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Writes the current settings of every balancer (serialized; resolves when on disk). */
  save(balancers: Iterable<Balancer>, specs: ReadonlyMap<string, BalancerSpec>): Promise<void> {
    const state: StateFile = {
      version: 1,
      savedAt: new Date().toISOString(),
      balancers: [...balancers]
        .filter((b) => specs.has(b.name))
        .map((b) => ({ name: b.name, confighash: configHash(specs.get(b.name)!), settings: balancerSettings(b), members: b.members.map((m) => ({ ...memberSettings(m), status: [...m.flags] as string[] })) })),
    };
    const text = `${JSON.stringify(state, null, 2)}\n`;
    const next = this.chain.then(() => this.writeAtomic(text));
    this.chain = next.catch(() => {});
    return next;
  }

  private async writeAtomic(text: string): Promise<void> {
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      const fh = await open(tmp, 'w', 0o644);
      try {
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}

/**
 * Re-applies saved settings to balancers whose configured members still hash
 * the same. Returns the names applied and the names skipped (config changed).
 */
export function applyState(state: StateFile, balancers: ReadonlyMap<string, Balancer>, specs: ReadonlyMap<string, BalancerSpec>, methods: MethodRegistry): { applied: string[]; skipped: string[] } {
  const applied: string[] = [];
  const skipped: string[] = [];
  for (const saved of state.balancers) {
    const b = balancers.get(saved.name);
    const spec = specs.get(saved.name);
    if (!b || !spec) continue;
    if (saved.confighash !== configHash(spec)) {
      skipped.push(saved.name);
      continue;
    }
    if (saved.settings) changeBalancer(b, saved.settings, methods);
    applyMemberSettings(b, saved.members as MemberSettings[]);
    applied.push(saved.name);
  }
  return { applied, skipped };
}
