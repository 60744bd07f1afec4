/**
 * Deltas committed in the same event-loop turn go to each peer as one
 * message (`sessions.delta` carries a list): under load a node finishes many
 * requests per turn, and one message per request cost an envelope, a sealed
 * frame and a write system call each — most of what replication added to a
 * request (see docs/sessions.md, figures). The batch leaves in the check
 * phase of the same turn (setImmediate), before the responses of those
 * requests are released: a commit awaits its batch's send, so a kill -9
 * right after a response still finds the delta handed to the socket first.
 *
 * Per peer one batch at a time, in commit order; a batch holding a sync
 * commit is sent in mode `applied` (its async commits then wait for the
 * acknowledgement too — only when both kinds end in the same turn).
 */
import type { ClusterChannel, JsonValue } from '../../cluster/types.js';
import { Topic, type SessionDelta } from './wire.js';

interface Batch {
  readonly deltas: JsonValue[];
  sync: boolean;
  readonly waiters: Array<{ resolve: () => void; reject: (e: unknown) => void }>;
}

export class DeltaBatcher {
  private batches = new Map<string, Batch>();
  private scheduled = false;
  /** Messages sent and deltas carried, for the stats. */
  messages = 0;
  deltas = 0;

  constructor(
    private readonly channel: ClusterChannel,
    private readonly timeoutMs: () => number,
    private readonly schedule: (fn: () => void) => void = (fn) => void setImmediate(fn),
  ) {}

  /** Queues `d` for member `to`; resolves like `channel.send` of its batch (written for async, applied for sync). */
  send(to: string, d: SessionDelta, sync: boolean): Promise<void> {
    let b = this.batches.get(to);
    if (!b) {
      b = { deltas: [], sync: false, waiters: [] };
      this.batches.set(to, b);
    }
    b.deltas.push(d as unknown as JsonValue);
    b.sync ||= sync;
    const batch = b;
    const p = new Promise<void>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    if (!this.scheduled) {
      this.scheduled = true;
      this.schedule(() => this.flush());
    }
    return p;
  }

  /** Sends every pending batch now. */
  flush(): void {
    this.scheduled = false;
    const all = this.batches;
    this.batches = new Map();
    for (const [to, b] of all) {
      this.messages++;
      this.deltas += b.deltas.length;
      let sent: Promise<void>;
      try {
        sent = this.channel.send(to, Topic.Delta, { d: b.deltas }, { mode: b.sync ? 'applied' : 'async', timeoutMs: this.timeoutMs() });
      } catch (err) {
        sent = Promise.reject(err);
      }
      sent.then(
        () => {
          for (const w of b.waiters) w.resolve();
        },
        (err: unknown) => {
          for (const w of b.waiters) w.reject(err);
        },
      );
    }
  }
}
