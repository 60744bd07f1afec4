import type { Balancer } from '../balancer/balancer.js';
import { memberTransitionTone, type HistoryTone } from './history-tone.js';
import type { MemberTransition } from '../balancer/member.js';
import type { FinishedExchange } from '../proxy/forward.js';
import type { Clock } from '../util/clock.js';
import { BALANCERS_PANEL_SCRIPT } from './dashboard-panel-balancers.js';

/**
 * What the dashboard draws comes from data sources: each has an id, a full
 * snapshot for a new viewer, a stream of events, and the browser code of its
 * panel. The balancer is the first source; the session cluster (nodes,
 * sessions per node, replication lag, state-transfer progress) plugs in as
 * another one without changing the dashboard or the server.
 */
export interface DashboardSource {
  /** Stable id: the SSE event name and the panel's key (letters, digits, "-"). */
  readonly id: string;
  readonly title: string;
  /**
   * Browser code of the panel. It runs in the page and calls
   * `Cohort.panel(id, { init(el, snapshot), event(type, data) })`. It must
   * build DOM with textContent/setAttribute only (no innerHTML of data).
   */
  readonly clientScript: string;
  /** Everything a new viewer needs (JSON-serializable). */
  snapshot(): unknown;
  /** Events after the snapshot; returns the unsubscribe function. */
  subscribe(listener: (type: string, data: unknown) => void): () => void;
  /** Called by the manager every sample interval (rates, charts). */
  tick?(): void;
  close(): void;
}

/** One entry of the state-change history. */
export interface HistoryEntry {
  /** Wall-clock ms. */
  readonly at: number;
  readonly balancer: string;
  readonly kind: 'transition' | 'change';
  readonly member?: string;
  readonly from?: string;
  readonly to?: string;
  readonly text: string;
  /** good | bad | warn | info: how the page colours it (src/manager/history-tone.ts). */
  readonly tone?: HistoryTone;
}

interface Window {
  count: number;
  sumMs: number;
  maxMs: number;
}

/** Source of the balancer panel: members' state, request rate and latency per member, state history. */
export class BalancerSource implements DashboardSource {
  readonly id = 'balancers';
  readonly title = 'Balancers';
  readonly clientScript = BALANCERS_PANEL_SCRIPT;
  readonly history: HistoryEntry[] = [];
  /** The last samples (60 s at the default 500 ms), so a new viewer's charts start full. */
  private readonly samples: unknown[] = [];
  static readonly SAMPLES_KEPT = 120;
  private readonly listeners = new Set<(type: string, data: unknown) => void>();
  private readonly attached = new WeakSet<Balancer>();
  private readonly detach: Array<() => void> = [];
  private readonly windows = new Map<string, Window>();
  private lastRequests = new Map<string, number>();
  private lastTick: number;

  constructor(
    private readonly balancers: () => ReadonlyMap<string, Balancer>,
    private readonly clock: Clock,
    private readonly historyLimit: number,
    private readonly wallNow: () => number = Date.now,
  ) {
    this.lastTick = clock.now();
    this.sync();
  }

  /** Subscribes to balancers not seen yet (new ones appear after a reload). */
  sync(): void {
    for (const b of this.balancers().values()) {
      if (this.attached.has(b)) continue;
      this.attached.add(b);
      const onTransition = (t: MemberTransition & { balancer: string }) =>
        this.record({ at: t.reason.sinceWall, balancer: t.balancer, kind: 'transition', member: t.member, from: t.from, to: t.to, tone: memberTransitionTone(t.to), text: `${t.member}: ${t.from} → ${t.to} (${t.reason.source}: ${t.reason.message})` });
      const onChange = (c: { balancer: string; what: string }) => this.record({ at: this.wallNow(), balancer: c.balancer, kind: 'change', tone: 'info', text: c.what });
      b.on('transition', onTransition);
      b.on('change', onChange);
      this.detach.push(() => {
        b.off('transition', onTransition);
        b.off('change', onChange);
      });
    }
  }

  private record(e: HistoryEntry): void {
    this.history.push(e);
    if (this.history.length > this.historyLimit) this.history.splice(0, this.history.length - this.historyLimit);
    // State changes go out at once (not at the next tick): visible within a second.
    this.emit('state', { entry: e, balancers: this.balancerState() });
  }

  private emit(type: string, data: unknown): void {
    for (const l of this.listeners) l(type, data);
  }

  /** Per-request hook: latency per member for the charts. */
  observe(e: FinishedExchange): void {
    if (e.member === undefined) return;
    const key = `${e.balancer}\0${e.member}`;
    let w = this.windows.get(key);
    if (!w) this.windows.set(key, (w = { count: 0, sumMs: 0, maxMs: 0 }));
    w.count++;
    w.sumMs += e.durationMs;
    if (e.durationMs > w.maxMs) w.maxMs = e.durationMs;
  }

  private balancerState() {
    const out = [];
    for (const b of this.balancers().values()) out.push(b.snapshot());
    return out;
  }

  snapshot() {
    this.sync();
    return { balancers: this.balancerState(), history: this.history, samples: this.samples };
  }

  /** One sample: requests/s and mean/max latency per member since the last tick. */
  tick(): void {
    this.sync();
    const now = this.clock.now();
    const dt = Math.max(1, now - this.lastTick) / 1000;
    this.lastTick = now;
    const nextRequests = new Map<string, number>();
    const members: Array<{ balancer: string; route: string; rps: number; latencyMs: number | null; maxMs: number | null; busy: number; health: string; flags: string }> = [];
    for (const b of this.balancers().values()) {
      for (const m of b.members) {
        const key = `${b.name}\0${m.route}`;
        const prev = this.lastRequests.get(key) ?? m.counters.requests;
        nextRequests.set(key, m.counters.requests);
        const w = this.windows.get(key);
        members.push({
          balancer: b.name,
          route: m.route,
          rps: Math.max(0, m.counters.requests - prev) / dt,
          latencyMs: w && w.count > 0 ? w.sumMs / w.count : null,
          maxMs: w && w.count > 0 ? w.maxMs : null,
          busy: m.busy,
          health: m.health,
          flags: m.statusFlags(now),
        });
      }
    }
    this.lastRequests = nextRequests;
    this.windows.clear();
    const balancers = [...this.balancers().values()].map((b) => ({ name: b.name, method: b.method.name, queued: b.queued, unavailable: b.unavailable }));
    const sample = { at: this.wallNow(), members, balancers };
    this.samples.push(sample);
    if (this.samples.length > BalancerSource.SAMPLES_KEPT) this.samples.shift();
    this.emit('sample', sample);
  }

  subscribe(listener: (type: string, data: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    for (const d of this.detach) d();
    this.detach.length = 0;
    this.listeners.clear();
  }
}
