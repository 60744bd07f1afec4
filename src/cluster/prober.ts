/**
 * Probing a suspect member, Lifeguard-style: a direct ping over the channel
 * plus `indirectProbes` other members asked to ping it. A ping flagged
 * `suspect` makes its receiver raise its own incarnation, so its answer
 * refutes the suspicion. Answers feed the failure detector; when nothing
 * answers, the detector's confirmation deadline expires and the member is gone.
 */
import type { Random } from '../util/clock.js';
import type { JsonValue, MemberView } from './types.js';
import { MemberState } from './types.js';

/** Internal topics (under the reserved prefix). */
export const PING_TOPIC = '__cohort.ping';
export const PROBE_TOPIC = '__cohort.probe';

export interface ProberPort {
  request(to: string, topic: string, payload: JsonValue, options: { timeoutMs: number }): Promise<JsonValue>;
  liveMembers(): readonly MemberView[];
  isPeer(id: string): boolean;
  /** Evidence for the detector. */
  alive(id: string, incarnation: number): void;
  /** Raise this node's incarnation and tell everyone (refutes suspicion of us). */
  refute(): number;
  incarnation(): number;
}

export interface ProberTiming {
  readonly probeTimeoutMs: number;
  readonly indirectProbes: number;
}

function field(v: JsonValue, k: string): JsonValue | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? v[k] : undefined;
}

export function incarnationOf(r: JsonValue): number | undefined {
  const inc = field(r, 'inc');
  return typeof inc === 'number' ? inc : undefined;
}

export class Prober {
  constructor(private readonly port: ProberPort, private readonly random: Random, private readonly timing: ProberTiming) {}

  /** Probes `id` directly and through others. */
  probe(id: string): void {
    const onAnswer = (r: JsonValue): void => {
      const inc = incarnationOf(r);
      if (inc !== undefined) this.port.alive(id, inc);
    };
    // A probe that gets no answer is the evidence we wait for, not an error to report.
    this.port.request(id, PING_TOPIC, { suspect: true }, { timeoutMs: this.timing.probeTimeoutMs }).then(onAnswer, () => undefined);
    const helpers = this.port.liveMembers().filter((m) => m.id !== id && m.state === MemberState.Alive);
    for (let i = 0; i < this.timing.indirectProbes && helpers.length > 0; i++) {
      const h = helpers.splice(Math.floor(this.random() * helpers.length), 1)[0]!;
      this.port.request(h.id, PROBE_TOPIC, { target: id }, { timeoutMs: this.timing.probeTimeoutMs * 2 }).then((r) => {
        if (field(r, 'ok') === true) onAnswer(r);
      }, () => undefined);
    }
  }

  /** Answers a ping; `suspect: true` means the sender suspects us. */
  onPing(payload: JsonValue): JsonValue {
    return { inc: field(payload, 'suspect') === true ? this.port.refute() : this.port.incarnation() };
  }

  /** Pings `target` on behalf of a member that suspects it. */
  async onProbeRequest(payload: JsonValue): Promise<JsonValue> {
    const target = field(payload, 'target');
    if (typeof target !== 'string' || !this.port.isPeer(target)) return { ok: false };
    try {
      const inc = incarnationOf(await this.port.request(target, PING_TOPIC, { suspect: true }, { timeoutMs: this.timing.probeTimeoutMs }));
      return inc === undefined ? { ok: false } : { ok: true, inc };
    } catch {
      // no answer is the answer
      return { ok: false };
    }
  }
}
