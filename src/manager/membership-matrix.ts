/**
 * Each node and what it sees of the membership, as a matrix for the
 * dashboard: one row per observer (this balancer, then every member), one
 * column per member anyone knows of, a cell per (observer, member). Pure:
 * the observers' views come in, the matrix goes out.
 */
import { MemberState } from '../cluster/types.js';
import type { SeenMembers } from '../cluster/seen-members.js';

/**
 * `self`: the diagonal. `alive` / `suspect`: as the observer sees it.
 * `absent`: not in the observer's view (gone, or never seen). `unknown`: the
 * observer publishes no view (an older node, a member that is gone), or its
 * view was too long to publish whole and this member may be in the rest.
 */
export type MatrixCell = 'self' | 'alive' | 'suspect' | 'absent' | 'unknown';

export const MATRIX_CELLS: readonly MatrixCell[] = ['alive', 'suspect', 'absent', 'unknown', 'self'];

export interface MatrixObserver {
  readonly route: string;
  /** As this balancer sees the observer: alive, suspect or gone. */
  readonly state: string;
  /** This balancer itself. */
  readonly self: boolean;
  /** What the observer publishes it sees; undefined when it publishes nothing. */
  readonly sees: SeenMembers | undefined;
}

export interface MatrixRow {
  readonly route: string;
  readonly state: string;
  readonly self: boolean;
  /** The observer publishes its view (and is not gone). */
  readonly reported: boolean;
  /** Cells in the order of `columns`. */
  readonly cells: readonly MatrixCell[];
}

export interface MembershipMatrix {
  readonly columns: readonly string[];
  readonly rows: readonly MatrixRow[];
}

function byRoute(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Rows: this balancer first, then the observers by route (one per route: a
 * live instance wins over a gone one). Columns: the rows' routes in the same
 * order, then routes only others see (a node this balancer does not know).
 */
export function membershipMatrix(observers: readonly MatrixObserver[]): MembershipMatrix {
  const byRouteMap = new Map<string, MatrixObserver>();
  for (const o of observers) {
    const prev = byRouteMap.get(o.route);
    if (!prev || (prev.state === MemberState.Gone && o.state !== MemberState.Gone) || o.self) byRouteMap.set(o.route, o);
  }
  const ordered = [...byRouteMap.values()].sort((a, b) => (a.self !== b.self ? (a.self ? -1 : 1) : byRoute(a.route, b.route)));
  const columns = ordered.map((o) => o.route);
  const known = new Set(columns);
  const extra = new Set<string>();
  for (const o of ordered) for (const r of o.sees?.members.keys() ?? []) if (!known.has(r)) extra.add(r);
  columns.push(...[...extra].sort(byRoute));
  const rows = ordered.map((o): MatrixRow => {
    const sees = o.state === MemberState.Gone ? undefined : o.sees;
    const cells = columns.map((col): MatrixCell => {
      if (col === o.route) return 'self';
      if (!sees) return 'unknown';
      const s = sees.members.get(col);
      if (s === MemberState.Alive) return 'alive';
      if (s === MemberState.Suspect) return 'suspect';
      return sees.omitted > 0 ? 'unknown' : 'absent';
    });
    return { route: o.route, state: o.state, self: o.self, reported: sees !== undefined, cells };
  });
  return { columns, rows };
}
