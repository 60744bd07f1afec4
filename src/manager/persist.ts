import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { AtomicFile } from '../util/atomic-file.js';
import { z } from 'zod';
import type { Balancer } from '../balancer/balancer.js';
import type { Member } from '../balancer/member.js';
import type { MethodRegistry } from '../balancer/methods/index.js';
import { memberHcheckSchema, type BalancerSpec } from '../config/balancer-schema.js';
import { balancerChangeSchema, balancerSettings, changeBalancer, memberSettings, memberSpecOf, setMemberSettings, type MemberSettings } from './actions.js';
import { ManagerError } from './errors.js';

/**
 * The manager's changes survive a restart (httpd's BalancerPersist, HAProxy's
 * server-state file): after every change the operator's settings are written
 * to `<config>.state.json`, atomically (temp file, fsync, rename), and
 * re-applied at start and after a reload.
 *
 * What is saved is a delta against the config file, so members that someone
 * else manages (e.g. nodes the balancer discovers from the cluster) are never
 * saved, re-added or removed by it:
 * - for each member of the config: its current settings, or `removed`;
 * - the members the manager added;
 * - the balancer's own settings.
 * A config member is identified by its configured URL and route, and keeps
 * that identity when the operator changes its route.
 *
 * As in httpd, a balancer's saved state is used only while its section in the
 * config file is unchanged (its hash is saved with it): edit the config and
 * the config wins.
 */

const persistedMember = z.object({
  url: z.string(),
  route: z.string(),
  loadfactor: z.number(),
  lbset: z.number(),
  max: z.number(),
  retry: z.number(),
  status: z.array(z.string()),
  hcheck: memberHcheckSchema.optional(),
});

const stateFileSchema = z.object({
  version: z.literal(1),
  savedAt: z.string(),
  balancers: z.array(z.object({
    name: z.string(),
    confighash: z.string(),
    settings: balancerChangeSchema.optional(),
    /** Config members by identity (`<url> <route>` as configured): settings now, or removed. */
    configured: z.array(z.object({ id: z.string(), removed: z.boolean().optional(), now: persistedMember.optional() })),
    /** Members added in the manager. */
    added: z.array(persistedMember),
  })),
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

function specIdentity(m: BalancerSpec['members'][number]): string {
  const url = new URL(m.url);
  return `${url.href} ${m.route ?? url.host}`;
}

/**
 * Which runtime member is which: configured (by identity) or added by the
 * manager. Anything else (discovered nodes) is not the manager's to save.
 */
export class MemberLedger {
  private readonly configured = new WeakMap<Member, string>();
  private readonly added = new WeakSet<Member>();

  /** Binds the config's members to the runtime ones (at start and after a reload, before applying state). */
  bindConfig(balancers: ReadonlyMap<string, Balancer>, specs: ReadonlyMap<string, BalancerSpec>): void {
    for (const [name, spec] of specs) {
      const b = balancers.get(name);
      if (!b) continue;
      for (const ms of spec.members) {
        const id = specIdentity(ms);
        const m = b.members.find((x) => `${x.url.href} ${x.route}` === id);
        if (m) this.configured.set(m, id);
      }
    }
  }

  markAdded(m: Member): void {
    this.added.add(m);
  }

  /** The state to save for the balancers that are in the config. */
  snapshot(balancers: Iterable<Balancer>, specs: ReadonlyMap<string, BalancerSpec>): StateFile {
    const out: StateFile['balancers'] = [];
    for (const b of balancers) {
      const spec = specs.get(b.name);
      if (!spec) continue;
      const byId = new Map<string, Member>();
      for (const m of b.members) {
        const id = this.configured.get(m);
        if (id !== undefined) byId.set(id, m);
      }
      out.push({
        name: b.name,
        confighash: configHash(spec),
        settings: balancerSettings(b),
        configured: spec.members.map((ms) => {
          const id = specIdentity(ms);
          const m = byId.get(id);
          return m ? { id, now: { ...memberSettings(m), status: [...m.flags] as string[] } } : { id, removed: true };
        }),
        added: b.members.filter((m) => this.added.has(m)).map((m) => ({ ...memberSettings(m), status: [...m.flags] as string[] })),
      });
    }
    return { version: 1, savedAt: new Date().toISOString(), balancers: out };
  }

  /**
   * Re-applies saved state to balancers whose config section still hashes the
   * same. Returns the names applied, skipped (config changed) and any member
   * that could not be restored.
   */
  apply(state: StateFile, balancers: ReadonlyMap<string, Balancer>, specs: ReadonlyMap<string, BalancerSpec>, methods: MethodRegistry): { applied: string[]; skipped: string[]; problems: string[] } {
    const applied: string[] = [];
    const skipped: string[] = [];
    const problems: string[] = [];
    for (const saved of state.balancers) {
      const b = balancers.get(saved.name);
      const spec = specs.get(saved.name);
      if (!b || !spec) continue;
      if (saved.confighash !== configHash(spec)) {
        skipped.push(saved.name);
        continue;
      }
      if (saved.settings) changeBalancer(b, saved.settings, methods);
      const byId = new Map<string, Member>();
      for (const m of b.members) {
        const id = this.configured.get(m);
        if (id !== undefined) byId.set(id, m);
      }
      for (const c of saved.configured) {
        const m = byId.get(c.id);
        if (!m) continue;
        if (c.removed) b.removeMember(m.route);
        else if (c.now) setMemberSettings(m, c.now as MemberSettings);
      }
      for (const a of saved.added) {
        if (b.members.some((m) => this.added.has(m) && m.url.href === a.url && m.route === a.route)) continue;
        try {
          this.added.add(b.addMember(memberSpecOf(a as MemberSettings)));
        } catch (err) {
          problems.push(`${saved.name}/${a.route}: ${(err as Error).message}`);
        }
      }
      b.emit('change', { balancer: b.name, what: 'saved manager changes applied' });
      applied.push(saved.name);
    }
    return { applied, skipped, problems };
  }
}

export class StateStore {
  private readonly file: AtomicFile;

  constructor(readonly path: string) {
    this.file = new AtomicFile(path);
  }

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

  /** Writes a state (serialized with earlier saves; resolves when it is on disk). */
  save(state: StateFile): Promise<void> {
    return this.file.write(`${JSON.stringify(state, null, 2)}\n`);
  }
}
