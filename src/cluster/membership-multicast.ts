/**
 * Multicast membership (Tomcat's McastService): every `intervalMs` a UDP
 * heartbeat to the group announces this node's id, route, incarnation and
 * channel address. Datagrams are sealed with AES-256-GCM under a key derived
 * from the cluster secret, with the cluster name in clear (so other clusters
 * sharing the group are ignored cheaply) and authenticated as AAD; a per-sender
 * sequence number drops replays. An announcement from an unknown node is only
 * a candidate: the node verifies it over the channel. Sealed announcements
 * from known members are evidence of life, but only while the channel heard
 * from that member within `dropTimeMs`: a member heard on multicast alone is
 * suspected once its channel has been silent for dropTimeMs + suspectAfterMs.
 * Under TLS-only security (no secret, nothing to seal with) announcements are
 * only hints: they make candidates, never evidence.
 */
import dgram from 'node:dgram';
import { z } from 'zod';
import { CohortError } from '../errors.js';
import type { TimerHandle } from '../util/clock.js';
import { openDatagram, sealDatagram } from './crypto.js';
import type { DiscoverySink, MembershipContext, MembershipService } from './membership.js';

const MAGIC = Buffer.from('CHB1');
const MAX_DATAGRAM = 2048;

export interface MulticastMembershipConfig {
  readonly type: 'multicast';
  readonly address: string;
  readonly port: number;
  readonly intervalMs: number;
  readonly dropTimeMs: number;
  readonly ttl: number;
  readonly interface?: string | undefined;
  readonly bind?: string | undefined;
  readonly loopback: boolean;
}

/** The UDP socket surface used; injectable (deps.createUdpSocket) for tests. */
export type UdpSocketFactory = () => dgram.Socket;

const announcementSchema = z
  .object({
    id: z.string().min(1).max(128),
    route: z.string().min(1).max(128),
    inc: z.number().int().nonnegative(),
    host: z.string().min(1).max(255),
    port: z.number().int().min(1).max(65535),
    seq: z.number().int().nonnegative(),
  })
  .strict();
export type Announcement = z.infer<typeof announcementSchema>;

function header(clusterName: string): Buffer {
  const name = Buffer.from(clusterName, 'utf8');
  return Buffer.concat([MAGIC, Buffer.from([name.length]), name]);
}

export class MulticastMembership implements MembershipService {
  readonly type = 'multicast';
  private socket: dgram.Socket | undefined;
  private timer: TimerHandle | undefined;
  private closed = false;
  private seq = 0;
  private readonly head: Buffer;
  /** Last sequence and time heard, per sender id (replay guard; pruned after dropTimeMs). */
  private readonly heard = new Map<string, { seq: number; at: number }>();
  /** Datagrams dropped: failed authentication, malformed, replayed. */
  rejected = 0;

  constructor(private readonly config: MulticastMembershipConfig, private readonly ctx: MembershipContext<MulticastMembershipDeps>) {
    this.head = header(ctx.self().clusterName);
  }

  async start(sink: DiscoverySink): Promise<void> {
    const factory = this.ctx.deps.createUdpSocket ?? (() => dgram.createSocket({ type: 'udp4', reuseAddr: true }));
    const sock = factory();
    this.socket = sock;
    sock.on('message', (msg) => this.onMessage(msg, sink));
    sock.on('error', (err) => sink.error(new CohortError('COHORT_MULTICAST_FAILED', `multicast socket: ${err.message}`, { cause: err })));
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ port: this.config.port, address: this.config.bind, exclusive: false }, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    try {
      sock.addMembership(this.config.address, this.config.interface);
      if (this.config.interface) sock.setMulticastInterface(this.config.interface);
      sock.setMulticastTTL(this.config.ttl);
      sock.setMulticastLoopback(this.config.loopback);
    } catch (err) {
      sock.close();
      throw new CohortError('COHORT_MULTICAST_FAILED', `cannot join multicast group ${this.config.address} on ${this.config.interface ?? 'the default interface'}: ${(err as Error).message}`, { cause: err });
    }
    sock.unref();
    const round = (): void => {
      if (this.closed) return;
      this.announce(sink);
      this.prune(sink);
      this.timer = this.ctx.clock.setTimeout(round, this.config.intervalMs);
      this.timer.unref?.();
    };
    round();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) this.ctx.clock.clearTimeout(this.timer);
    try {
      this.socket?.close();
    } catch {
      // already closed: nothing to release
    }
  }

  /** Builds this node's datagram. Exposed for tests. */
  encode(): Buffer {
    const self = this.ctx.self();
    const a: Announcement = { id: self.id, route: self.route, inc: self.incarnation, host: self.channelAddress.host, port: self.channelAddress.port, seq: this.seq++ };
    const plain = Buffer.from(JSON.stringify(a));
    const body = this.ctx.keys ? sealDatagram(this.ctx.keys.datagram, this.head, plain) : plain;
    return Buffer.concat([this.head, body]);
  }

  /**
   * Parses and authenticates a datagram. Returns undefined for another
   * cluster's datagram (ignored, not counted); throws a CohortError for a bad one.
   */
  decode(msg: Buffer): Announcement | undefined {
    if (msg.length > MAX_DATAGRAM || msg.length < MAGIC.length + 1 || !msg.subarray(0, 4).equals(MAGIC)) {
      throw new CohortError('COHORT_DATAGRAM_MALFORMED', 'not a Cohort heartbeat');
    }
    const nameLen = msg[4]!;
    const headLen = MAGIC.length + 1 + nameLen;
    if (msg.length < headLen) throw new CohortError('COHORT_DATAGRAM_MALFORMED', 'truncated heartbeat');
    if (!msg.subarray(0, headLen).equals(this.head)) return undefined;
    const body = msg.subarray(headLen);
    const plain = this.ctx.keys ? openDatagram(this.ctx.keys.datagram, this.head, body) : body;
    let raw: unknown;
    try {
      raw = JSON.parse(plain.toString('utf8'));
    } catch (err) {
      throw new CohortError('COHORT_DATAGRAM_MALFORMED', 'heartbeat is not JSON', { cause: err });
    }
    const r = announcementSchema.safeParse(raw);
    if (!r.success) throw new CohortError('COHORT_DATAGRAM_MALFORMED', 'heartbeat fields invalid');
    return r.data;
  }

  private onMessage(msg: Buffer, sink: DiscoverySink): void {
    let a: Announcement | undefined;
    try {
      a = this.decode(msg);
    } catch {
      this.rejected++;
      return;
    }
    if (!a) return;
    const self = this.ctx.self();
    if (a.id === self.id) return;
    const now = this.ctx.clock.now();
    const prev = this.heard.get(a.id);
    if (prev && a.seq <= prev.seq) {
      this.rejected++;
      return;
    }
    this.heard.set(a.id, { seq: a.seq, at: now });
    if (!sink.isKnown(a.id)) sink.candidates([{ host: a.host, port: a.port }], 'multicast');
    // Evidence of life only if sealed (under TLS-only security anyone could forge it: it stays a hint),
    // and only while the channel heard from the member within dropTimeMs (Tomcat's member drop time).
    else if (this.ctx.keys) sink.evidence(a.id, a.inc, this.config.dropTimeMs);
  }

  private announce(sink: DiscoverySink): void {
    const sock = this.socket;
    if (!sock) return;
    sock.send(this.encode(), this.config.port, this.config.address, (err) => {
      if (err && !this.closed) sink.error(new CohortError('COHORT_MULTICAST_FAILED', `sending heartbeat to ${this.config.address}:${this.config.port}: ${err.message}`, { cause: err }));
    });
  }

  /**
   * Forgets unverified senders silent for dropTimeMs. Verified members keep
   * their last sequence, so their old datagrams can never be replayed.
   */
  private prune(sink: DiscoverySink): void {
    const now = this.ctx.clock.now();
    for (const [id, h] of this.heard) if (now - h.at > this.config.dropTimeMs && !sink.isKnown(id)) this.heard.delete(id);
  }
}

/** What the multicast service takes besides its config. */
export interface MulticastMembershipDeps {
  /** Default: a node:dgram udp4 socket with reuseAddr. */
  readonly createUdpSocket?: UdpSocketFactory;
}

export function createMulticastMembership(config: MulticastMembershipConfig, ctx: MembershipContext<MulticastMembershipDeps>): MembershipService {
  return new MulticastMembership(config, ctx);
}
