/**
 * Graceful handoff: before a node leaves the cluster it hands the ownership
 * of every session it owns to a surviving member, so that nothing is left
 * orphaned (owner gone, copies expiring by the replica rule, take-over only
 * when the user comes back).
 *
 * Leaving side ({@link handOff}):
 *  1. `sessions.leaving` to every peer (acknowledged): they stop placing
 *     copies on the leaving node, and in backup mode re-create the backups it
 *     held for their own sessions, while it is still reachable;
 *  2. per new owner (chosen by handoff-plan.ts), in batches, one request at a
 *     time: the route change v → v + 1 naming the receiver. The leaving node
 *     is still the owner, so it is the one that increments the version (the
 *     invariant "only the owner increments" holds). A receiver that lacks
 *     version v answers `need` and gets the full session at v + 1;
 *  3. on `ok` the leaving node applies the route change to its own copy (its
 *     Get answers then name the new owner); until then the session is locked:
 *     a commit of it on the leaving node fails (COHORT_SESSION_HANDED_OFF);
 *  4. rounds repeat for sessions created meanwhile or refused by a receiver
 *     (itself leaving), until none is left, `timeoutMs` passed or
 *     {@link MAX_HANDOFF_ROUNDS}. A batch that timed out is not offered to
 *     another member (the first may have applied it: two owners).
 *
 * Receiving side ({@link receiveHandoff}): applies the route change (or
 * installs the copy), becomes the owner — expiry by the owner rule with the
 * idle time the leaving node measured — and replicates the route change to
 * the session's holders as if it had committed it (delta to the backups that
 * held it under the previous owner, full copies to new backups, drops to the
 * others).
 */
import { MemberState, type ClusterChannel, type JsonValue, type MemberView } from '../../cluster/types.js';
import type { Clock } from '../../util/clock.js';
import type { CommitTargets, Holders } from './holders.js';
import { planHandoff } from './handoff-plan.js';
import type { SessionLogger } from '../contract.js';
import type { Session } from '../model/session.js';
import type { ReplicaStore } from './replica-store.js';
import { formatSessionId } from '../model/session-id.js';
import { copyCodec, deltaCodec, dropCodec, handoffReplyCodec, handoffRequestCodec, Topic, type HandoffEntry, type SessionDelta, type SessionSnapshot } from './wire.js';
import { jsonSize } from '../model/json-value.js';
import type { WriteTagger } from './convergence.js';
import { chainsOnto } from './ordering.js';
import { SessionError, SessionErrorCode } from '../errors.js';

/** Rounds of the leaving side: the first, then sessions created meanwhile or refused by a receiver. */
export const MAX_HANDOFF_ROUNDS = 4;
/** Approximate JSON characters of full copies per handoff request (far below the channel's 16 MiB frame limit). */
export const HANDOFF_MAX_COPY_BYTES = 4 * 1024 * 1024;

/** Summary of one graceful handoff (leaving side). */
export interface HandoffReport {
  /** Sessions this node owned when it started handing over, plus those created during the handoff. */
  readonly sessions: number;
  /** Sessions whose new owner acknowledged. */
  readonly handed: number;
  /** Sessions the receiver knew destroyed, or already held newer from another owner (taken over meanwhile). */
  readonly moved: number;
  /** Sessions not handed (no acknowledgement in time, or not offered before the deadline); left to take-over as before. */
  readonly failed: number;
  /** Members that received at least one session. */
  readonly members: number;
  /** Session-holding peers that could receive sessions when the handoff started (0: the node was alone). */
  readonly peers: number;
  readonly rounds: number;
  /** ms, start of the handoff to the last acknowledgement. */
  readonly ms: number;
}

/** What both sides work on: the manager's table and placement, and the steps that stay the manager's. */
export interface HandoffHost {
  readonly route: string;
  readonly channel: ClusterChannel;
  readonly clock: Clock;
  /** The manager's write tags: a route change is a write (convergence.ts). */
  readonly tags: WriteTagger;
  /** Held copies: the leaving side reads the owned ones, the receiving side applies and installs through it. */
  readonly store: ReplicaStore;
  readonly holders: Holders;
  /** Leaving side: bases whose ownership is being (or was) handed over; the manager fails their commits. */
  readonly locked: Set<string>;
  /** Receiving side: whether this node takes ownership (running, not leaving itself). */
  accepting(): boolean;
  /** Receiving side: `s` is owned here now (counted, `takenOver` event). */
  adopted(s: Session, previousId: string): void;
  /** Leaving side: the local copy of `base` now names its new owner. */
  handed(base: string): void;
  /** A replication send failed (counted and logged by the manager). */
  sendFailed(err: unknown, to: string): void;
}

/**
 * Members that can become owners: alive (not suspect), not leaving
 * themselves, and ready when any is (a node still in state transfer is the
 * last choice).
 */
export function handoffSurvivors(members: readonly MemberView[], isDeparting: (route: string) => boolean): MemberView[] {
  const peers = members.filter((m) => m.state === MemberState.Alive && !isDeparting(m.route));
  const ready = peers.filter((m) => m.meta.ready !== 'false');
  return ready.length > 0 ? ready : peers;
}

/** The leaving side's view of the host. */
interface HandoffSource {
  readonly route: string;
  now(): number;
  /** Sessions owned here that are neither locked nor handed yet, not expired. */
  owned(): Session[];
  /** Whether `s` is (still) one of {@link owned}: not destroyed, locked or changed id meanwhile. */
  eligible(s: Session): boolean;
  /** Whether `base` is still owned here (locked or not). */
  owns(base: string): boolean;
  /** Members that can become owners: alive, holding sessions, not leaving themselves. */
  survivors(): readonly MemberView[];
  /** Routes holding a copy of an owned session. */
  holdersOf(base: string): string[];
  /** From now on a commit of `base` here fails: its ownership is being handed over. */
  lock(base: string): void;
  unlock(base: string): void;
  /** The receiver acknowledged: apply the route change to the local copy. */
  handed(s: Session, routeChange: SessionDelta): void;
}

function sourceOf(h: HandoffHost): HandoffSource {
  const ownedHere = (s: Session | undefined, base: string): s is Session => s !== undefined && s.route === h.route && s.base === base;
  return {
    route: h.route,
    now: () => h.clock.now(),
    owned: () => {
      const out: Session[] = [];
      for (const base of h.store.table.bases()) {
        const s = h.store.table.get(base);
        if (ownedHere(s, base) && !h.locked.has(base)) out.push(s);
      }
      return out;
    },
    eligible: (s) => h.store.table.get(s.base) === s && ownedHere(s, s.base) && !h.locked.has(s.base),
    owns: (base) => ownedHere(h.store.table.get(base), base),
    survivors: () => handoffSurvivors(h.channel.members(), (r) => h.holders.isDeparting(r)),
    holdersOf: (base) => h.holders.holdersOf(base, h.route).map((m) => m.route),
    lock: (base) => void h.locked.add(base),
    unlock: (base) => void h.locked.delete(base),
    handed: (s, d) => {
      s.applyDelta(d);
      s.lastAccess = h.clock.now();
      h.holders.forget(s.base);
      h.handed(s.base);
    },
  };
}

export interface HandoffOptions {
  /** ms for the whole handoff. */
  readonly timeoutMs: number;
  /** ms for one request (bounded by what is left of timeoutMs). */
  readonly requestTimeoutMs: number;
  /** sessions per request */
  readonly batch: number;
}

interface Reply {
  readonly ok: readonly string[];
  readonly moved: readonly string[];
  readonly need: readonly string[];
  readonly refused: readonly string[];
}

/** The route change v → v + 1 is a write of the (still) owner: it gets a write tag like a commit (convergence.ts). */
function routeChange(s: Session, to: string, tag: string): SessionDelta {
  return { i: s.base, r: to, b: s.version, v: s.version + 1, m: s.maxInactiveMs, c: s.createdAt, ...(s.tag ? { h: s.tag } : {}), t: tag };
}

/** The same write as `d`, as a full copy (same version and tag). */
function fullCopy(s: Session, to: string, d: SessionDelta): SessionSnapshot {
  return { i: s.base, r: to, v: s.version + 1, c: s.createdAt, m: s.maxInactiveMs, a: s.rawAttributes, ...(d.t ? { t: d.t } : {}) };
}

function asReply(v: JsonValue): Reply {
  return handoffReplyCodec.decode(v);
}

/**
 * Hands every session owned here to a survivor (see the module comment).
 * Never throws; what could not be handed is counted as failed and logged.
 */
export async function handOff(host: HandoffHost, opts: HandoffOptions, log: SessionLogger): Promise<HandoffReport> {
  const channel = host.channel;
  const src = sourceOf(host);
  const started = src.now();
  const deadline = started + opts.timeoutMs;
  const left = () => deadline - src.now();
  const timeout = () => Math.max(1, Math.min(opts.requestTimeoutMs, left()));
  const offered = new Set<string>();
  const excluded = new Set<string>();
  const receivers = new Set<string>();
  const moved = new Set<string>();
  let handed = 0;
  let rounds = 0;
  const peers = src.survivors().length;
  if (peers > 0) {
    const r = await channel.broadcast(Topic.Leaving, {}, { mode: 'applied', timeoutMs: timeout() });
    for (const [id, err] of Object.entries(r.failed)) log.warn({ node: src.route, to: id, err }, 'handoff: a peer did not acknowledge that this node is leaving');
  }

  /** One request to `to` for `sessions`; applies the reply. Returns bases to send as full copies and whether to stop using `to`. */
  const offer = async (to: MemberView, sessions: readonly Session[], copies: boolean): Promise<{ need: Session[]; stop: boolean }> => {
    const changes = new Map<string, SessionDelta>();
    const now = src.now();
    const e: HandoffEntry[] = sessions.map((s) => {
      const d = routeChange(s, to.route, host.tags.next(host.clock.wallNow()));
      changes.set(s.base, d);
      return copies ? { s: fullCopy(s, to.route, d), t: now - s.lastAccess } : { d, t: now - s.lastAccess };
    });
    let reply: Reply;
    try {
      reply = asReply(await channel.request(to.id, Topic.Handoff, handoffRequestCodec.encode(e), { timeoutMs: timeout() }));
    } catch (err) {
      // Unknown whether it applied them: they stay locked here and are not offered to anyone else.
      log.warn({ node: src.route, to: to.route, sessions: sessions.length, err: String(err) }, 'handoff: a batch was not acknowledged');
      return { need: [], stop: true };
    }
    const byBase = new Map(sessions.map((s) => [s.base, s]));
    for (const b of reply.ok) {
      const s = byBase.get(b);
      if (!s) continue;
      byBase.delete(b);
      src.handed(s, changes.get(b)!);
      handed++;
      receivers.add(to.route);
    }
    for (const b of reply.moved) if (byBase.delete(b)) moved.add(b);
    for (const b of reply.refused) {
      if (byBase.delete(b)) {
        src.unlock(b);
        offered.delete(b);
      }
    }
    const need = copies ? [] : reply.need.flatMap((b) => byBase.get(b) ?? []);
    return { need, stop: reply.refused.length > 0 };
  };

  const toMember = async (to: MemberView, sessions: readonly Session[]): Promise<void> => {
    let i = 0;
    while (i < sessions.length) {
      if (left() <= 0) break;
      const chunk = sessions.slice(i, i + opts.batch).filter((s) => src.eligible(s));
      const end = i + opts.batch;
      if (chunk.length === 0) {
        i = end;
        continue;
      }
      for (const s of chunk) {
        src.lock(s.base);
        offered.add(s.base);
      }
      const r = await offer(to, chunk, false);
      let stop = r.stop;
      // Full copies for what the receiver lacked, bounded by size per request.
      for (let k = 0; k < r.need.length && !stop && left() > 0;) {
        let bytes = 0;
        const part: Session[] = [];
        while (k < r.need.length && (part.length === 0 || bytes < HANDOFF_MAX_COPY_BYTES)) {
          const s = r.need[k++]!;
          bytes += jsonSize(s.rawAttributes);
          part.push(s);
        }
        stop = (await offer(to, part, true)).stop;
      }
      i = end;
      if (stop) {
        excluded.add(to.route);
        break;
      }
    }
    // Not offered (deadline, or this member stopped answering): back to the pool for the next round.
    for (const s of sessions.slice(i)) if (!offered.has(s.base)) src.unlock(s.base);
  };

  const counted = new Set<string>();
  while (rounds < MAX_HANDOFF_ROUNDS && left() > 0) {
    const owned = src.owned();
    for (const s of owned) counted.add(s.base);
    const survivors = src.survivors().filter((m) => !excluded.has(m.route));
    if (owned.length === 0 || survivors.length === 0) break;
    rounds++;
    const plan = planHandoff(owned.map((s) => ({ base: s.base, holders: src.holdersOf(s.base) })), survivors.map((m) => m.route));
    const byBase = new Map(owned.map((s) => [s.base, s]));
    await Promise.all([...plan].map(([route, bases]) => toMember(survivors.find((m) => m.route === route)!, bases.map((b) => byBase.get(b)!))));
  }
  for (const s of src.owned()) counted.add(s.base);
  const total = counted.size;
  const ms = src.now() - started;
  // Destroyed or expired here meanwhile: neither handed nor failed.
  const failed = peers === 0 ? 0 : [...counted].filter((b) => !moved.has(b) && src.owns(b)).length;
  const report: HandoffReport = { sessions: total, handed, moved: moved.size, failed, members: receivers.size, peers, rounds, ms };
  if (peers === 0) {
    log.info({ node: src.route, ...report }, `handoff: no peer left, ${total} sessions not handed over`);
  } else if (failed > 0) {
    log.warn({ node: src.route, code: SessionErrorCode.HandoffIncomplete, ...report }, `handed ${handed} sessions to ${receivers.size} members in ${Math.round(ms)} ms, ${failed} failed (left to take-over)`);
  } else {
    log.info({ node: src.route, ...report }, `handed ${handed} sessions to ${receivers.size} members in ${Math.round(ms)} ms, ${failed} failed`);
  }
  return report;
}

// ---------------------------------------------------------------- receiving side

/** The receiving side's view of the host. */
interface HandoffTarget {
  readonly route: string;
  accepting(): boolean;
  /** The sender is leaving: place no more copies on it. */
  markDeparting(from: MemberView): void;
  tombstoned(base: string): boolean;
  held(base: string): Session | undefined;
  applyDelta(d: SessionDelta): Session;
  install(snapshot: SessionSnapshot): boolean;
  /** Now the owner: owner expiry from `idleMs`, placement relative to the previous owner; returns whom to tell. */
  adopt(s: Session, idleMs: number, previousOwner: string): CommitTargets;
  sendFailed(err: unknown, to: string): void;
}

function targetOf(h: HandoffHost): HandoffTarget {
  return {
    route: h.route,
    accepting: () => h.accepting(),
    markDeparting: (m) => h.holders.markDeparting(m.id),
    tombstoned: (b) => h.store.table.tombstone(b) !== undefined,
    held: (b) => h.store.table.get(b),
    applyDelta: (d) => h.store.applyDelta(d),
    install: (snap) => h.store.installCopy(snap),
    adopt: (s, idleMs, previousOwner) => {
      const now = h.clock.now();
      // The owner's expiry clock continues from the leaving owner's last access (a duration, clamped).
      s.lastAccess = now - Math.min(Math.max(0, idleMs), s.maxInactiveMs);
      s.accessNotifiedAt = now;
      h.holders.adoptFrom(s.base, previousOwner);
      h.adopted(s, formatSessionId(s.base, previousOwner));
      return h.holders.targetsForCommit(s.base, h.route);
    },
    sendFailed: (err, to) => h.sendFailed(err, to),
  };
}

/** Handles a `sessions.handoff` request; see the module comment. */
export function receiveHandoff(host: HandoffHost, from: MemberView, payload: JsonValue): JsonValue {
  const channel = host.channel;
  const t = targetOf(host);
  const entries = handoffRequestCodec.decode(payload);
  const baseOf = (e: HandoffEntry) => (e.d ?? e.s)!.i;
  if (!t.accepting()) return { ok: [], moved: [], need: [], refused: entries.map(baseOf) };
  t.markDeparting(from);
  const ok: string[] = [];
  const moved: string[] = [];
  const need: string[] = [];
  const adopted: Array<[Session, number, SessionDelta]> = [];
  for (const e of entries) {
    const target = (e.d ?? e.s)!;
    if (target.r !== t.route) throw new SessionError(SessionErrorCode.BadMessage, `${Topic.Handoff}: entry names route ${target.r}, not ${t.route}`);
    if (t.tombstoned(target.i)) {
      moved.push(target.i);
      continue;
    }
    const held = t.held(target.i);
    if (held && held.version >= target.v) {
      // A retried batch (already ours at that version), or someone took it over meanwhile.
      (held.route === t.route && held.version === target.v ? ok : moved).push(target.i);
      continue;
    }
    if (e.d) {
      // Held at another version, or another write of it (divergent histories): take the full copy instead.
      if (!held || held.version !== e.d.b || !chainsOnto(held.tag, e.d)) {
        need.push(target.i);
        continue;
      }
      adopted.push([t.applyDelta(e.d), e.t, e.d]);
    } else {
      const snap = e.s!;
      t.install(snap);
      adopted.push([t.held(snap.i)!, e.t, { i: snap.i, r: snap.r, b: snap.v - 1, v: snap.v, m: snap.m, c: snap.c, ...(snap.t ? { t: snap.t } : {}) }]);
    }
    ok.push(target.i);
  }
  // Replicate the route change as the new owner, one message per member and kind.
  const deltas = new Map<string, SessionDelta[]>();
  const copies = new Map<string, SessionSnapshot[]>();
  const drops = new Map<string, string[]>();
  const add = <T>(m: Map<string, T[]>, id: string, v: T) => {
    let l = m.get(id);
    if (!l) m.set(id, (l = []));
    l.push(v);
  };
  for (const [s, idle, d] of adopted) {
    const targets = t.adopt(s, idle, from.route);
    for (const m of targets.deltaTo) add(deltas, m.id, d);
    for (const m of targets.copyTo) add(copies, m.id, s.snapshot());
    for (const m of targets.dropTo) add(drops, m.id, s.base);
  }
  const send = (id: string, topic: string, payload: JsonValue) => {
    channel.send(id, topic, payload).catch((err: unknown) => t.sendFailed(err, id));
  };
  for (const [id, d] of deltas) send(id, deltaCodec.topic, deltaCodec.encode(d));
  for (const [id, s] of copies) send(id, copyCodec.topic, copyCodec.encode(s));
  for (const [id, x] of drops) send(id, dropCodec.topic, dropCodec.encode(x));
  return { ok, moved, need, refused: [] };
}
