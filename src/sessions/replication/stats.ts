/** The replicated manager's counters, shared by its parts (replica store, commit, maintenance) and read by getStats(). */
import type { HandoffReport } from './handoff.js';
import type { TransferReport } from './state-transfer.js';

export interface ReplicationStats {
  readonly sessions: number;
  readonly owned: number;
  readonly tombstones: number;
  readonly deltasSent: number;
  readonly deltasApplied: number;
  readonly staleRejected: number;
  readonly gapsBuffered: number;
  readonly gapRepairs: number;
  readonly copiesSent: number;
  readonly copiesInstalled: number;
  readonly takeOvers: number;
  readonly expired: number;
  readonly sendFailures: number;
  /** Copies replaced here by another write of the same version (partition conflicts, see convergence.ts). */
  readonly conflictsResolved: number;
  /** Deltas made from another write of the version held (answered by fetching the sender's copy). */
  readonly divergedDeltas: number;
  readonly lastTransfer: TransferReport | undefined;
  /** Sessions this node became the owner of through a leaving peer's handoff. */
  readonly handoffsReceived: number;
  /** This node's own graceful handoff (set by close()). */
  readonly lastHandoff: HandoffReport | undefined;
}

/** What the parts of the manager increment. */
export type ReplicationCounters = { -readonly [K in keyof ReplicationStats]: ReplicationStats[K] };

export function newCounters(): ReplicationCounters {
  return {
    sessions: 0, owned: 0, tombstones: 0, deltasSent: 0, deltasApplied: 0, staleRejected: 0, gapsBuffered: 0, gapRepairs: 0,
    copiesSent: 0, copiesInstalled: 0, takeOvers: 0, expired: 0, sendFailures: 0, conflictsResolved: 0, divergedDeltas: 0, lastTransfer: undefined,
    handoffsReceived: 0, lastHandoff: undefined,
  };
}
