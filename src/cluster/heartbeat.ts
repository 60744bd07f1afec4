/**
 * The channel's two background loops, on the injected clock (timers unref'd):
 *  - heartbeats every `heartbeatIntervalMs` to every member with a ready
 *    outgoing connection (evidence of life for its failure detector), and the
 *    reconnect loop for members without one (at most every `reconnectMs`);
 *  - RTT probes every `rttIntervalMs` (a ping request per ready member,
 *    smoothed into its counters).
 */
import type { Clock, TimerHandle } from '../util/clock.js';
import { encodeEnvelope } from './envelope.js';
import type { Peer } from './peer.js';

export interface HeartbeatPort {
  readonly clock: Clock;
  readonly timing: { readonly heartbeatIntervalMs: number; readonly rttIntervalMs: number; readonly reconnectMs: number };
  /** The loops run only while the node runs. */
  running(): boolean;
  peers(): Iterable<Peer>;
  incarnation(): number;
  /** Whether the detector considers the member gone (no reconnects then). */
  isGone(id: string): boolean;
  send(peer: Peer, plain: Buffer): void;
  dial(peer: Peer): void;
  /** A ping request; resolves when answered. */
  ping(peer: Peer, timeoutMs: number): Promise<unknown>;
}

export class Heartbeats {
  private hbTimer: TimerHandle | undefined;
  private rttTimer: TimerHandle | undefined;

  constructor(private readonly port: HeartbeatPort) {}

  start(): void {
    this.heartbeatLoop();
    this.rttLoop();
  }

  stop(): void {
    if (this.hbTimer) this.port.clock.clearTimeout(this.hbTimer);
    if (this.rttTimer) this.port.clock.clearTimeout(this.rttTimer);
  }

  /** One round of heartbeats now (also after refuting a suspicion, with the new incarnation). */
  sendNow(): void {
    const { clock, timing } = this.port;
    const hb = encodeEnvelope({ t: 'hb', inc: this.port.incarnation() });
    for (const p of this.port.peers()) {
      if (p.ready()) this.port.send(p, hb);
      else if (!this.port.isGone(p.id) && clock.now() - p.lastDialAt >= timing.reconnectMs) {
        // reconnect loop for members without an outgoing connection (immediate dials on loss bypass it)
        p.lastDialAt = clock.now();
        this.port.dial(p);
      }
    }
  }

  private heartbeatLoop(): void {
    if (!this.port.running()) return;
    this.sendNow();
    this.hbTimer = this.port.clock.setTimeout(() => this.heartbeatLoop(), this.port.timing.heartbeatIntervalMs);
    this.hbTimer.unref?.();
  }

  private rttLoop(): void {
    if (!this.port.running()) return;
    const { clock, timing } = this.port;
    for (const p of this.port.peers()) {
      if (!p.ready()) continue;
      const t0 = clock.now();
      this.port.ping(p, timing.rttIntervalMs).then(() => p.recordRtt(clock.now() - t0), () => undefined);
    }
    this.rttTimer = clock.setTimeout(() => this.rttLoop(), timing.rttIntervalMs);
    this.rttTimer.unref?.();
  }
}
