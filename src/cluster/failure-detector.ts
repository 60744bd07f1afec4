/**
 * The member table and failure detector: a pure state machine driven by an
 * injected {@link Clock}. Evidence goes in (heartbeats, probe answers,
 * connection loss, refused connects, departures); typed membership events and
 * probe requests come out through a narrow {@link DetectorPort}. No sockets.
 *
 * Rules:
 * - Suspicion first, then confirmation. Silence for `suspectAfterMs` makes a
 *   member suspect; so does a lost connection or a stuck send queue.
 * - A suspect member is declared gone only on confirmation: evidence that
 *   its process is gone (its port refuses connections — {@link confirmGone}),
 *   or no answer to direct and indirect probes within `confirmTimeoutMs`.
 * - A suspect is cleared by evidence carrying a higher incarnation than the
 *   one suspected (the member refutes by raising its own incarnation), or by
 *   direct evidence obtained after the suspicion began (a fresh authenticated
 *   handshake, an answer to a probe sent during the suspicion).
 * - If this process itself was paused (a tick arrives much later than
 *   scheduled), silence measured across the pause is not held against others.
 *
 * States: Alive ⇄ Suspect → Gone; Alive → Gone only on confirmation/leave;
 * Gone → Alive when the same member id is verified again (partition healed).
 */
import type { Clock, TimerHandle } from '../util/clock.js';
import { CohortError } from '../errors.js';
import { MemberState, type MemberInfo, type MemberView, type MembershipEvent } from './types.js';

export interface FailureDetectorOptions {
  readonly clock: Clock;
  /** Silence (no evidence of life) after which a member is suspected, ms. */
  readonly suspectAfterMs: number;
  /** Time a suspect has to refute before it is declared gone, ms. */
  readonly confirmTimeoutMs: number;
  /** Interval between probe rounds while a member is suspect, ms. */
  readonly probeIntervalMs: number;
  /** Detector tick, ms; bounds timing precision. Default 25. */
  readonly tickMs?: number;
  /** A tick late by more than this means this process was paused, ms. Default 250. */
  readonly pauseGraceMs?: number;
  /** How long gone members are remembered (to report them 'back'), ms. Default 300000. */
  readonly goneRetentionMs?: number;
}

/** What the detector needs from the node: emit events and run probes. */
export interface DetectorPort {
  emit(event: MembershipEvent): void;
  /**
   * Probe a suspect member (directly and through others); report the outcome
   * with {@link FailureDetector.alive} (direct) or let the deadline expire.
   */
  probe(id: string, suspectedIncarnation: number): void;
  /** Optional trace of every state change. */
  trace?(line: { id: string; route: string; from: MemberState | 'none'; to: MemberState; reason: string }): void;
}

interface Record_ {
  info: MemberInfo;
  state: MemberState;
  lastSeen: number;
  /** Suspect only. */
  suspectedIncarnation: number;
  suspectedAt: number;
  deadline: number;
  nextProbeAt: number;
  goneAt: number;
}

const ALLOWED: Readonly<Record<MemberState, readonly MemberState[]>> = {
  [MemberState.Alive]: [MemberState.Suspect],
  [MemberState.Suspect]: [MemberState.Alive, MemberState.Gone],
  [MemberState.Gone]: [MemberState.Alive],
};

export class FailureDetector {
  private readonly members = new Map<string, Record_>();
  private readonly tickMs: number;
  private readonly pauseGraceMs: number;
  private readonly goneRetentionMs: number;
  private timer: TimerHandle | undefined;
  private lastTick = 0;
  private running = false;

  constructor(private readonly opts: FailureDetectorOptions, private readonly port: DetectorPort) {
    this.tickMs = opts.tickMs ?? 25;
    this.pauseGraceMs = opts.pauseGraceMs ?? 250;
    this.goneRetentionMs = opts.goneRetentionMs ?? 300_000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastTick = this.opts.clock.now();
    this.arm();
  }

  stop(): void {
    this.running = false;
    if (this.timer) this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Current view of a member (any state), or undefined. */
  get(id: string): MemberView | undefined {
    const r = this.members.get(id);
    return r ? view(r) : undefined;
  }

  /** Members not gone. */
  live(): MemberView[] {
    const out: MemberView[] = [];
    for (const r of this.members.values()) if (r.state !== MemberState.Gone) out.push(view(r));
    return out;
  }

  /** All known members including gone ones still remembered. */
  all(): MemberView[] {
    return [...this.members.values()].map(view);
  }

  /** The non-gone member using `route`, if any. */
  byRoute(route: string): MemberView | undefined {
    for (const r of this.members.values()) if (r.state !== MemberState.Gone && r.info.route === route) return view(r);
    return undefined;
  }

  /**
   * A member verified over the authenticated channel (its hello arrived).
   * New → 'added'; gone or suspect → 'back'; alive → refresh (and 'updated' if meta changed).
   */
  verified(info: MemberInfo): void {
    const now = this.opts.clock.now();
    const r = this.members.get(info.id);
    if (!r) {
      const rec: Record_ = { info, state: MemberState.Alive, lastSeen: now, suspectedIncarnation: 0, suspectedAt: 0, deadline: 0, nextProbeAt: 0, goneAt: 0 };
      this.members.set(info.id, rec);
      this.port.trace?.({ id: info.id, route: info.route, from: 'none', to: MemberState.Alive, reason: 'verified' });
      this.port.emit({ type: 'added', member: view(rec) });
      return;
    }
    const metaChanged = !sameMeta(r.info.meta, info.meta);
    r.info = { ...info, incarnation: Math.max(info.incarnation, r.info.incarnation) };
    r.lastSeen = now;
    if (r.state !== MemberState.Alive) {
      this.transition(r, MemberState.Alive, 'verified again');
      this.port.emit({ type: 'back', member: view(r) });
    } else if (metaChanged) {
      this.port.emit({ type: 'updated', member: view(r) });
    }
  }

  /**
   * Evidence of life carrying the member's incarnation. Clears a suspicion if
   * the incarnation is higher than the one suspected, or if `direct` (obtained
   * after the suspicion began, e.g. a probe answer or a fresh handshake).
   */
  alive(id: string, incarnation: number, direct = false): void {
    const r = this.members.get(id);
    if (!r || r.state === MemberState.Gone) return;
    if (incarnation > r.info.incarnation) r.info = { ...r.info, incarnation };
    if (r.state === MemberState.Alive) {
      r.lastSeen = this.opts.clock.now();
      return;
    }
    if (incarnation > r.suspectedIncarnation || direct) {
      r.lastSeen = this.opts.clock.now();
      this.transition(r, MemberState.Alive, direct ? 'direct evidence' : `refuted with incarnation ${incarnation}`);
      this.port.emit({ type: 'back', member: view(r) });
    }
  }

  /** New meta (and incarnation) published by the member. */
  updateMeta(id: string, incarnation: number, meta: Record<string, string>): void {
    const r = this.members.get(id);
    if (!r || r.state === MemberState.Gone) return;
    const changed = !sameMeta(r.info.meta, meta);
    r.info = { ...r.info, meta: { ...meta } };
    this.alive(id, incarnation);
    if (changed) this.port.emit({ type: 'updated', member: view(r) });
  }

  /** Something suggests the member may be dead (lost connection, stuck queue). */
  suspect(id: string, reason: string): void {
    const r = this.members.get(id);
    if (!r || r.state !== MemberState.Alive) return;
    const now = this.opts.clock.now();
    r.suspectedIncarnation = r.info.incarnation;
    r.suspectedAt = now;
    r.deadline = now + this.opts.confirmTimeoutMs;
    r.nextProbeAt = now + this.opts.probeIntervalMs;
    this.transition(r, MemberState.Suspect, reason);
    this.port.emit({ type: 'suspected', member: view(r), reason });
    this.port.probe(id, r.suspectedIncarnation);
  }

  /**
   * Confirmation that the member's process is gone (its port refuses
   * connections). Gone at once; from Alive it passes through Suspect so every
   * gone member was suspected first.
   */
  confirmGone(id: string, reason: string): void {
    const r = this.members.get(id);
    if (!r || r.state === MemberState.Gone) return;
    if (r.state === MemberState.Alive) this.suspect(id, reason);
    if (r.state === MemberState.Suspect) this.markGone(r, reason);
  }

  /** The member announced it leaves. */
  left(id: string): void {
    const r = this.members.get(id);
    if (!r || r.state === MemberState.Gone) return;
    if (r.state === MemberState.Alive) {
      r.suspectedIncarnation = r.info.incarnation;
      this.transition(r, MemberState.Suspect, 'leaving');
    }
    this.markGone(r, 'left');
  }

  /** Forget a member entirely (e.g. replaced by a restart with the same route). */
  forget(id: string): void {
    this.members.delete(id);
  }

  /** Advance the detector: silence checks, probe rounds, deadlines. Called by its own timer; public for tests. */
  tick(): void {
    const now = this.opts.clock.now();
    const gap = now - this.lastTick;
    this.lastTick = now;
    if (gap > this.tickMs + this.pauseGraceMs) {
      // We were paused (GC, SIGSTOP, overload): others' silence during our pause is not evidence.
      const lost = gap - this.tickMs;
      for (const r of this.members.values()) {
        if (r.state === MemberState.Alive) r.lastSeen = Math.max(r.lastSeen, now - this.tickMs);
        else if (r.state === MemberState.Suspect) r.deadline += lost;
      }
    }
    for (const r of [...this.members.values()]) {
      if (r.state === MemberState.Alive) {
        const silent = now - r.lastSeen;
        if (silent >= this.opts.suspectAfterMs) this.suspect(r.info.id, `no heartbeat for ${Math.round(silent)} ms`);
      } else if (r.state === MemberState.Suspect) {
        if (now >= r.deadline) this.markGone(r, `no answer to probes for ${Math.round(now - r.suspectedAt)} ms`);
        else if (now >= r.nextProbeAt) {
          r.nextProbeAt = now + this.opts.probeIntervalMs;
          this.port.probe(r.info.id, r.suspectedIncarnation);
        }
      } else if (now - r.goneAt > this.goneRetentionMs) {
        this.members.delete(r.info.id);
      }
    }
  }

  private markGone(r: Record_, reason: string): void {
    r.goneAt = this.opts.clock.now();
    this.transition(r, MemberState.Gone, reason);
    this.port.emit({ type: 'gone', member: view(r), reason });
  }

  private transition(r: Record_, to: MemberState, reason: string): void {
    const from = r.state;
    if (!ALLOWED[from].includes(to)) {
      throw new CohortError('COHORT_MEMBER_TRANSITION', `illegal member transition ${from} → ${to} for ${r.info.route} (${reason})`);
    }
    r.state = to;
    this.port.trace?.({ id: r.info.id, route: r.info.route, from, to, reason });
  }

  private arm(): void {
    if (!this.running) return;
    this.timer = this.opts.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.running) return;
      this.tick();
      this.arm();
    }, this.tickMs);
    this.timer.unref?.();
  }
}

function sameMeta(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

function view(r: Record_): MemberView {
  return { ...r.info, state: r.state, lastSeen: r.lastSeen };
}
