/**
 * The fleet's channel adapter: balancers that joined the cluster's membership
 * (config `cluster`) share the operator's changes and the failures they see.
 * Thin: what wins is decided by fleet-register.ts, whether to believe a
 * peer's failure report by fleet-evidence.ts; this file moves entries over
 * the ClusterChannel and applies winners through the Balancer's and the
 * manager's own actions.
 *
 * Topics (peers with meta role=balancer only; nodes never see them):
 * - `fleet.change` {entries}: a balancer's own new entries, sent at once to
 *   every peer (so a change applies everywhere well within a second). Refused
 *   entries (stale, forged, invalid) are counted and answered with an error.
 * - `fleet.state` {} → {entries}: every register, asked of each peer when
 *   this balancer starts and whenever a peer balancer joins or comes back,
 *   so a restarted balancer catches up with what it missed.
 * - `fleet.evidence` {balancer, url, source, message}: a member failed here.
 * - `fleet.view` {} → this balancer's members, for the dashboard.
 */
import type { Logger } from 'pino';
import type { Balancer } from '../balancer/balancer.js';
import { MemberFlag, MemberHealth, type Member, type MemberTransition } from '../balancer/member.js';
import type { MethodRegistry } from '../balancer/methods/index.js';
import { MemberState, type ClusterChannel, type JsonValue, type MemberView, type MembershipEvent } from '../cluster/types.js';
import type { Clock } from '../util/clock.js';
import { balancerSettings, changeBalancer, changeMember, memberSpecOf, type BalancerChange, type MemberSettings } from '../manager/actions.js';
import { FleetError } from './errors.js';
import type { FleetStore } from './fleet-store.js';
import { DEFAULT_EVIDENCE_FRESH_MS, UNSHARED_SOURCES, evidenceSchema, weighEvidence, type Evidence } from './fleet-evidence.js';
import { FleetLedger, checkSender, entrySchema, keyOf, type Entry, type MemberValue } from './fleet-register.js';
import { z } from 'zod';

export const FLEET_TOPICS = { change: 'fleet.change', state: 'fleet.state', evidence: 'fleet.evidence', view: 'fleet.view' } as const;
/** Meta key: the highest version this balancer has seen (its Lamport clock), for the dashboard. */
export const FLEET_META_KEY = 'fleet';
/** A member's failure is reported at most this often (ms), however often it fails. */
const EVIDENCE_EVERY_MS = 1000;
const SEND_TIMEOUT_MS = 2000;

/** What the manager changed, as it tells the fleet (the fleet reads the new value itself). */
export type FleetSubject =
  | { readonly balancer: string; readonly kind: 'balancer' }
  | { readonly balancer: string; readonly kind: 'member'; readonly url: string; readonly added?: boolean; readonly removed?: boolean };

export interface FleetCounters {
  /** Own entries sent (per peer). */
  sent: number;
  /** Peers' entries that won and were applied. */
  applied: number;
  duplicate: number;
  stale: number;
  forged: number;
  invalid: number;
  /** Winning entries that could not be applied here (e.g. an unknown balancing method). */
  unappliable: number;
  /** State exchanges completed (catch-up). */
  exchanges: number;
  evidenceSent: number;
  evidenceAvoided: number;
  evidenceIgnored: number;
}

export interface FleetSyncOptions {
  readonly channel: Pick<ClusterChannel, 'self' | 'members' | 'onMembership' | 'setMeta' | 'handle' | 'send' | 'request'>;
  readonly balancers: () => ReadonlyMap<string, Balancer>;
  readonly methods: MethodRegistry;
  readonly clock: Clock;
  readonly wallNow?: () => number;
  readonly log: Logger;
  /** Saves the manager's state after a peer's change applied here (undefined: not persisted). */
  readonly persist?: () => Promise<void>;
  /** Tells the manager a member was added by a peer's change (so it is saved as manager-added). */
  readonly markAdded?: (m: Member) => void;
  /** ms; see fleet-evidence.ts. */
  readonly evidenceFreshMs?: number;
  /** Where the registers' stamps are kept across restarts (undefined: in memory only). */
  readonly store?: FleetStore;
}

const changePayload = z.strictObject({ entries: z.array(z.unknown()).max(10_000) });

export class FleetSync {
  readonly ledger: FleetLedger;
  readonly counters: FleetCounters = { sent: 0, applied: 0, duplicate: 0, stale: 0, forged: 0, invalid: 0, unappliable: 0, exchanges: 0, evidenceSent: 0, evidenceAvoided: 0, evidenceIgnored: 0 };
  private readonly wallNow: () => number;
  private readonly detach: Array<() => void> = [];
  /** Entries that won but whose member is not here yet (a node another balancer discovered first). */
  private readonly pending = new Set<string>();
  private readonly lastEvidence = new Map<string, number>();
  private started = false;
  private lastSave: Promise<void> = Promise.resolve();

  constructor(private readonly opts: FleetSyncOptions) {
    this.ledger = new FleetLedger(opts.channel.self.route);
    this.wallNow = opts.wallNow ?? Date.now;
  }

  /** Registers the topics, follows the balancers and the membership, and catches up with every peer. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.opts.store) {
      try {
        const saved = await this.opts.store.load();
        if (saved) this.ledger.restore(saved.highest, saved.entries);
      } catch (err) {
        // The stamps only order future changes; without them the fleet still converges (from version 0).
        this.opts.log.error({ file: this.opts.store.path, err: (err as Error).message }, 'fleet: saved registers unreadable; starting without them');
      }
    }
    const ch = this.opts.channel;
    ch.handle(FLEET_TOPICS.change, (from, payload) => this.onChange(from, payload));
    ch.handle(FLEET_TOPICS.state, (from) => {
      if (from.meta.role !== 'balancer') throw new FleetError('COHORT_FLEET_FORGED', `${from.route} is not a balancer`);
      return { entries: this.ledger.all() as unknown as JsonValue[] };
    });
    ch.handle(FLEET_TOPICS.evidence, (from, payload) => this.onEvidence(from, payload));
    ch.handle(FLEET_TOPICS.view, () => this.view() as unknown as JsonValue);
    for (const b of this.opts.balancers().values()) {
      const onTransition = (t: MemberTransition & { balancer: string }) => this.onTransition(b, t);
      const onChange = () => this.retryPending(b);
      b.on('transition', onTransition);
      b.on('change', onChange);
      this.detach.push(() => {
        b.off('transition', onTransition);
        b.off('change', onChange);
      });
    }
    this.detach.push(ch.onMembership((e) => this.onMembership(e)));
    this.publishMeta();
    await Promise.all(this.peers().map((p) => this.exchange(p)));
  }

  stop(): void {
    for (const d of this.detach.splice(0)) d();
  }

  /** Peer balancers (alive or suspect). */
  peers(): MemberView[] {
    return this.opts.channel.members().filter((m) => m.meta.role === 'balancer' && m.state !== MemberState.Gone);
  }

  // ------------------------------------------------------------ local changes

  /** The manager changed something: stamp the new value and send it to every peer. */
  localChange(subject: FleetSubject): Entry | undefined {
    const b = this.opts.balancers().get(subject.balancer);
    if (!b) return undefined;
    let entry: Entry;
    if (subject.kind === 'balancer') {
      entry = this.ledger.write({ kind: 'balancer', balancer: b.name, value: balancerSettings(b) } as Omit<Entry, 'stamp'>);
    } else if (subject.removed) {
      entry = this.ledger.write({ kind: 'member', balancer: b.name, url: subject.url, removed: true } as Omit<Entry, 'stamp'>);
    } else {
      const m = b.members.find((x) => x.url.href === subject.url);
      if (!m) return undefined;
      const before = this.ledger.get(keyOf({ kind: 'member', balancer: b.name, url: subject.url }));
      const wasAdded = before?.kind === 'member' && before.value?.added === true;
      entry = this.ledger.write({ kind: 'member', balancer: b.name, url: subject.url, value: memberValue(m, subject.added === true || wasAdded) } as Omit<Entry, 'stamp'>);
    }
    this.publishMeta();
    this.save();
    void this.sendToPeers(FLEET_TOPICS.change, { entries: [entry as unknown as JsonValue] });
    return entry;
  }

  private async sendToPeers(topic: string, payload: JsonValue): Promise<void> {
    await Promise.all(this.peers().map(async (p) => {
      try {
        await this.opts.channel.send(p.id, topic, payload, { mode: 'applied', timeoutMs: SEND_TIMEOUT_MS });
        if (topic === FLEET_TOPICS.change) this.counters.sent++;
        else this.counters.evidenceSent++;
      } catch (err) {
        this.opts.log.warn({ peer: p.route, topic, err: (err as Error).message }, 'fleet: a peer balancer did not take the message');
      }
    }));
  }

  private save(): void {
    const store = this.opts.store;
    if (!store) return;
    this.lastSave = store.save(this.ledger.highest, this.ledger.all()).catch((err: Error) => this.opts.log.error({ file: store.path, err: err.message }, 'fleet: cannot save the registers'));
  }

  /** Resolves when every save started so far is on disk (or failed, logged). */
  async flush(): Promise<void> {
    await this.lastSave;
  }

  private publishMeta(): void {
    const ch = this.opts.channel;
    const value = String(this.ledger.highest);
    if (ch.self.meta[FLEET_META_KEY] !== value) ch.setMeta({ ...ch.self.meta, [FLEET_META_KEY]: value });
  }

  // ------------------------------------------------------------ peers' changes

  private async onChange(from: MemberView, payload: JsonValue): Promise<JsonValue> {
    const parsed = changePayload.safeParse(payload);
    if (!parsed.success) {
      this.counters.invalid++;
      throw new FleetError('COHORT_FLEET_INVALID', `fleet.change from ${from.route}: expected {entries: [...]}`);
    }
    const refused = await this.merge(from, parsed.data.entries, true);
    if (refused.length > 0) {
      const first = refused[0]!;
      throw new FleetError(first.code, `${refused.length} of ${parsed.data.entries.length} entries refused; first: ${first.message}`);
    }
    return { ok: true };
  }

  /** Judges and applies entries from a peer; returns the refusals (already counted and logged). */
  private async merge(from: MemberView, raw: readonly unknown[], direct: boolean): Promise<Array<{ code: 'COHORT_FLEET_INVALID' | 'COHORT_FLEET_FORGED' | 'COHORT_FLEET_STALE'; message: string }>> {
    const refused: Array<{ code: 'COHORT_FLEET_INVALID' | 'COHORT_FLEET_FORGED' | 'COHORT_FLEET_STALE'; message: string }> = [];
    let changed = false;
    let stored = false;
    for (const r of raw) {
      const parsed = entrySchema.safeParse(r);
      if (!parsed.success) {
        this.counters.invalid++;
        refused.push({ code: 'COHORT_FLEET_INVALID', message: `malformed entry: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}` });
        continue;
      }
      const entry = parsed.data;
      const forged = checkSender(entry, { route: from.route, role: from.meta.role }, direct, this.ledger.highest);
      if (forged !== undefined) {
        this.counters.forged++;
        refused.push({ code: 'COHORT_FLEET_FORGED', message: forged });
        continue;
      }
      const verdict = this.ledger.receive(entry);
      if (verdict.kind === 'duplicate') this.counters.duplicate++;
      else if (verdict.kind === 'stale') {
        // In a state exchange an older entry is the normal overlap, not a refusal worth an error.
        if (direct) {
          this.counters.stale++;
          refused.push({ code: 'COHORT_FLEET_STALE', message: `${describe(entry)} v${entry.stamp.version}/${entry.stamp.writer} is older than v${verdict.current.version}/${verdict.current.writer}` });
        }
      } else if (verdict.kind === 'apply') {
        this.counters.applied++;
        stored = true;
        changed = this.apply(entry, from.route) || changed;
      }
    }
    if (stored) this.save();
    for (const r of refused) this.opts.log.warn({ peer: from.route, code: r.code, reason: r.message }, 'fleet: state change refused');
    this.publishMeta();
    if (changed && this.opts.persist) {
      try {
        await this.opts.persist();
      } catch (err) {
        this.opts.log.error({ err: (err as Error).message }, 'fleet: a peer\'s change applied here but could not be saved');
      }
    }
    return refused;
  }

  /** Applies a winning entry through the balancer's and the manager's own actions. Returns true when something changed. */
  private apply(entry: Entry, via: string): boolean {
    const b = this.opts.balancers().get(entry.balancer);
    const key = keyOf(entry);
    if (!b) {
      this.pending.add(key);
      return false;
    }
    try {
      if (entry.kind === 'balancer') {
        changeBalancer(b, entry.value as BalancerChange, this.opts.methods);
        this.pending.delete(key);
      } else {
        const m = b.members.find((x) => x.url.href === entry.url);
        if (entry.removed) {
          this.pending.delete(key);
          if (!m) return false;
          b.removeMember(m.route);
        } else if (m) {
          this.pending.delete(key);
          applyMemberValue(b, m, entry.value!, this.opts.clock.now(), this.wallNow());
        } else if (entry.value!.added) {
          this.pending.delete(key);
          const added = b.addMember(memberSpecOf({ url: entry.url, ...entry.value! } as MemberSettings));
          this.opts.markAdded?.(added);
        } else {
          // A node this balancer has not discovered yet: applied when it appears.
          this.pending.add(key);
          return false;
        }
      }
    } catch (err) {
      this.counters.unappliable++;
      this.opts.log.warn({ peer: via, entry: describe(entry), err: (err as Error).message }, 'fleet: a peer\'s change cannot be applied here');
      return false;
    }
    this.opts.log.info({ peer: via, entry: describe(entry), version: entry.stamp.version, writer: entry.stamp.writer }, 'fleet: a peer balancer\'s change applied');
    return true;
  }

  private retryPending(b: Balancer): void {
    if (this.pending.size === 0) return;
    for (const key of [...this.pending]) {
      const e = this.ledger.get(key);
      if (!e || e.balancer !== b.name) continue;
      if (e.kind === 'member' && !b.members.some((m) => m.url.href === e.url)) continue;
      this.pending.delete(key);
      // A member added here (discovery) takes the fleet's settings for it.
      if (this.apply(e, e.stamp.writer) && this.opts.persist) void this.opts.persist().catch(() => {});
    }
  }

  private onMembership(e: MembershipEvent): void {
    if ((e.type === 'added' || e.type === 'back') && e.member.meta.role === 'balancer') void this.exchange(e.member);
  }

  /** Asks a peer for every register and merges them (catch-up). */
  private async exchange(peer: MemberView): Promise<void> {
    try {
      const reply = await this.opts.channel.request(peer.id, FLEET_TOPICS.state, {}, { timeoutMs: SEND_TIMEOUT_MS * 2 });
      const parsed = changePayload.safeParse(reply);
      if (!parsed.success) {
        this.counters.invalid++;
        this.opts.log.warn({ peer: peer.route }, 'fleet: malformed state from a peer balancer');
        return;
      }
      await this.merge(peer, parsed.data.entries, false);
      this.counters.exchanges++;
      this.opts.log.info({ peer: peer.route, entries: parsed.data.entries.length, highest: this.ledger.highest }, 'fleet: state exchanged with a peer balancer');
    } catch (err) {
      this.opts.log.warn({ peer: peer.route, err: (err as Error).message }, 'fleet: state exchange with a peer balancer failed');
    }
  }

  // ------------------------------------------------------------ evidence

  private onTransition(b: Balancer, t: MemberTransition): void {
    if (t.to === MemberHealth.Ok || UNSHARED_SOURCES.has(t.reason.source)) return;
    const m = b.findMember(t.member);
    if (!m) return;
    const key = `${b.name}\0${m.url.href}`;
    const now = this.opts.clock.now();
    const last = this.lastEvidence.get(key);
    if (last !== undefined && now - last < EVIDENCE_EVERY_MS) return;
    this.lastEvidence.set(key, now);
    const evidence: Evidence = { balancer: b.name, url: m.url.href, source: t.reason.source, message: t.reason.message.slice(0, 512) };
    void this.sendToPeers(FLEET_TOPICS.evidence, evidence);
  }

  private onEvidence(from: MemberView, payload: JsonValue): JsonValue {
    if (from.meta.role !== 'balancer') {
      this.counters.forged++;
      throw new FleetError('COHORT_FLEET_FORGED', `failure report from ${from.route}, which is not a balancer`);
    }
    const parsed = evidenceSchema.safeParse(payload);
    if (!parsed.success) {
      this.counters.invalid++;
      throw new FleetError('COHORT_FLEET_INVALID', `malformed failure report from ${from.route}`);
    }
    const e = parsed.data;
    const m = this.opts.balancers().get(e.balancer)?.members.find((x) => x.url.href === e.url);
    if (!m) return { verdict: 'unknown member' };
    const now = this.opts.clock.now();
    const wall = this.wallNow();
    const verdict = weighEvidence({
      alreadyOut: !m.usable(now) || m.health !== MemberHealth.Ok,
      ignoresErrors: m.flags.has(MemberFlag.IgnoreErrors),
      lastOkAgoMs: lastOkAgo(m, now, wall),
    }, this.opts.evidenceFreshMs ?? DEFAULT_EVIDENCE_FRESH_MS);
    if (verdict.kind === 'ignore') {
      this.counters.evidenceIgnored++;
      this.opts.log.debug({ peer: from.route, member: m.route, why: verdict.why }, 'fleet: peer\'s failure report outweighed here');
      return { verdict: 'ignored', why: verdict.why };
    }
    this.counters.evidenceAvoided++;
    m.markError('fleet', `${from.route} saw it fail (${e.source}: ${e.message})`, now, wall);
    this.opts.log.info({ peer: from.route, member: m.route, source: e.source }, 'fleet: member avoided on a peer balancer\'s report');
    return { verdict: 'avoided' };
  }

  // ------------------------------------------------------------ views

  /** This balancer's members as the dashboard's fleet panel shows them. */
  view() {
    const now = this.opts.clock.now();
    return {
      route: this.opts.channel.self.route,
      highest: this.ledger.highest,
      balancers: [...this.opts.balancers().values()].map((b) => ({
        name: b.name,
        members: b.members.map((m) => ({ route: m.route, url: m.url.href, flags: m.statusFlags(now), health: m.health, requests: m.counters.requests })),
      })),
    };
  }

  /** The dashboard asks each peer for its view. */
  async peerViews(): Promise<Array<{ route: string; state: string; view?: unknown; error?: string }>> {
    return Promise.all(this.peers().map(async (p) => {
      try {
        return { route: p.route, state: p.state, view: await this.opts.channel.request(p.id, FLEET_TOPICS.view, {}, { timeoutMs: SEND_TIMEOUT_MS }) };
      } catch (err) {
        return { route: p.route, state: p.state, error: (err as Error).message };
      }
    }));
  }
}

/** A member's register value: what the operator can change. */
export function memberValue(m: Member, added: boolean): MemberValue {
  return { route: m.route, loadfactor: m.loadfactor, lbset: m.lbset, max: m.max, retry: m.retryMs / 1000, status: [...m.flags].sort() as MemberValue['status'], ...(added ? { added: true } : {}) };
}

/** Gives a member a register's value through the manager's changeMember (setFlag: the queue and slow start follow). */
function applyMemberValue(b: Balancer, m: Member, v: MemberValue, now: number, wall: number): void {
  const status: Partial<Record<MemberFlag, boolean>> = {};
  for (const f of Object.values(MemberFlag)) status[f] = v.status.includes(f);
  m.max = v.max;
  m.retryMs = v.retry * 1000;
  changeMember(b, m, { status, loadfactor: v.loadfactor, lbset: v.lbset, ...(b.findMember(v.route) === undefined || v.route === m.route ? { route: v.route } : {}) }, now, wall);
}

function lastOkAgo(m: Member, now: number, wall: number): number | undefined {
  const candidates: number[] = [];
  if (m.latencyAt > 0) candidates.push(now - m.latencyAt);
  if (m.lastCheck?.ok) candidates.push(wall - m.lastCheck.at);
  return candidates.length > 0 ? Math.max(0, Math.min(...candidates)) : undefined;
}

function describe(e: Entry): string {
  return e.kind === 'balancer' ? `balancer ${e.balancer}` : `${e.balancer}/${e.url}${e.removed ? ' (removed)' : ''}`;
}
