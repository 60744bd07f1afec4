/**
 * Who holds copies of which session, as this node sees the membership:
 * the live routes, placement (all-to-all or rendezvous backups), and per
 * owned session the routes it was last sent to, so a commit knows who needs
 * a delta, who needs a full copy (new holder) and who should drop its copy.
 */
import type { MemberView } from '../../cluster/types.js';
import { backupRoutes, orphanHolders } from './placement.js';

export interface HolderPolicy {
  readonly mode: 'all-to-all' | 'backup';
  readonly backups: number;
}

export interface CommitTargets {
  readonly deltaTo: MemberView[];
  readonly copyTo: MemberView[];
  readonly dropTo: MemberView[];
}

export class Holders {
  private byRoute = new Map<string, MemberView>();
  /** base → routes the owned session was sent to at its last commit (backup mode). */
  private readonly lastTargets = new Map<string, readonly string[]>();
  /** base → route of a previous owner to tell at the next commit (take-over). */
  private readonly previousOwner = new Map<string, string>();
  /**
   * Member ids that announced a graceful departure: they stay owners of what
   * they own until they hand it over, but no longer receive copies. By id, so
   * a restart of the same route (new id) is a full member again.
   */
  private readonly departing = new Set<string>();

  constructor(
    private readonly selfRoute: () => string,
    private readonly policy: HolderPolicy,
  ) {}

  /** Rebuilds the route table from the channel's current members. */
  refresh(members: readonly MemberView[]): void {
    const m = new Map<string, MemberView>();
    for (const v of members) m.set(v.route, v);
    this.byRoute = m;
    const ids = new Set(members.map((v) => v.id));
    for (const id of this.departing) if (!ids.has(id)) this.departing.delete(id);
  }

  /** A member announced it is leaving (handoff): no more copies are placed on it. */
  markDeparting(id: string): void {
    this.departing.add(id);
  }

  isDeparting(route: string): boolean {
    const m = this.byRoute.get(route);
    return m !== undefined && this.departing.has(m.id);
  }

  member(route: string): MemberView | undefined {
    return this.byRoute.get(route);
  }

  isLive(route: string): boolean {
    return route === this.selfRoute() || this.byRoute.has(route);
  }

  /** Members that hold copies (all-to-all) or may be placed on: departing ones excluded. */
  peers(): MemberView[] {
    return [...this.byRoute.values()].filter((m) => !this.departing.has(m.id));
  }

  /** Routes copies are placed on: self and the peers, departing members excluded (they stay live owners, see {@link isLive}). */
  liveRoutes(): string[] {
    return [this.selfRoute(), ...this.peers().map((m) => m.route)];
  }

  /** Routes that should hold a copy of `base` besides its owner `owner`. */
  placementOf(base: string, owner: string): string[] {
    if (this.policy.mode === 'all-to-all') return this.liveRoutes().filter((r) => r !== owner);
    if (this.isLive(owner)) return backupRoutes(base, owner, this.liveRoutes(), this.policy.backups);
    return orphanHolders(base, this.liveRoutes(), this.policy.backups);
  }

  /** Whether this node should keep a copy of a session owned by `owner`. */
  shouldHold(base: string, owner: string): boolean {
    if (this.policy.mode === 'all-to-all' || owner === this.selfRoute()) return true;
    return this.placementOf(base, owner).includes(this.selfRoute());
  }

  /** Whether `peerRoute` should hold a copy of a session owned by `owner` (serving a 'placed' transfer). */
  placesOn(base: string, owner: string, peerRoute: string): boolean {
    if (owner === peerRoute) return true;
    const live = this.liveRoutes();
    const holders = this.isLive(owner) ? backupRoutes(base, owner, live, this.policy.backups) : orphanHolders(base, live, this.policy.backups);
    return holders.includes(peerRoute);
  }

  members(routes: Iterable<string>): MemberView[] {
    const out: MemberView[] = [];
    for (const r of routes) {
      const m = this.byRoute.get(r);
      if (m) out.push(m);
    }
    return out;
  }

  /** Members holding copies of a session this node owns (or last sent it to). */
  holdersOf(base: string, owner: string): MemberView[] {
    if (this.policy.mode === 'all-to-all') return this.peers();
    const routes = new Set(this.placementOf(base, owner));
    for (const r of this.lastTargets.get(base) ?? []) routes.add(r);
    routes.delete(this.selfRoute());
    return this.members(routes);
  }

  /** Remember to tell the previous owner at the next commit (take-over). */
  notePreviousOwner(base: string, route: string): void {
    this.previousOwner.set(base, route);
  }

  /** Who gets what at a commit of an owned session; records the new targets. */
  targetsForCommit(base: string, owner: string): CommitTargets {
    const extra = this.previousOwner.get(base);
    this.previousOwner.delete(base);
    if (this.policy.mode === 'all-to-all') return { deltaTo: this.peers(), copyTo: [], dropTo: [] };
    const now = this.placementOf(base, owner);
    const before = this.lastTargets.get(base);
    this.lastTargets.set(base, now);
    const deltaTo: string[] = [];
    const copyTo: string[] = [];
    for (const r of now) (before && before.includes(r) ? deltaTo : copyTo).push(r);
    const dropTo = (before ?? []).filter((r) => !now.includes(r) && r !== extra);
    // The previous owner holds the newest copy and must learn it is no longer owner: a delta, then it drops.
    if (extra !== undefined && !now.includes(extra)) deltaTo.push(extra);
    return { deltaTo: this.members(deltaTo), copyTo: this.members(copyTo), dropTo: this.members(dropTo) };
  }

  /**
   * Re-replication after a membership change: the routes that must receive
   * a full copy of `base` now (new holders), and records them.
   */
  missingHolders(base: string, owner: string): string[] {
    if (owner === this.selfRoute()) {
      const now = this.placementOf(base, owner);
      const before = this.lastTargets.get(base) ?? [];
      this.lastTargets.set(base, now);
      return now.filter((r) => !before.includes(r) || !this.byRoute.has(r));
    }
    if (!this.isLive(owner)) return orphanHolders(base, this.liveRoutes(), this.policy.backups).filter((r) => r !== this.selfRoute());
    return [];
  }

  /**
   * Handoff: this node became the owner of `base`, until now owned by
   * `previousOwner` (leaving). Assume the previous owner's backups hold the
   * version the route change applies to, so the next {@link targetsForCommit}
   * sends them a delta, full copies to new backups and drops to the rest.
   */
  adoptFrom(base: string, previousOwner: string): void {
    this.previousOwner.delete(base);
    if (this.policy.mode === 'all-to-all') return;
    const self = this.selfRoute();
    this.lastTargets.set(base, backupRoutes(base, previousOwner, this.liveRoutes(), this.policy.backups).filter((r) => r !== self));
  }

  rename(from: string, to: string): void {
    const lt = this.lastTargets.get(from);
    this.lastTargets.delete(from);
    if (lt) this.lastTargets.set(to, lt);
  }

  forget(base: string): void {
    this.lastTargets.delete(base);
    this.previousOwner.delete(base);
  }
}
