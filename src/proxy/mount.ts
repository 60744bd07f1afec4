import type { Balancer } from '../balancer/balancer.js';
import type { ReverseRule } from './rewrite.js';

/** A mount: requests under `path` go to `balancer`, with `path` replaced by `upstream`. */
export interface Mount {
  readonly path: string;
  readonly balancer: Balancer;
  readonly upstream: string;
  readonly reverse: boolean;
  /** Keep the client's Host header for the member (httpd ProxyPreserveHost). */
  readonly preserveHost: boolean;
}

/** The mounts of one configuration, longest path first, with their ProxyPassReverse rules. Rebuilt when members change. */
export class MountTable {
  private readonly mounts: Mount[];
  private readonly rules = new Map<Mount, ReverseRule>();

  constructor(mounts: readonly Mount[]) {
    // Longest path first, so /examples/x wins over /examples and /.
    this.mounts = [...mounts].sort((a, b) => b.path.length - a.path.length);
  }

  /** The mount serving `path` (a request target in origin form), if any. */
  match(path: string): Mount | undefined {
    for (const m of this.mounts) {
      const p = m.path;
      if (p === '/' || path === p || (path.startsWith(p) && (p.endsWith('/') || path[p.length] === '/' || path[p.length] === '?' || path[p.length] === ';'))) return m;
    }
    return undefined;
  }

  reverseRule(mount: Mount): ReverseRule {
    let rule = this.rules.get(mount);
    if (rule === undefined) {
      rule = reverseRuleFor(mount);
      this.rules.set(mount, rule);
    }
    return rule;
  }
}

/** The target the member sees: the mount path replaced by its upstream path. */
export function upstreamPath(mount: Mount, target: string): string {
  return mount.upstream === mount.path ? target : rewritePrefix(target, mount.path, mount.upstream);
}

export function rewritePrefix(target: string, from: string, to: string): string {
  const f = from.replace(/\/$/, '');
  const t = to.replace(/\/$/, '');
  const rest = target.slice(f.length);
  if (rest === '' || rest[0] === '?' || rest[0] === ';') return `${t}${t === '' && (rest === '' || rest[0] !== '/') ? '/' : ''}${rest}`;
  return `${t}${rest[0] === '/' ? '' : '/'}${rest}`;
}

function reverseRuleFor(mount: Mount): ReverseRule {
  const upstream = mount.upstream.replace(/\/$/, '');
  return {
    memberPrefixes: mount.balancer.members.flatMap((m) => [`${m.key}${upstream}`, `${m.url.protocol}//${m.url.hostname}${upstream}`]),
    mountPath: mount.path,
    upstreamPath: mount.upstream,
  };
}

/**
 * The origin-form target of a request: absolute-form keeps only its path and
 * query (the authority never picks a destination); `*` maps to `/`. Undefined
 * when the absolute URL does not parse.
 */
export function originForm(target: string): string | undefined {
  if (target[0] === '/') return target;
  if (target === '*') return '/';
  try {
    const u = new URL(target);
    return `${u.pathname}${u.search}`;
  } catch {
    return undefined;
  }
}
