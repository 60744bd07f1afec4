/**
 * The owner side of a unit of work: a session's changes become one delta
 * (version + 1, tagged with the write, convergence.ts) sent to its holders —
 * or a full copy to a new holder, a drop to a former one; an unchanged session
 * becomes an access announcement; an invalidated one a tombstone sent to the
 * holders. A sync commit waits for the acknowledgement quorum (ack-quorum.ts).
 *
 * Invariant: only the owner (route = id suffix) increments a version.
 */
import type { ClusterChannel } from '../../cluster/types.js';
import type { Clock } from '../../util/clock.js';
import type { ReplicationConfig } from '../config.js';
import { SessionError, SessionErrorCode } from '../errors.js';
import type { CommitResult, SessionLogger } from '../contract.js';
import { shouldNotifyAccess } from '../model/expiry.js';
import type { Session } from '../model/session.js';
import { ackOutcome } from './ack-quorum.js';
import type { WriteTagger } from './convergence.js';
import type { DeltaBatcher } from './delta-batch.js';
import type { Holders } from './holders.js';
import type { Maintenance } from './maintenance.js';
import { emitAttributeChanges, type SessionEvents, type SessionReplicaStore } from './replica-store.js';
import type { ReplicationCounters } from './stats.js';
import { copyCodec, deltaCodec, destroyCodec, dropCodec } from './wire.js';

export interface OwnerCommitOptions {
  readonly route: () => string;
  readonly config: ReplicationConfig;
  readonly clock: Clock;
  readonly channel: ClusterChannel;
  readonly store: SessionReplicaStore;
  readonly holders: Holders;
  readonly tags: WriteTagger;
  readonly maintenance: Maintenance;
  /** Deltas of one event-loop turn, one message per peer (undefined: one message per delta). */
  readonly deltaBatcher: DeltaBatcher | undefined;
  readonly stats: ReplicationCounters;
  readonly events: SessionEvents;
  readonly log: SessionLogger;
  fireAndForget(p: Promise<unknown>, to: string): void;
}

export class OwnerCommit {
  constructor(private readonly o: OwnerCommitOptions) {}

  /** Sends the deltas batched in this event-loop turn now (close()). */
  flush(): void {
    this.o.deltaBatcher?.flush();
  }

  /** Stores and replicates what changed in `session` (or its access); `sync`: wait for the holders. */
  async commit(session: Session, sync: boolean): Promise<CommitResult> {
    const { config, store, holders, stats, maintenance } = this.o;
    const now = this.o.clock.now();
    if (session.invalidated) return this.commitDestroy(session, sync, now);
    const prevBase = session.previousBase;
    const wasNew = session.isNew;
    const d = session.takeDelta(this.o.tags.next(this.o.clock.wallNow()));
    if (!d) {
      session.lastAccess = now;
      if (shouldNotifyAccess(session, now, config)) {
        session.accessNotifiedAt = now;
        maintenance.noteAccess(session.base, session.version);
      }
      return { version: session.version, changed: false, replicatedTo: [], failed: {} };
    }
    if (prevBase !== undefined) {
      store.table.bury(prevBase, d.v, now);
      holders.rename(prevBase, d.i);
    }
    session.lastAccess = now;
    session.accessNotifiedAt = now;
    store.table.set(session);
    maintenance.forgetAccess(session.base);
    if (wasNew) this.o.events.emit('created', { id: session.id, replica: false });
    emitAttributeChanges(this.o.events, session, d, false);

    const { deltaTo, copyTo, dropTo } = holders.targetsForCommit(session.base, session.route);
    const mode = sync ? 'applied' : 'async';
    const sends: Array<Promise<void>> = [];
    const ids: string[] = [];
    for (const m of deltaTo) {
      ids.push(m.id);
      sends.push(
        this.o.deltaBatcher
          ? this.o.deltaBatcher.send(m.id, d, sync)
          : this.o.channel.send(m.id, deltaCodec.topic, deltaCodec.encode([d]), { mode, timeoutMs: config.syncTimeoutMs }),
      );
      stats.deltasSent++;
    }
    if (copyTo.length > 0) {
      const copy = copyCodec.encode([session.snapshot()]);
      for (const m of copyTo) {
        ids.push(m.id);
        sends.push(this.o.channel.send(m.id, copyCodec.topic, copy, { mode, timeoutMs: config.syncTimeoutMs }));
        stats.copiesSent++;
      }
    }
    for (const m of dropTo) this.o.fireAndForget(this.o.channel.send(m.id, dropCodec.topic, dropCodec.encode([session.base])), m.id);
    if (!sync) {
      sends.forEach((p, i) => this.o.fireAndForget(p, ids[i]!));
      // Async: no acknowledgement awaited, but the delta is handed to the sockets before the
      // response goes out, so a kill -9 of this process right after the response still delivers it.
      if (config.asyncAwaitsWrite) await Promise.allSettled(sends);
      return { version: session.version, changed: true, replicatedTo: ids, failed: {} };
    }
    const { ok, failed, outcome } = await this.awaitQuorum(sends, ids);
    if (outcome === 'failed') {
      throw new SessionError(SessionErrorCode.ReplicationFailed, `sync commit of session ${session.base.slice(0, 6)}… v${session.version}: no peer acknowledged (${Object.values(failed).join('; ')})`);
    }
    return { version: session.version, changed: true, replicatedTo: [...ok], failed: { ...failed } };
  }

  /** Waits until {@link ackOutcome} decides; the lists keep filling as the rest answer (read them when resumed). */
  private awaitQuorum(sends: ReadonlyArray<Promise<void>>, ids: readonly string[]): Promise<{ ok: string[]; failed: Record<string, string>; outcome: 'acknowledged' | 'failed' }> {
    const policy = this.o.config.syncAcks;
    const ok: string[] = [];
    const failed: Record<string, string> = {};
    let nFailed = 0;
    return new Promise((resolve) => {
      let done = false;
      const check = (): void => {
        if (done) return;
        const outcome = ackOutcome({ targets: sends.length, acked: ok.length, failed: nFailed }, policy);
        if (outcome === 'pending') return;
        done = true;
        resolve({ ok, failed, outcome });
      };
      check();
      sends.forEach((p, i) =>
        p.then(
          () => {
            ok.push(ids[i]!);
            check();
          },
          (err: unknown) => {
            failed[ids[i]!] = String((err as Error)?.message ?? err);
            nFailed++;
            this.o.stats.sendFailures++;
            this.o.log.warn({ node: this.o.route(), to: ids[i], err: String(err) }, 'sync replication failed');
            check();
          },
        ),
      );
    });
  }

  private async commitDestroy(session: Session, sync: boolean, now: number): Promise<CommitResult> {
    const { store, config } = this.o;
    const known = session.version > 0 || store.table.get(session.base) === session;
    const prev = session.previousBase;
    if (!known) return { version: session.version, changed: false, replicatedTo: [], failed: {} };
    const v = session.version + 1;
    store.bury(session.base, v, 'invalidated', false);
    if (prev !== undefined) store.table.bury(prev, v, now);
    // [base, version, 1]: invalidated — replicas keep the tombstone as long as the owner does; an expiry sends 0.
    const destroyed = destroyCodec.encode(prev !== undefined ? [[session.base, v, 1], [prev, v, 1]] : [[session.base, v, 1]]);
    const targets = this.o.holders.holdersOf(session.base, session.route);
    const mode = sync ? 'applied' : 'async';
    const sends = targets.map((m) => this.o.channel.send(m.id, destroyCodec.topic, destroyed, { mode, timeoutMs: config.syncTimeoutMs }));
    if (!sync) {
      sends.forEach((p, i) => this.o.fireAndForget(p, targets[i]!.id));
      return { version: v, changed: true, replicatedTo: targets.map((m) => m.id), failed: {} };
    }
    const rs = await Promise.allSettled(sends);
    const failed: Record<string, string> = {};
    rs.forEach((r, i) => {
      if (r.status === 'rejected') failed[targets[i]!.id] = String(r.reason);
    });
    return { version: v, changed: true, replicatedTo: targets.filter((m) => !(m.id in failed)).map((m) => m.id), failed };
  }
}
