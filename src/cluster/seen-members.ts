/**
 * What a member sees of the membership, published in its own meta so that
 * anyone watching the cluster (the balancer's dashboard) can draw every
 * member's view, not only its own. Meta key {@link SEEN_META_KEY}; the value
 * is small and changes only with the membership:
 *
 *     tc2=a,tc3=s,lb-1f2e=a        (a = alive, s = suspect; sorted by route)
 *     tc2=a,tc3=a,+4               (4 more members did not fit in the value)
 *
 * A member that is not listed is not in the publisher's view (gone, or never
 * seen). Routes are percent-encoded, so any route survives the separators.
 */
import { MemberState, type ClusterChannel, type MemberView } from './types.js';

export const SEEN_META_KEY = 'sees';

/**
 * Characters of the value at most: meta values are limited to 1024 on the
 * wire (envelope.ts); room is left for the "+N" marker.
 */
export const SEEN_META_MAX_CHARS = 1000;

export type SeenState = MemberState.Alive | MemberState.Suspect;

export interface SeenMembers {
  /** route → state, as the publisher sees it. */
  readonly members: ReadonlyMap<string, SeenState>;
  /** Members left out because the value would have been too long. */
  readonly omitted: number;
}

/** The meta value for a view (members that are gone are not listed). Pure. */
export function encodeSeenMembers(view: readonly Pick<MemberView, 'route' | 'state'>[], maxChars = SEEN_META_MAX_CHARS): string {
  const listed = view.filter((m) => m.state !== MemberState.Gone).sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : 0));
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; i < listed.length; i++) {
    const m = listed[i]!;
    const part = `${encodeURIComponent(m.route)}=${m.state === MemberState.Suspect ? 's' : 'a'}`;
    const rest = listed.length - i - 1;
    // Keep room for a final "+N" unless this is the last one.
    const reserve = rest > 0 ? 2 + String(rest).length : 0;
    if (length + (parts.length > 0 ? 1 : 0) + part.length + reserve > maxChars) {
      parts.push(`+${listed.length - i}`);
      return parts.join(',');
    }
    length += (parts.length > 0 ? 1 : 0) + part.length;
    parts.push(part);
  }
  return parts.join(',');
}

/**
 * Reads a published value; undefined when the member publishes none.
 * Malformed entries are skipped (the value comes from another process).
 */
export function parseSeenMembers(value: string | undefined): SeenMembers | undefined {
  if (value === undefined) return undefined;
  const members = new Map<string, SeenState>();
  let omitted = 0;
  for (const part of value.split(',')) {
    if (part === '') continue;
    const more = /^\+(\d{1,6})$/.exec(part);
    if (more) {
      omitted += Number(more[1]);
      continue;
    }
    const eq = part.lastIndexOf('=');
    if (eq <= 0) continue;
    const code = part.slice(eq + 1);
    if (code !== 'a' && code !== 's') continue;
    let route: string;
    try {
      route = decodeURIComponent(part.slice(0, eq));
    } catch {
      continue;
    }
    members.set(route, code === 's' ? MemberState.Suspect : MemberState.Alive);
  }
  return { members, omitted };
}

/**
 * Keeps `self.meta[sees]` in step with the channel's membership: publishes
 * at once, then after each membership change that changes the value (meta
 * updates of others do not). Changes in one burst are coalesced into one
 * publication (a microtask later). Returns the function that stops it.
 */
export function publishSeenMembers(
  channel: Pick<ClusterChannel, 'self' | 'members' | 'onMembership' | 'setMeta'>,
  /** False while the owner shuts down: nothing is published then. */
  active: () => boolean = () => true,
): () => void {
  let stopped = false;
  let queued = false;
  const publish = (): void => {
    queued = false;
    if (stopped || !active()) return;
    const value = encodeSeenMembers(channel.members());
    if (channel.self.meta[SEEN_META_KEY] === value) return;
    channel.setMeta({ ...channel.self.meta, [SEEN_META_KEY]: value });
  };
  const unsubscribe = channel.onMembership((e) => {
    if (e.type === 'updated' || queued) return;
    queued = true;
    queueMicrotask(publish);
  });
  publish();
  return () => {
    stopped = true;
    unsubscribe();
  };
}
