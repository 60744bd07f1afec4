/**
 * Graceful handoff, the pure part: which surviving member becomes the owner
 * of each session a leaving node owns. Rendezvous hashing of the session
 * base over the survivors' routes, restricted to the members that hold a
 * copy when one of them survives:
 *  - backup mode: the session's holders are its backups, so the new owner is
 *    its top-ranked surviving backup (it holds the data; usually the current
 *    version) — the same member that `backupRoutes` ranks first;
 *  - all-to-all: every survivor holds a copy, so the sessions spread evenly
 *    and deterministically over the survivors.
 * The receiver checks the version; a full copy is sent when it lacks it.
 */
import { rankRoutes } from './placement.js';

export interface HandoffCandidate {
  readonly base: string;
  /** Routes that hold a copy of the session (the leaving owner excluded). */
  readonly holders: readonly string[];
}

/**
 * The new owner of `base`: the highest-ranked surviving holder; when none of
 * its holders survives, the highest-ranked survivor. Undefined without survivors.
 */
export function chooseNewOwner(base: string, holders: readonly string[], survivors: readonly string[]): string | undefined {
  if (survivors.length === 0) return undefined;
  const held = survivors.filter((r) => holders.includes(r));
  return rankRoutes(base, held.length > 0 ? held : survivors)[0];
}

/** Groups sessions by their new owner: route → bases, in input order. Empty without survivors. */
export function planHandoff(sessions: Iterable<HandoffCandidate>, survivors: readonly string[]): Map<string, string[]> {
  const plan = new Map<string, string[]>();
  for (const s of sessions) {
    const to = chooseNewOwner(s.base, s.holders, survivors);
    if (to === undefined) continue;
    let list = plan.get(to);
    if (!list) plan.set(to, (list = []));
    list.push(s.base);
  }
  return plan;
}
