/**
 * The fleet's shared runtime state as a set of last-writer-wins registers,
 * one per balancer's own settings and one per member (identified by its URL,
 * which every balancer in front of the same nodes agrees on; a route can be
 * changed by the operator, a URL cannot).
 *
 * Every local change gets a stamp (Lamport version, writer): the version is
 * one above the highest this balancer has seen, the writer is the balancer's
 * cluster route (random per process start). Stamps order totally — version
 * first, then writer — so any two balancers that have seen the same entries
 * hold the same value for every key, in whatever order the entries came
 * (the same idea as sessions' convergence.ts: a version, a tie-break, no
 * wall clock).
 *
 * Pure: no sockets, no timers. The channel adapter (fleet-sync.ts) feeds
 * entries in and applies what this file says to apply.
 */
import { z } from 'zod';

/** Settings of a member the operator can change in the manager (what a register carries). */
export const memberValueSchema = z.strictObject({
  route: z.string().min(1).max(256),
  loadfactor: z.number().int().min(1).max(100),
  lbset: z.number().int().min(0).max(99),
  max: z.number().int().positive(),
  /** Seconds. */
  retry: z.number().min(0),
  status: z.array(z.enum(['disabled', 'drain', 'hot-standby', 'ignore-errors', 'stopped'])).max(5),
  /** The member was added in a manager (not configured or discovered): every balancer adds it. */
  added: z.boolean().optional(),
});
export type MemberValue = z.infer<typeof memberValueSchema>;

export const balancerValueSchema = z.strictObject({
  method: z.string().min(1).max(64),
  stickysession: z.string().min(1).max(512),
  stickysessionsep: z.string().min(1).max(8),
  nofailover: z.boolean(),
  maxattempts: z.number().int().min(0),
  timeout: z.number().min(0),
  forcerecovery: z.boolean(),
});
export type BalancerValue = z.infer<typeof balancerValueSchema>;

const stampSchema = z.strictObject({
  version: z.number().int().positive(),
  writer: z.string().min(1).max(128),
});
export type Stamp = z.infer<typeof stampSchema>;

export const entrySchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('member'), balancer: z.string().min(1).max(256), url: z.string().url().max(2048), stamp: stampSchema, removed: z.literal(true).optional(), value: memberValueSchema.optional() })
    .refine((e) => (e.removed === true) !== (e.value !== undefined), { message: 'a member entry carries either removed or a value' }),
  z.strictObject({ kind: z.literal('balancer'), balancer: z.string().min(1).max(256), stamp: stampSchema, value: balancerValueSchema }),
]);
export type Entry = z.infer<typeof entrySchema>;

/** The register an entry writes. */
export function keyOf(e: Pick<Entry, 'kind' | 'balancer'> & { url?: string }): string {
  return e.kind === 'balancer' ? `b\0${e.balancer}` : `m\0${e.balancer}\0${e.url}`;
}

/** Total order of stamps: version, then writer (plain string order). Negative when a < b. */
export function compareStamps(a: Stamp, b: Stamp): number {
  if (a.version !== b.version) return a.version - b.version;
  return a.writer < b.writer ? -1 : a.writer > b.writer ? 1 : 0;
}

/**
 * A version further than this above the highest one seen is refused as
 * forged: a legitimate balancer moves the fleet's clock one step per change,
 * and an entry stamped near Number.MAX_SAFE_INTEGER would win every
 * register forever.
 */
export const MAX_VERSION_JUMP = 100_000;

/** What to do with an incoming entry. */
export type Verdict =
  | { readonly kind: 'apply' }
  /** The register already holds this very stamp (a re-delivery, or a state exchange's overlap). */
  | { readonly kind: 'duplicate' }
  /** Older than the register's stamp: refused. */
  | { readonly kind: 'stale'; readonly current: Stamp }
  | { readonly kind: 'forged'; readonly reason: string };

/** Who sent an entry, as the authenticated channel names it. */
export interface Sender {
  readonly route: string;
  /** The sender's published role (meta `role`). */
  readonly role: string | undefined;
}

/**
 * Checks that an entry could come from this sender. `direct`: the entry is a
 * change the sender announces as its own (topic fleet.change); entries in a
 * state exchange may be anyone's (the sender relays what it has merged).
 */
export function checkSender(entry: Entry, from: Sender, direct: boolean, highestSeen: number): string | undefined {
  if (from.role !== 'balancer') return `sender ${from.route} is not a balancer (role ${from.role ?? 'none'})`;
  if (direct && entry.stamp.writer !== from.route) return `entry written by ${entry.stamp.writer} but sent by ${from.route}`;
  if (entry.stamp.version > highestSeen + MAX_VERSION_JUMP) return `version ${entry.stamp.version} jumps more than ${MAX_VERSION_JUMP} past the highest seen (${highestSeen})`;
  return undefined;
}

/** The decision for one entry against the register's current entry. Pure. */
export function judge(current: Entry | undefined, incoming: Entry): Verdict {
  if (current === undefined) return { kind: 'apply' };
  const c = compareStamps(incoming.stamp, current.stamp);
  if (c > 0) return { kind: 'apply' };
  if (c === 0) return { kind: 'duplicate' };
  return { kind: 'stale', current: current.stamp };
}

/**
 * The registers one balancer holds, and its Lamport clock. Not thread-like
 * in any way: callers run on one event loop.
 */
export class FleetLedger {
  private readonly entries = new Map<string, Entry>();
  private clock = 0;

  constructor(readonly self: string) {}

  /** The highest version seen (the Lamport clock). */
  get highest(): number {
    return this.clock;
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): Entry | undefined {
    return this.entries.get(key);
  }

  /** Stamps a local change and stores it; returns the entry to send. */
  write(change: Omit<Entry, 'stamp'>): Entry {
    this.clock++;
    const entry = { ...change, stamp: { version: this.clock, writer: this.self } } as Entry;
    this.entries.set(keyOf(entry), entry);
    return entry;
  }

  /** Judges an entry and stores it when it wins. The clock moves past every version seen, won or not. */
  receive(entry: Entry): Verdict {
    const key = keyOf(entry);
    const verdict = judge(this.entries.get(key), entry);
    if (entry.stamp.version > this.clock) this.clock = entry.stamp.version;
    if (verdict.kind === 'apply') this.entries.set(key, entry);
    return verdict;
  }

  /** Seeds the registers and the clock from disk (fleet-store.ts) before anything is received. */
  restore(highest: number, entries: readonly Entry[]): void {
    for (const e of entries) {
      this.entries.set(keyOf(e), e);
      if (e.stamp.version > this.clock) this.clock = e.stamp.version;
    }
    if (highest > this.clock) this.clock = highest;
  }

  /** Every register's entry (for a state exchange). */
  all(): Entry[] {
    return [...this.entries.values()];
  }
}
