import type { DashboardSource } from './dashboard-source.js';
import { esc, jsonForScript, page } from './html.js';

/**
 * The dashboard shell: one panel per DashboardSource, fed by one SSE stream
 * (`<base>/api/events`, event name = source id). The core script owns the
 * connection and the panel registry; each source's clientScript draws its
 * own panel, so new panels (the session cluster's) need no change here.
 */
const DASHBOARD_CSS = `
.panel{background:#fff;border:1px solid #d8dce3;margin:0 0 16px;padding:8px 12px}
.tiles{display:flex;flex-direction:column;gap:8px}
.tile-group{display:flex;flex-wrap:wrap;gap:8px;align-items:stretch}
.tile-group h3{flex-basis:100%;margin:4px 0;font-size:14px}
.tile{width:190px;border-radius:6px;padding:8px;color:#fff;transition:background .2s}
.tile .url,.tile .why{font-size:11px;opacity:.9;word-break:break-all}
.tile .rate{font-size:18px;font-weight:600;margin:4px 0}
.tile .swatch{display:inline-block;width:10px;height:10px;border:1px solid #fff;margin-right:6px}
.state-ok{background:#18794e}.state-drain{background:#b76e00}.state-hot-standby{background:#5b5bd6}
.state-disabled{background:#6b7280}.state-error,.state-ejected,.state-check-failed{background:#b42318}
.node-alive{background:#18794e}.node-joining{background:#2b7bb9}.node-suspect{background:#b76e00}.node-gone{background:#b42318}
.transfer .bar{height:6px;background:rgba(255,255,255,.35);border-radius:3px;overflow:hidden;margin-top:4px}
.transfer .fill{height:100%;background:#fff;transition:width .2s}
.matrix-box{overflow:auto;margin:4px 0 8px}.matrix text{fill:#1f2328;font-family:inherit}
.charts{display:flex;flex-wrap:wrap;gap:16px;margin-top:12px}
.chart h3{margin:4px 0;font-size:13px}
.legend{font-size:12px}.legend .item{margin-right:12px}
.legend .swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
.history{font-size:12px;max-height:240px;overflow:auto;background:#fafbfc;border:1px solid #eee;padding:4px 4px 4px 36px}
.history .h-transition{color:#b42318}
.history .tone-good{color:#067647}.history .tone-bad{color:#b42318}.history .tone-warn{color:#b54708}.history .tone-info{color:#475467}
#conn{font-size:12px}
`;

const CORE_SCRIPT = `
(function () {
  var cfg = JSON.parse(document.getElementById('cohort-config').textContent);
  var impls = {};
  var conn = document.getElementById('conn');
  window.Cohort = {
    api: cfg.api, csrf: cfg.csrf,
    panel: function (id, impl) { impls[id] = impl; },
    status: function (text) { conn.textContent = text; }
  };
  window.addEventListener('load', function () {
    var es = new EventSource(cfg.api + '/events');
    es.onopen = function () { Cohort.status('live'); document.body.setAttribute('data-live', '1'); };
    es.onerror = function () { Cohort.status('reconnecting…'); document.body.removeAttribute('data-live'); };
    cfg.sources.forEach(function (id) {
      es.addEventListener(id, function (ev) {
        var msg = JSON.parse(ev.data);
        var impl = impls[id];
        if (!impl) return;
        var root = document.querySelector('section.panel[data-source="' + id + '"] .panel-body');
        if (msg.type === 'snapshot') impl.init(root, msg.data);
        else impl.event(msg.type, msg.data);
      });
    });
  });
})();
`;

export function renderDashboard(opts: { base: string; nonce: string; csrf: string | undefined; user: string; sources: readonly DashboardSource[] }): string {
  const { base, nonce, sources } = opts;
  const config = { api: `${base}/api`, csrf: opts.csrf ?? null, sources: sources.map((s) => s.id) };
  const panels = sources.map((s) => `<section class="panel" data-source="${esc(s.id)}"><h2>${esc(s.title)}</h2><div class="panel-body">loading…</div></section>`).join('\n');
  const scripts = [CORE_SCRIPT, ...sources.map((s) => s.clientScript)].map((js) => `<script nonce="${esc(nonce)}">${js}</script>`).join('\n');
  const nav = `<a href="${esc(base)}/">Manager</a><a href="${esc(base)}/dashboard">Dashboard</a><span id="conn">connecting…</span><span>${esc(opts.user)}</span>`;
  const body = `${panels}
<script type="application/json" id="cohort-config">${jsonForScript(config)}</script>
${scripts}`;
  return page({ title: 'Dashboard', nonce, nav, body, extraHead: `<style nonce="${esc(nonce)}">${DASHBOARD_CSS}</style>` });
}
