/**
 * A worker's side of one member's lease of `max` slots (see lease-ledger.ts).
 * The worker's engine treats `held` as the member's max: the picker never
 * starts a request beyond it, so the owner's bound holds globally.
 *
 * Hysteresis keeps leases still in a steady state: the worker asks for a block
 * when fewer than half a block is left (or a request waits), and gives back
 * only on its periodic tick, when two blocks or more stayed unused over the
 * whole interval (busy swings from 0 to its peak within microseconds, so
 * giving back at each release would churn a block per few dozen requests).
 * Other workers that need slots get them sooner through recall and spare.
 * Pure: takes the member's busy count, returns what to send.
 */

export type HolderMessage =
  /** `waiting`: a request waits for a slot (the owner then asks other workers to spare unused ones). */
  | { readonly kind: 'want'; readonly n: number; readonly waiting: boolean }
  | { readonly kind: 'return'; readonly n: number }
  /** The want sent is void: no request waits for it any more (the owner forgets it and the waiting mark). */
  | { readonly kind: 'withdraw' };

export class LeaseHolder {
  held = 0;
  /** A want was sent and not yet answered by a grant. */
  private wanting = false;
  /** That want said a request waits. */
  private wantedWaiting = false;
  /** Set by a recall: shrink to this many slots as they become unused. */
  private target: number | undefined;
  /** The most slots in use since the last tick. */
  private peak = 0;

  constructor(public block: number) {}

  /** The owner granted `n` slots. */
  granted(n: number): void {
    this.held += n;
    this.wanting = false;
  }

  /**
   * A request started (busy already counts it) or requests wait for this member (`waiting`; `need`: how many).
   * A waiting want asks for all of them at once, not one block per round trip: a burst on a worker whose lease
   * is used up is served within one or two round trips (with `timeout: 0` it has LEASE_WAIT_MS for them).
   */
  acquired(busy: number, waiting = false, need = 0): HolderMessage | undefined {
    if (busy > this.peak) this.peak = busy;
    if (this.target !== undefined) return undefined;
    // One want at a time, except that a request now waiting turns a pending top-up into a waiting want: the owner
    // asks other workers to spare only for those, and a top-up it could not serve stays unanswered.
    if (this.wanting && (this.wantedWaiting || !waiting)) return undefined;
    if (waiting || this.held - busy < Math.ceil(this.block / 2)) {
      this.wanting = true;
      this.wantedWaiting = waiting;
      return { kind: 'want', n: waiting ? Math.max(this.block, need) : this.block, waiting };
    }
    return undefined;
  }

  /** The owner recalled this lease down to `target`. */
  recalled(target: number, busy: number): HolderMessage | undefined {
    this.target = target;
    this.wanting = false;
    return this.give(busy);
  }

  /** The owner asks for the slots unused now (another worker has a request waiting). */
  spare(busy: number): HolderMessage | undefined {
    if (this.target !== undefined) return this.give(busy);
    const n = this.held - busy;
    if (n <= 0) return undefined;
    this.held -= n;
    return { kind: 'return', n };
  }

  /** A request on this member ended (busy no longer counts it): only a recall gives slots back here. */
  released(busy: number): HolderMessage | undefined {
    return this.target !== undefined ? this.give(busy) : undefined;
  }

  /**
   * Before the tick, when no request waits for this member: a want still unanswered is withdrawn. Left standing
   * it would be granted later to a worker with nothing to run on the slots, and the owner would keep treating
   * this worker as waiting, never asking it to spare for another worker's waiting requests.
   */
  withdraw(): HolderMessage | undefined {
    if (!this.wanting) return undefined;
    this.wanting = false;
    return { kind: 'withdraw' };
  }

  /** The periodic tick: gives back what stayed unused over the whole interval, beyond one block of headroom. */
  tick(busy: number): HolderMessage | undefined {
    // A want unanswered over a whole interval may ask again (the owner keeps one want per worker, so a repeat
    // only refreshes it): a want the owner could not take is not waited for forever.
    this.wanting = false;
    const peak = Math.max(this.peak, busy);
    this.peak = busy;
    if (this.target !== undefined) return this.give(busy);
    const unused = this.held - peak;
    if (unused < 2 * this.block) return undefined;
    const n = unused - this.block;
    this.held -= n;
    return { kind: 'return', n };
  }

  private give(busy: number): HolderMessage | undefined {
    const n = Math.min(this.held - busy, this.held - this.target!);
    if (this.held - Math.max(0, n) <= this.target!) this.target = undefined;
    if (n <= 0) return undefined;
    this.held -= n;
    return { kind: 'return', n };
  }
}
