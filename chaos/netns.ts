/**
 * Network namespaces for the netns profile: each node in its own namespace,
 * joined by a veth pair to one bridge in the root namespace (where the
 * balancer runs, at the bridge address). A partition cuts a node off from the
 * other nodes, silently, by pointing their addresses at a MAC nobody has
 * (permanent neighbor entries on both sides): packets leave and are never
 * received, as on a real broken link, while the balancer still reaches every
 * node. Created and deleted by the run; root and iproute2 required.
 */
import { execFileSync } from 'node:child_process';

/** A MAC address that no interface has: frames to it are dropped by every receiver. */
const NOWHERE_MAC = '02:00:00:00:00:99';

export class NetnsUnavailable extends Error {
  readonly code = 'COHORT_CHAOS_NETNS_UNAVAILABLE';
}

function ip(args: readonly string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Throws {@link NetnsUnavailable} with the reason when namespaces cannot be used here. */
export function checkNetns(): void {
  if (process.getuid?.() !== 0) throw new NetnsUnavailable('the netns profile needs root (it creates network namespaces, veth pairs and a bridge)');
  try {
    ip(['netns', 'list']);
  } catch (err) {
    throw new NetnsUnavailable(`\`ip netns\` is not available: ${(err as Error).message.split('\n')[0]}`);
  }
}

/** A 10.213.x /24 that no interface of the root namespace uses yet (two runs at once must not share one). */
export function freeSubnet(addrShow: string): string {
  const start = process.pid % 250;
  for (let i = 0; i < 250; i++) {
    const candidate = `10.213.${((start + i) % 250) + 1}`;
    if (!addrShow.includes(` ${candidate}.`)) return candidate;
  }
  throw new NetnsUnavailable('no free 10.213.x.0/24 subnet for the chaos bridge');
}

export interface NetnsNode {
  readonly ns: string;
  readonly address: string;
}

export class NetnsLab {
  /** Short id, so that names fit the 15-byte interface name limit and runs do not collide. */
  private readonly id = (process.pid % 100_000).toString(36);
  private subnet = '';
  readonly bridge = `cchb${this.id}`;
  bridgeAddress = '';
  readonly nodes: NetnsNode[] = [];
  private created = false;
  private readonly cut = new Set<string>();

  /** Creates the bridge and `count` namespaces with addresses .1 … .count. */
  create(count: number): NetnsNode[] {
    this.created = true;
    this.subnet = freeSubnet(ip(['-o', '-4', 'addr', 'show']));
    this.bridgeAddress = `${this.subnet}.254`;
    ip(['link', 'add', this.bridge, 'type', 'bridge']);
    ip(['addr', 'add', `${this.bridgeAddress}/24`, 'dev', this.bridge]);
    ip(['link', 'set', this.bridge, 'up']);
    for (let i = 1; i <= count; i++) {
      const ns = `cohort-chaos-${this.id}-${i}`;
      const host = `cchv${this.id}h${i}`;
      const peer = `cchv${this.id}n${i}`;
      const address = `${this.subnet}.${i}`;
      ip(['netns', 'add', ns]);
      this.nodes.push({ ns, address });
      ip(['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
      ip(['link', 'set', peer, 'netns', ns]);
      ip(['link', 'set', host, 'master', this.bridge, 'up']);
      ip(['-n', ns, 'link', 'set', peer, 'name', 'eth0']);
      ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    return this.nodes;
  }

  /** Cuts `node` off from every other node (both directions); the bridge address stays reachable. */
  partition(node: NetnsNode): void {
    for (const o of this.nodes) {
      if (o === node) continue;
      ip(['-n', node.ns, 'neigh', 'replace', o.address, 'lladdr', NOWHERE_MAC, 'dev', 'eth0', 'nud', 'permanent']);
      ip(['-n', o.ns, 'neigh', 'replace', node.address, 'lladdr', NOWHERE_MAC, 'dev', 'eth0', 'nud', 'permanent']);
    }
    this.cut.add(node.ns);
  }

  /** Heals a partition made by {@link partition}: the entries go, ARP finds the real addresses again. */
  heal(node: NetnsNode): void {
    for (const o of this.nodes) {
      if (o === node) continue;
      for (const [ns, addr] of [[node.ns, o.address], [o.ns, node.address]] as const) {
        try {
          ip(['-n', ns, 'neigh', 'del', addr, 'dev', 'eth0']);
        } catch {
          // no entry (already healed)
        }
      }
    }
    this.cut.delete(node.ns);
  }

  /** Deletes the namespaces (their veth ends go with them) and the bridge. Safe to call twice; never throws. */
  destroy(): void {
    if (!this.created) return;
    for (const n of this.nodes) {
      try {
        ip(['netns', 'del', n.ns]);
      } catch {
        // already gone
      }
    }
    try {
      ip(['link', 'del', this.bridge]);
    } catch {
      // already gone
    }
    this.nodes.length = 0;
    this.created = false;
  }
}
