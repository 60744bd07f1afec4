/**
 * What travels between nodes. Short keys: a state transfer moves 100k of
 * these. All payloads are JSON (the channel's only currency).
 */
import type { JsonValue } from '../../cluster/types.js';
import { SessionError, SessionErrorCode } from '../errors.js';
import type { Attributes } from '../model/tracking.js';

/** Full copy of a session. */
export interface SessionSnapshot {
  /** base id */
  readonly i: string;
  /** owner route */
  readonly r: string;
  /** version */
  readonly v: number;
  /** created, wall ms (informative) */
  readonly c: number;
  /** max inactive interval, ms */
  readonly m: number;
  /** attributes */
  readonly a: Attributes;
  /** write tag of this version (convergence.ts); absent from peers that do not tag */
  readonly t?: string;
}

/** Changes of one commit: turns version `b` into version `v` (= b + 1). */
export interface SessionDelta {
  readonly i: string;
  readonly r: string;
  /** version the delta applies to */
  readonly b: number;
  readonly v: number;
  /** created (present when b = 0 or metadata changed) */
  readonly c?: number;
  /** max inactive interval, ms (present when b = 0 or metadata changed) */
  readonly m?: number;
  /** attributes set (whole top-level values) */
  readonly s?: Attributes;
  /** attributes removed */
  readonly d?: readonly string[];
  /** previous base id (id regeneration) */
  readonly p?: string;
  /** write tag of version `b` this delta was made from (a replica holding another write of `b` must not apply it) */
  readonly h?: string;
  /** write tag of version `v` */
  readonly t?: string;
}

export const Topic = {
  /** {d: SessionDelta[]} — deltas, in commit order */
  Delta: 'sessions.delta',
  /** {s: SessionSnapshot[]} — full copies (re-replication, gap repair) */
  Copy: 'sessions.copy',
  /** {a: [base, version][]} — accessed without change (keeps replicas from expiring it) */
  Access: 'sessions.access',
  /** {x: [base, version, invalidated (1) | expired (0)][]} — destroyed by the owner (no flag: invalidated) */
  Destroy: 'sessions.destroy',
  /** {x: base[]} — drop your copy: you are no longer a holder (backup mode) */
  Drop: 'sessions.drop',
  /** request {i: base[]} → {s: SessionSnapshot[], t: [base, version][]} */
  Get: 'sessions.get',
  /** request {t: transferId, k: cursor, n: limit, w: 'all'|'placed'} → {s: SessionSnapshot[], k: next|null, total} */
  Transfer: 'sessions.transfer',
  /** request {t, k, n} → {e: [base, version, tomb(0|1), owner route, write tag][], k: next|null} */
  Digest: 'sessions.digest',
  /** {} — the sender is leaving gracefully: stop placing copies on it (applied before its handoff) */
  Leaving: 'sessions.leaving',
  /**
   * request {e: HandoffEntry[]} → {ok, moved, need, refused: base[]} — a leaving owner hands
   * sessions over; `ok`: the receiver owns them now, `need`: send the full session.
   */
  Handoff: 'sessions.handoff',
} as const;

/** One session in a handoff request: the route change (delta) or, when the receiver lacked the version, the full copy. */
export interface HandoffEntry {
  /** route change v → v + 1 naming the receiver (no attributes) */
  readonly d?: SessionDelta;
  /** full copy at v + 1 naming the receiver */
  readonly s?: SessionSnapshot;
  /** ms since the last access on the leaving owner (a duration, never a timestamp) */
  readonly t: number;
}

/** Checks the shape of a handoff entry received from a peer. */
export function asHandoffEntry(v: JsonValue, topic: string): HandoffEntry {
  if (!isObj(v) || typeof v.t !== 'number' || !Number.isFinite(v.t) || (v.d === undefined) === (v.s === undefined)) bad(topic, 'malformed handoff entry');
  if (v.d !== undefined) asDelta(v.d, topic);
  if (v.s !== undefined) asSnapshot(v.s, topic);
  return v as unknown as HandoffEntry;
}

export type VersionPair = [string, number];

function bad(topic: string, why: string): never {
  throw new SessionError(SessionErrorCode.BadMessage, `${topic}: ${why}`);
}

function isObj(v: JsonValue | undefined): v is { [k: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks the shape of a snapshot received from a peer. */
export function asSnapshot(v: JsonValue, topic: string): SessionSnapshot {
  if (!isObj(v) || typeof v.i !== 'string' || typeof v.r !== 'string' || typeof v.v !== 'number' || typeof v.m !== 'number' || !isObj(v.a)) {
    bad(topic, 'malformed session snapshot');
  }
  return v as unknown as SessionSnapshot;
}

export function asDelta(v: JsonValue, topic: string): SessionDelta {
  if (!isObj(v) || typeof v.i !== 'string' || typeof v.r !== 'string' || typeof v.b !== 'number' || typeof v.v !== 'number' || v.v !== v.b + 1) {
    bad(topic, 'malformed session delta');
  }
  if (v.s !== undefined && !isObj(v.s)) bad(topic, 'delta.s must be an object');
  if (v.d !== undefined && !Array.isArray(v.d)) bad(topic, 'delta.d must be an array');
  return v as unknown as SessionDelta;
}

export function field<T extends JsonValue>(payload: JsonValue, key: string, topic: string, check: (x: JsonValue | undefined) => boolean): T {
  if (!isObj(payload)) bad(topic, 'payload must be an object');
  const x = payload[key];
  if (!check(x)) bad(topic, `bad field ${key}`);
  return x as T;
}

export const isArray = (x: JsonValue | undefined): boolean => Array.isArray(x);
