/**
 * The dashboard's fleet panel: every balancer of the fleet — this one and
 * each peer that joined the cluster — with its members as that balancer sees
 * them, its fleet version and this balancer's sync counters. Peers' views are
 * asked over the channel (fleet.view) every few seconds, not per viewer.
 */
import type { DashboardSource } from '../manager/dashboard-source.js';
import type { Clock } from '../util/clock.js';
import type { FleetSync } from './fleet-sync.js';

const POLL_EVERY_MS = 2000;

export const FLEET_PANEL_SCRIPT = `
(function () {
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var root = null;
  function render(s) {
    root.textContent = '';
    var rows = [{ route: s.self.route, state: 'this balancer', view: s.self }].concat(s.peers);
    rows.forEach(function (p) {
      var box = el('div', { 'class': 'tile', 'data-fleet-balancer': p.route, 'data-state': p.state });
      box.appendChild(el('strong', {}, p.route + ' (' + p.state + ')'));
      if (p.error) box.appendChild(el('div', { 'class': 'why' }, 'no view: ' + p.error));
      if (p.view) {
        box.appendChild(el('div', { 'class': 'st' }, 'fleet version ' + p.view.highest));
        p.view.balancers.forEach(function (b) {
          b.members.forEach(function (m) {
            box.appendChild(el('div', { 'data-member': m.route }, b.name + '/' + m.route + ': ' + m.flags + ' · ' + m.requests + ' req'));
          });
        });
      }
      root.appendChild(box);
    });
    var c = s.counters;
    root.appendChild(el('div', { 'class': 'why' }, 'applied ' + c.applied + ' · refused stale ' + c.stale + ', forged ' + c.forged + ', invalid ' + c.invalid + ' · failure reports sent ' + c.evidenceSent + ', acted on ' + c.evidenceAvoided + ', outweighed ' + c.evidenceIgnored));
  }
  Cohort.panel('fleet', {
    init: function (el0, snapshot) { root = el0; render(snapshot); },
    event: function (type, data) { if (type === 'snapshot') render(data); }
  });
})();
`;

export class FleetSource implements DashboardSource {
  readonly id = 'fleet';
  readonly title = 'Balancer fleet';
  readonly clientScript = FLEET_PANEL_SCRIPT;
  private readonly listeners = new Set<(type: string, data: unknown) => void>();
  private peers: Awaited<ReturnType<FleetSync['peerViews']>> = [];
  private lastPoll = Number.NEGATIVE_INFINITY;
  private polling = false;

  constructor(
    private readonly fleet: FleetSync,
    private readonly clock: Clock,
  ) {}

  snapshot() {
    return { self: this.fleet.view(), peers: this.peers, counters: { ...this.fleet.counters } };
  }

  tick(): void {
    const now = this.clock.now();
    if (this.polling || now - this.lastPoll < POLL_EVERY_MS) return;
    this.lastPoll = now;
    this.polling = true;
    void this.fleet.peerViews().then((views) => {
      this.peers = views;
      this.polling = false;
      const snap = this.snapshot();
      for (const l of this.listeners) l('snapshot', snap);
    });
  }

  /** Fetches the peers' views now (the JSON API's callers want them without waiting for a tick). */
  async refresh(): Promise<void> {
    this.peers = await this.fleet.peerViews();
  }

  subscribe(listener: (type: string, data: unknown) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.listeners.clear();
  }
}
