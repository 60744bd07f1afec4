/**
 * The state owner's ledger of `max` slots leased to workers (`--workers N`).
 *
 * Invariant: for every member, the slots granted to all workers together never
 * exceed the member's `max` — a worker starts a request on a member only
 * inside its own lease, so `max: 150` holds across the whole balancer. Slots
 * move in blocks, not per request: a worker asks for a block when its lease
 * runs low and gives back what it does not use, so in a steady state no
 * message crosses processes per request.
 *
 * Under contention (nothing free and a worker below its fair share waits), the
 * ledger recalls workers above the fair share (⌊max ÷ workers⌋) down to it,
 * even if they want more themselves; they return unused slots at once and
 * freed ones as requests end. If every worker is at or below the fair share
 * and one is below, slots are free, so a waiting worker is always served.
 *
 * Pure: no timers, no processes; the plumbing sends the returned actions.
 */

export type WorkerId = number;

export type LeaseAction =
  /** Adds `n` slots to the worker's lease of `key`. */
  | { readonly kind: 'grant'; readonly worker: WorkerId; readonly key: string; readonly n: number }
  /** Asks the worker to shrink its lease of `key` to `target` slots, returning slots as they are unused. */
  | { readonly kind: 'recall'; readonly worker: WorkerId; readonly key: string; readonly target: number }
  /** Asks the worker to return the slots of `key` it holds unused now (once; it keeps what is in use). */
  | { readonly kind: 'spare'; readonly worker: WorkerId; readonly key: string };

interface Entry {
  max: number;
  readonly grants: Map<WorkerId, number>;
  /** Outstanding wants, in arrival order. */
  readonly wants: Map<WorkerId, number>;
  /** Recall targets sent and not yet reached. */
  readonly recalled: Map<WorkerId, number>;
  /** Workers with a request waiting (not a mere top-up): others are asked to spare unused slots. */
  readonly waiting: Set<WorkerId>;
  /** Workers asked to spare since their last return or grant. */
  readonly spared: Set<WorkerId>;
}

/** Slots per lease block: large enough that leases rarely move, small enough to leave slots for every worker. */
export function blockSize(max: number, workers: number): number {
  return Math.max(1, Math.min(16, Math.floor(max / (4 * Math.max(1, workers)))));
}

export class LeaseLedger {
  private readonly entries = new Map<string, Entry>();
  private readonly workers = new Set<WorkerId>();

  /** `count`: the configured number of workers (block size and fair share follow it, not who is up now). */
  constructor(private readonly count: number) {}

  /** Slots of `key` leased to `worker` now. */
  held(worker: WorkerId, key: string): number {
    return this.entries.get(key)?.grants.get(worker) ?? 0;
  }

  /** Slots of `key` leased to all workers together (≤ its max, except just after max was lowered). */
  granted(key: string): number {
    const e = this.entries.get(key);
    let sum = 0;
    if (e) for (const n of e.grants.values()) sum += n;
    return sum;
  }

  get keys(): IterableIterator<string> {
    return this.entries.keys();
  }

  private fair(e: Entry): number {
    return Math.floor(e.max / Math.max(1, this.count));
  }

  /** A worker joined: it gets a first block of every member, when free. */
  addWorker(worker: WorkerId): LeaseAction[] {
    this.workers.add(worker);
    const out: LeaseAction[] = [];
    for (const [key, e] of this.entries) {
      const n = Math.min(blockSize(e.max, this.count), this.free(e));
      if (n > 0) out.push(this.grant(e, worker, key, n));
    }
    return out;
  }

  /** A worker left (drained or died): its slots are free again. */
  removeWorker(worker: WorkerId): LeaseAction[] {
    this.workers.delete(worker);
    const out: LeaseAction[] = [];
    for (const [key, e] of this.entries) {
      e.grants.delete(worker);
      e.wants.delete(worker);
      e.recalled.delete(worker);
      e.waiting.delete(worker);
      e.spared.delete(worker);
      out.push(...this.satisfy(key, e));
    }
    return out;
  }

  /**
   * Sets a member's max (new member, manager or reload change). A lower max
   * recalls every worker to its fair share of the new max; a member gone from
   * `keys` is forgotten.
   */
  sync(maxes: ReadonlyMap<string, number>): LeaseAction[] {
    const out: LeaseAction[] = [];
    for (const key of [...this.entries.keys()]) if (!maxes.has(key)) this.entries.delete(key);
    for (const [key, max] of maxes) {
      let e = this.entries.get(key);
      if (e === undefined) {
        e = { max, grants: new Map(), wants: new Map(), recalled: new Map(), waiting: new Set(), spared: new Set() };
        this.entries.set(key, e);
        for (const w of this.workers) {
          const n = Math.min(blockSize(max, this.count), this.free(e));
          if (n > 0) out.push(this.grant(e, w, key, n));
        }
        continue;
      }
      if (e.max === max) continue;
      e.max = max;
      if (this.granted(key) > max) {
        const target = this.fair(e);
        for (const [w, n] of e.grants) if (n > target) out.push(this.recall(e, w, key, target));
      } else out.push(...this.satisfy(key, e));
    }
    return out;
  }

  /** A worker asks for `n` more slots of `key`; `waiting`: a request of its waits for one (not a top-up). */
  want(worker: WorkerId, key: string, n: number, waiting = false): LeaseAction[] {
    const e = this.entries.get(key);
    if (e === undefined || !this.workers.has(worker) || n <= 0) return [];
    // A want the worker sent before it read a recall of this lease: the holder dropped it on the recall and asks
    // again once the recall is over. Granting it would add slots the holder does not count against the recall's
    // target — the recall would never end here, and the worker would never be asked to spare (a deadlock the
    // model in test/balancer/leases.test.ts found with max 2 over 3 workers).
    if (e.recalled.has(worker)) return [];
    e.wants.set(worker, n);
    if (waiting) e.waiting.add(worker);
    return this.satisfy(key, e);
  }

  /** A worker's want is void (no request of its waits any more): no grant for it, no waiting mark. */
  withdrawn(worker: WorkerId, key: string): LeaseAction[] {
    const e = this.entries.get(key);
    if (e === undefined) return [];
    e.wants.delete(worker);
    e.waiting.delete(worker);
    return [];
  }

  /** A worker gave back `n` slots of `key`. */
  returned(worker: WorkerId, key: string, n: number): LeaseAction[] {
    const e = this.entries.get(key);
    if (e === undefined) return [];
    const left = Math.max(0, (e.grants.get(worker) ?? 0) - n);
    if (left === 0) e.grants.delete(worker);
    else e.grants.set(worker, left);
    const target = e.recalled.get(worker);
    if (target !== undefined && left <= target) e.recalled.delete(worker);
    e.spared.delete(worker);
    return this.satisfy(key, e);
  }

  private free(e: Entry): number {
    let sum = 0;
    for (const n of e.grants.values()) sum += n;
    return Math.max(0, e.max - sum);
  }

  private grant(e: Entry, worker: WorkerId, key: string, n: number): LeaseAction {
    e.grants.set(worker, (e.grants.get(worker) ?? 0) + n);
    e.waiting.delete(worker);
    e.spared.delete(worker);
    return { kind: 'grant', worker, key, n };
  }

  /** A recalled worker's own want is dropped (the holder drops it too): it asks again once the recall is over. */
  private recall(e: Entry, worker: WorkerId, key: string, target: number): LeaseAction {
    e.recalled.set(worker, target);
    e.wants.delete(worker);
    e.waiting.delete(worker);
    return { kind: 'recall', worker, key, target };
  }

  /** Serves outstanding wants from free slots; recalls from workers above the fair share when a worker below it waits. */
  private satisfy(key: string, e: Entry): LeaseAction[] {
    const out: LeaseAction[] = [];
    for (const [w, n] of e.wants) {
      if (e.recalled.has(w)) continue;
      const give = Math.min(n, this.free(e));
      if (give <= 0) break;
      const waited = e.waiting.has(w);
      out.push(this.grant(e, w, key, give));
      if (give === n) e.wants.delete(w);
      else {
        e.wants.set(w, n - give);
        // Granted in part: its requests still wait, so the others are asked to spare below.
        if (waited) e.waiting.add(w);
      }
    }
    const fair = this.fair(e);
    const starving = [...e.wants.keys()].some((w) => (e.grants.get(w) ?? 0) < Math.max(1, fair));
    if (starving) {
      for (const [w, n] of e.grants) {
        if (n > fair && e.recalled.get(w) !== fair) out.push(this.recall(e, w, key, fair));
      }
    }
    // A request waits while others may hold slots they don't use (up to two blocks each, by the
    // hysteresis): ask them once to give those back, so that max is reachable, not only never exceeded.
    if (e.waiting.size > 0 && this.free(e) === 0) {
      for (const [w, n] of e.grants) {
        if (n > 0 && !e.waiting.has(w) && !e.spared.has(w) && !e.recalled.has(w)) {
          e.spared.add(w);
          out.push({ kind: 'spare', worker: w, key });
        }
      }
    }
    return out;
  }
}
