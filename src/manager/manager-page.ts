import type { Balancer } from '../balancer/balancer.js';
import type { MemberSnapshot } from '../balancer/member.js';
import { esc, fmtBytes, page } from './html.js';

/**
 * The balancer-manager page (httpd's /balancer-manager): every balancer and
 * member with its state and counters, and forms for every action. Works
 * without JavaScript; every form carries the CSRF nonce.
 */

export interface PageContext {
  /** URL prefix, e.g. /balancer-manager. */
  readonly base: string;
  readonly user: string;
  /** Nonce for forms; undefined for bearer principals (they don't use forms). */
  readonly csrf: string | undefined;
  readonly nonce: string;
  readonly error?: string;
  readonly persisted: boolean;
  /** Balancing methods offered in the balancer form. */
  readonly methods?: readonly string[];
}

type BalancerSnapshot = ReturnType<Balancer['snapshot']>;

function hidden(name: string, value: string | undefined): string {
  return value === undefined ? '' : `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`;
}

function form(ctx: PageContext, b: string, member: string | undefined, inner: string, cls = 'inline'): string {
  return `<form class="${cls}" method="post" action="${esc(ctx.base)}/action">${hidden('csrf', ctx.csrf)}${hidden('balancer', b)}${hidden('member', member)}${inner}</form>`;
}

function toggle(ctx: PageContext, b: string, m: MemberSnapshot, flag: string, label: string): string {
  const on = m.status.includes(flag as never);
  return form(ctx, b, m.route, `<button name="op" value="${esc(`${flag}:${on ? 'off' : 'on'}`)}" title="${esc(`${on ? 'clear' : 'set'} ${flag}`)}">${esc(on ? `${label} off` : label)}</button>`);
}

function when(wall: number | undefined): string {
  return wall === undefined ? '' : new Date(wall).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function memberRow(ctx: PageContext, b: string, m: MemberSnapshot): string {
  const disabled = m.status.includes('disabled' as never);
  const reason = m.reason ? `${m.reason.source}: ${m.reason.message} (since ${when(m.reason.sinceWall)})` : '';
  const lastError = m.lastError ? `${m.lastError.source}: ${m.lastError.message} (${when(m.lastError.sinceWall)})` : '';
  const check = m.lastCheck ? `${m.lastCheck.ok ? 'pass' : 'FAIL'}: ${m.lastCheck.detail} (${when(m.lastCheck.at)})` : '—';
  const healthCls = m.health === 'ok' ? '' : ' class="bad"';
  const actions = [
    form(ctx, b, m.route, `<button name="op" value="${disabled ? 'enable' : 'disable'}">${disabled ? 'Enable' : 'Disable'}</button>`),
    toggle(ctx, b, m, 'drain', 'Drain'),
    toggle(ctx, b, m, 'hot-standby', 'Hot standby'),
    toggle(ctx, b, m, 'ignore-errors', 'Ignore errors'),
    form(ctx, b, m.route, `<button name="op" value="reset">Reset errors</button>`),
    form(ctx, b, m.route, `<label title="tick to confirm"><input type="checkbox" name="confirm" value="yes" required>sure</label><button name="op" value="remove">Remove</button>`),
    form(ctx, b, m.route,
      `<label>lf <input type="number" name="loadfactor" min="1" max="100" value="${esc(m.loadfactor)}"></label> ` +
      `<label>lbset <input type="number" name="lbset" min="0" max="99" value="${esc(m.lbset)}"></label> ` +
      `<label>route <input class="route" name="route" value="${esc(m.route)}"></label> ` +
      `<button name="op" value="set">Set</button>`, 'edit'),
  ].join(' ');
  return `<tr data-balancer="${esc(b)}" data-member="${esc(m.route)}">
<td>${esc(m.route)}</td><td>${esc(m.url)}</td>
<td class="${m.flags === 'Ok' ? 'flags-Ok' : 'bad'}" data-flags="${esc(m.flags)}">${esc(m.flags)}</td>
<td${healthCls}>${esc(m.health)}${reason ? `<div class="meta">${esc(reason)}</div>` : ''}</td>
<td class="num">${esc(m.loadfactor)}</td><td class="num">${esc(m.lbset)}</td>
<td class="num">${esc(m.busy)}/${esc(m.max)}</td><td class="num" data-requests="${esc(m.requests)}">${esc(m.requests)}</td>
<td class="num">${esc(m.errors)}</td><td class="num">${esc(fmtBytes(m.bytesOut))}</td><td class="num">${esc(fmtBytes(m.bytesIn))}</td>
<td class="num">${m.latencyMs === undefined ? '—' : esc(`${m.latencyMs.toFixed(1)} ms`)}</td>
<td>${esc(lastError)}</td><td>${esc(check)}</td>
<td>${actions}</td></tr>`;
}

function balancerSection(ctx: PageContext, b: BalancerSnapshot): string {
  const rows = b.members.map((m) => memberRow(ctx, b.name, m)).join('\n');
  const add = form(ctx, b.name, undefined,
    `<label>URL <input class="url" name="url" placeholder="http://127.0.0.1:8083" required></label> ` +
    `<label>route <input class="route" name="route" placeholder="tc3"></label> ` +
    `<label>lf <input type="number" name="loadfactor" min="1" max="100" value="1"></label> ` +
    `<label>lbset <input type="number" name="lbset" min="0" max="99" value="0"></label> ` +
    `<button name="op" value="add">Add member</button>`, 'add');
  const yesNo = (name: string, on: boolean) =>
    `<select name="${esc(name)}"><option value="on"${on ? ' selected' : ''}>on</option><option value="off"${on ? '' : ' selected'}>off</option></select>`;
  const methods = ctx.methods ?? [b.method];
  const settings = form(ctx, b.name, undefined,
    `<label>method <select name="method">${methods.map((m) => `<option${m === b.method ? ' selected' : ''}>${esc(m)}</option>`).join('')}</select></label> ` +
    `<label>stickysession <input class="route" name="stickysession" value="${esc(b.stickysession)}"></label> ` +
    `<label>sep <input name="stickysessionsep" size="1" maxlength="1" value="${esc(b.stickysessionsep)}"></label> ` +
    `<label>maxattempts <input type="number" name="maxattempts" min="0" value="${esc(b.maxattempts)}"></label> ` +
    `<label>timeout (s) <input type="number" name="timeout" min="0" step="any" value="${esc(b.timeout)}"></label> ` +
    `<label>nofailover ${yesNo('nofailover', b.nofailover)}</label> ` +
    `<label>forcerecovery ${yesNo('forcerecovery', b.forcerecovery)}</label> ` +
    `<button name="op" value="balancer">Update balancer</button>`, 'settings');
  return `<section data-balancer="${esc(b.name)}"><h2>balancer://${esc(b.name)}</h2>
<p class="meta">method ${esc(b.method)} · stickysession ${esc(b.stickysession)} (sep "${esc(b.stickysessionsep)}") · nofailover ${esc(b.nofailover)} · maxattempts ${esc(b.maxattempts)} · timeout ${esc(b.timeout)} s · forcerecovery ${esc(b.forcerecovery)} · queued ${esc(b.queued)} · unavailable ${esc(b.unavailable)}</p>
<table><thead><tr><th>Route</th><th>URL</th><th>Status</th><th>Health</th><th>Load factor</th><th>LB set</th><th>Busy</th><th>Requests</th><th>Errors</th><th>Sent</th><th>Received</th><th>Latency</th><th>Last error</th><th>Health check</th><th>Actions</th></tr></thead>
<tbody>
${rows}
</tbody></table>
<p>${add}</p><p>${settings}</p></section>`;
}

export function renderManagerPage(ctx: PageContext, balancers: readonly BalancerSnapshot[]): string {
  const nav = `<a href="${esc(ctx.base)}/">Manager</a><a href="${esc(ctx.base)}/dashboard">Dashboard</a><a href="${esc(ctx.base)}/api/balancers">JSON</a><a href="/metrics">Metrics</a>` +
    `<span>${esc(ctx.user)}</span>` +
    (ctx.csrf !== undefined ? `<form method="post" action="${esc(ctx.base)}/logout">${hidden('csrf', ctx.csrf)}<button>Log out</button></form>` : '');
  const error = ctx.error ? `<div class="err" role="alert">${esc(ctx.error)}</div>` : '';
  const note = `<p class="meta">Changes take effect at once${ctx.persisted ? ' and are saved next to the configuration file (re-applied at start)' : ' and are not saved (no configuration file or persist: false)'}.</p>`;
  return page({ title: 'Balancer manager', nonce: ctx.nonce, nav, body: error + note + balancers.map((b) => balancerSection(ctx, b)).join('\n') });
}

export function renderLoginPage(base: string, nonce: string, message?: string): string {
  const body = `<h2>Log in</h2>${message ? `<div class="err" role="alert">${esc(message)}</div>` : ''}
<form method="post" action="${esc(base)}/login">
<p><label>User <input name="user" autocomplete="username" required autofocus></label></p>
<p><label>Password <input name="password" type="password" autocomplete="current-password" required></label></p>
<p><button>Log in</button></p></form>
<p class="meta">Scripts may use HTTP Basic or a bearer token instead (docs/manager.md).</p>`;
  return page({ title: 'Balancer manager', nonce, body });
}

export function renderErrorPage(base: string, nonce: string, status: number, code: string, message: string): string {
  return page({ title: `Error ${status}`, nonce, body: `<div class="err" role="alert">${esc(code)}: ${esc(message)}</div><p><a href="${esc(base)}/">Back to the manager</a></p>` });
}
