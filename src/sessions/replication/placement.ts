/**
 * Where copies of a session live in backup mode: rendezvous (highest random
 * weight) hashing of the session base over the live members' routes. Every
 * node computes the same answer from the same membership, so nobody needs a
 * location table, and a member leaving moves only the copies it held.
 * Routes (not process ids) are hashed so a restarted node gets its share back.
 */

/** 32-bit FNV-1a followed by murmur3's finalizer (better avalanche for short keys). */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Routes ordered by decreasing rendezvous weight for `base` (ties by route). */
export function rankRoutes(base: string, routes: readonly string[]): string[] {
  const scored = routes.map((r) => ({ r, w: hash32(`${r}\u0000${base}`) }));
  scored.sort((a, b) => b.w - a.w || (a.r < b.r ? -1 : a.r > b.r ? 1 : 0));
  return scored.map((x) => x.r);
}

/**
 * The backups of a session owned by `owner`: the `n` highest-ranked live
 * routes other than the owner.
 */
export function backupRoutes(base: string, owner: string, liveRoutes: readonly string[], n: number): string[] {
  const out: string[] = [];
  for (const r of rankRoutes(base, liveRoutes)) {
    if (r === owner) continue;
    out.push(r);
    if (out.length >= n) break;
  }
  return out;
}

/**
 * For a session whose owner is gone: the `n + 1` highest-ranked live routes
 * keep a copy until a node takes it over.
 */
export function orphanHolders(base: string, liveRoutes: readonly string[], n: number): string[] {
  return rankRoutes(base, liveRoutes).slice(0, n + 1);
}
