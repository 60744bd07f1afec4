import { randomBytes } from 'node:crypto';

/**
 * HTML helpers. Every value that reaches a page goes through {@link esc}
 * (text and attribute values alike) or {@link jsonForScript}; there is no
 * other way data enters markup. A strict Content-Security-Policy with a
 * per-response nonce is the second line of defence.
 */
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function esc(value: unknown): string {
  if (value === undefined || value === null) return '';
  return String(value).replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);
}

/** JSON safe inside a <script type="application/json"> element. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

/** Security headers for every manager response; pages add their CSP nonce. */
export function securityHeaders(nonce?: string): Record<string, string> {
  const h: Record<string, string> = {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'same-origin',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
  };
  h['content-security-policy'] = nonce
    ? `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`
    : `default-src 'none'; frame-ancestors 'none'`;
  return h;
}

export const BASE_CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header a{color:#9cd0ff}header form{margin-left:auto}
main{padding:12px 16px}
h2{margin:18px 0 6px;font-size:17px}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border:1px solid #d8dce3;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef0f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
form.inline{display:inline}
input[type=number]{width:4.5em}input.route{width:7em}input.url{width:18em}
button{font-size:12px;margin:1px}
.flags-Ok{color:#18794e;font-weight:600}.bad{color:#b42318;font-weight:600}
.err{background:#fee4e2;border:1px solid #b42318;padding:8px;margin:8px 0}
.meta{color:#555;font-size:12px}
`;

/** The common page frame. `body` must already be escaped markup. */
export function page(opts: { title: string; nonce: string; body: string; nav?: string; extraHead?: string }): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(opts.title)}</title><style nonce="${esc(opts.nonce)}">${BASE_CSS}</style>${opts.extraHead ?? ''}</head>
<body><header><strong>Cohort</strong><span>${esc(opts.title)}</span>${opts.nav ?? ''}</header>
<main>${opts.body}</main></body></html>
`;
}

/** Human-readable bytes. */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
