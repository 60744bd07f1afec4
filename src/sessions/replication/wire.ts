/**
 * What travels between nodes. Short keys: a state transfer moves 100k of
 * these. All payloads are JSON (the channel's only currency).
 *
 * One codec per message topic ({@link TopicCodec}: encode, and decode with
 * validation): what arrives from a peer is checked before anything reads it,
 * and a malformed message fails with COHORT_SESSION_BAD_MESSAGE naming the topic.
 */
import type { JsonValue } from '../../cluster/types.js';
import type { DigestEntry } from './convergence.js';
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
  /** request {} → {n: sessions destroyed by the receiver} — clear what you own (express-session `Store.clear()`, cluster-clear.ts) */
  Clear: 'sessions.clear',
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

/** A destroyed session: [base, version, 1 (invalidated) | 0 (expired)]; without the flag: invalidated. */
export type DestroyEntry = [string, number, number?];

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

const isString = (x: JsonValue | undefined): x is string => typeof x === 'string';
const isCount = (x: JsonValue | undefined): x is number => typeof x === 'number' && Number.isFinite(x);

/** A typed record as the JSON it is by construction (only JSON-compatible values are stored, json-value.ts). */
function json(v: object): JsonValue {
  return v as unknown as JsonValue;
}

/** Checks a [base, version] pair. */
export function asVersionPair(v: JsonValue, topic: string): VersionPair {
  if (!Array.isArray(v) || v.length < 2 || !isString(v[0]) || !isCount(v[1])) bad(topic, 'malformed [base, version] pair');
  return [v[0], v[1]];
}

/** Checks a destroy entry. */
export function asDestroyEntry(v: JsonValue, topic: string): DestroyEntry {
  if (!Array.isArray(v) || v.length < 2 || v.length > 3 || !isString(v[0]) || !isCount(v[1]) || (v.length === 3 && v[2] !== 0 && v[2] !== 1)) {
    bad(topic, 'malformed destroy entry');
  }
  return v.length === 3 ? [v[0], v[1], v[2] as number] : [v[0], v[1]];
}

/** Checks a digest entry: [base, version, tombstone (0|1), owner route, write tag?]. */
export function asDigestEntry(v: JsonValue, topic: string): DigestEntry {
  if (!Array.isArray(v) || v.length < 4 || v.length > 5 || !isString(v[0]) || !isCount(v[1]) || (v[2] !== 0 && v[2] !== 1) || !isString(v[3]) || (v.length === 5 && !isString(v[4]))) {
    bad(topic, 'malformed digest entry');
  }
  return v.length === 5 ? [v[0], v[1], v[2], v[3], v[4] as string] : [v[0], v[1], v[2], v[3]];
}

function asBase(v: JsonValue, topic: string): string {
  if (!isString(v)) bad(topic, 'malformed session base');
  return v;
}

/** A list under `key`, each element checked by `each`. */
function listOf<T>(payload: JsonValue, key: string, topic: string, each: (v: JsonValue, topic: string) => T): T[] {
  return field<JsonValue[]>(payload, key, topic, isArray).map((x) => each(x, topic));
}

/** One message topic: how its payload is written, and checked when it arrives. */
export interface TopicCodec<M> {
  readonly topic: string;
  encode(message: M): JsonValue;
  /** Throws COHORT_SESSION_BAD_MESSAGE if the payload is malformed. */
  decode(payload: JsonValue): M;
}

function listCodec<T>(topic: string, key: string, each: (v: JsonValue, topic: string) => T): TopicCodec<readonly T[]> {
  return {
    topic,
    encode: (list) => ({ [key]: list.map((x) => (typeof x === 'object' && x !== null ? json(x) : (x as JsonValue))) }),
    decode: (payload) => listOf(payload, key, topic, each),
  };
}

/** `{d: SessionDelta[]}`, in commit order. */
export const deltaCodec = listCodec<SessionDelta>(Topic.Delta, 'd', asDelta);
/** `{s: SessionSnapshot[]}`. */
export const copyCodec = listCodec<SessionSnapshot>(Topic.Copy, 's', asSnapshot);
/** `{a: [base, version][]}`. */
export const accessCodec = listCodec<VersionPair>(Topic.Access, 'a', asVersionPair);
/** `{x: [base, version, 1|0][]}`. */
export const destroyCodec = listCodec<DestroyEntry>(Topic.Destroy, 'x', asDestroyEntry);
/** `{x: base[]}`. */
export const dropCodec = listCodec<string>(Topic.Drop, 'x', asBase);
/** Get request `{i: base[]}`. */
export const getRequestCodec = listCodec<string>(Topic.Get, 'i', asBase);

export interface GetReply {
  /** The copies held of the bases asked for. */
  readonly s: readonly SessionSnapshot[];
  /** The tombstones held of them. */
  readonly t: readonly VersionPair[];
}

/** Get reply `{s: SessionSnapshot[], t: [base, version][]}`. */
export const getReplyCodec: TopicCodec<GetReply> = {
  topic: Topic.Get,
  encode: (r) => ({ s: r.s.map(json), t: r.t.map((x) => [x[0], x[1]]) }),
  decode: (payload) => ({ s: listOf(payload, 's', Topic.Get, asSnapshot), t: listOf(payload, 't', Topic.Get, asVersionPair) }),
};

export interface DigestPage {
  readonly e: readonly DigestEntry[];
  /** Cursor of the next page; null: the last page. */
  readonly k: number | null;
}

/** Digest reply `{e: DigestEntry[], k: next|null}`. */
export const digestReplyCodec: TopicCodec<DigestPage> = {
  topic: Topic.Digest,
  encode: (p) => ({ e: p.e.map((x) => [...x] as JsonValue), k: p.k }),
  decode: (payload) => ({ e: listOf(payload, 'e', Topic.Digest, asDigestEntry), k: field<number | null>(payload, 'k', Topic.Digest, (x) => x === null || isCount(x)) }),
};

export interface HandoffReply {
  readonly ok: readonly string[];
  readonly moved: readonly string[];
  readonly need: readonly string[];
  readonly refused: readonly string[];
}

/** Handoff reply `{ok, moved, need, refused: base[]}`. */
export const handoffReplyCodec: TopicCodec<HandoffReply> = {
  topic: Topic.Handoff,
  encode: (r) => ({ ok: [...r.ok], moved: [...r.moved], need: [...r.need], refused: [...r.refused] }),
  decode: (payload) => ({
    ok: listOf(payload, 'ok', Topic.Handoff, asBase),
    moved: listOf(payload, 'moved', Topic.Handoff, asBase),
    need: listOf(payload, 'need', Topic.Handoff, asBase),
    refused: listOf(payload, 'refused', Topic.Handoff, asBase),
  }),
};

/** Handoff request `{e: HandoffEntry[]}`. */
export const handoffRequestCodec = listCodec<HandoffEntry>(Topic.Handoff, 'e', asHandoffEntry);

/** Clear request `{}`: it carries nothing, but must be an object. */
export type ClearRequest = Readonly<Record<string, never>>;

export const clearRequestCodec: TopicCodec<ClearRequest> = {
  topic: Topic.Clear,
  encode: () => ({}),
  decode: (payload) => {
    if (!isObj(payload)) bad(Topic.Clear, 'payload must be an object');
    return {};
  },
};

export interface ClearReply {
  /** Sessions the receiver destroyed. */
  readonly n: number;
}

/** Clear reply `{n: count}`. */
export const clearReplyCodec: TopicCodec<ClearReply> = {
  topic: Topic.Clear,
  encode: (r) => ({ n: r.n }),
  decode: (payload) => ({ n: field<number>(payload, 'n', Topic.Clear, (x) => isCount(x) && x >= 0) }),
};
