/**
 * When a sync commit is acknowledged enough (pure): the owner sends a change
 * to `targets` holders and counts who applied it and who failed.
 *
 *  - `all`: wait until every holder answered; acknowledged if at least one
 *    applied it (the others are reported as failed), failed if none did;
 *  - `one`: acknowledged as soon as one holder applied it (enough to survive
 *    the owner's death; the rest continue in the background), failed when
 *    every holder failed;
 *  - no holder at all (a node alone): acknowledged at once.
 */
export type AckPolicy = 'all' | 'one';

export interface AckTally {
  /** Holders the change was sent to. */
  readonly targets: number;
  /** Holders that applied it so far. */
  readonly acked: number;
  /** Holders that failed so far. */
  readonly failed: number;
}

export type AckOutcome = 'pending' | 'acknowledged' | 'failed';

export function ackOutcome(t: AckTally, policy: AckPolicy): AckOutcome {
  if (t.targets === 0) return 'acknowledged';
  if (policy === 'one' && t.acked > 0) return 'acknowledged';
  if (t.acked + t.failed < t.targets) return 'pending';
  return t.acked > 0 ? 'acknowledged' : 'failed';
}
