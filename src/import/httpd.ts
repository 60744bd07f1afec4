/**
 * `cohort import-httpd`: converts an httpd mod_proxy_balancer configuration
 * (the httpd + Tomcat tutorial kind) into Cohort's balancer configuration.
 * Pure: text in, a config object and warnings out. What can't be mapped, or
 * is deliberately changed (an open balancer-manager becomes an authenticated one), becomes a
 * warning that names the line.
 */
import { DEFAULTS } from '../config/balancer-schema.js';

export interface ImportResult {
  readonly config: Record<string, unknown>;
  readonly warnings: readonly string[];
}

interface MemberOut {
  url: string;
  route?: string;
  loadfactor?: number;
  max?: number;
  retry?: number;
  lbset?: number;
  status?: string[];
}

interface BalancerOut {
  name: string;
  method?: string;
  stickysession?: string;
  stickysessionsep?: string;
  nofailover?: boolean;
  maxattempts?: number;
  timeout?: number;
  failonstatus?: number[];
  forcerecovery?: boolean;
  members: MemberOut[];
}

/** Splits a directive line into words, honouring double quotes. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(line)) !== null) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!);
  return out;
}

function params(ws: readonly string[]): Map<string, string> {
  const p = new Map<string, string>();
  for (const w of ws) {
    const eq = w.indexOf('=');
    if (eq > 0) p.set(w.slice(0, eq).toLowerCase(), w.slice(eq + 1));
  }
  return p;
}

const onOff = (v: string) => /^on$/i.test(v);

const STATUS_FLAGS: Record<string, string | undefined> = { D: 'disabled', S: 'stopped', N: 'drain', H: 'hot-standby', I: 'ignore-errors', R: 'hot-standby' };

export interface ImportOptions {
  /**
   * Routes for the members that have no `route=`, in the order they appear
   * (`cohort import-httpd --routes tc1,tc2`). Each node must then run with
   * that route (`cohort node --route tc1`, Tomcat's `jvmRoute="tc1"`).
   */
  readonly routes?: readonly string[];
}

/** Access-control lines inside a <Location>: recognised; only the fully open forms map to Cohort (which does no access control on mounts). */
function accessControl(d: string, line: string): 'open' | 'restrictive' | undefined {
  if (d === 'order') return 'open'; // only meaningful with Allow/Deny, judged there
  if (d === 'allow') return /^allow\s+from\s+all\s*$/i.test(line) ? 'open' : 'restrictive';
  if (d === 'deny') return 'restrictive';
  if (d === 'require') return /^require\s+all\s+granted\s*$/i.test(line) ? 'open' : 'restrictive';
  if (d === 'satisfy') return 'open';
  return undefined;
}

/** A <LocationMatch> regex as a path prefix, when it is one (`^/examples`, `/examples(/.*)?$`, `^/docs/.*`). */
function regexPrefix(re: string): string | undefined {
  let r = re.replace(/^"|"$/g, '').replace(/^\^/, '');
  r = r.replace(/(\(\/\.\*\)\?|\/\.\*|\.\*)?\$?$/, '');
  if (r === '' || !r.startsWith('/') || /[\\()[\]{}|+*?.^$]/.test(r)) return undefined;
  return r;
}

export function importHttpd(text: string, file = 'httpd.conf', options: ImportOptions = {}): ImportResult {
  const warnings: string[] = [];
  const warn = (line: number, msg: string) => warnings.push(`${file}:${line}: ${msg}`);
  const balancers = new Map<string, BalancerOut>();
  const mounts: Record<string, unknown>[] = [];
  const listen: string[] = [];
  const getBalancer = (url: string): BalancerOut | undefined => {
    const m = /^balancer:\/\/([^/]+)/i.exec(url);
    if (!m) return undefined;
    const name = m[1]!.replace(/[^A-Za-z0-9_.-]/g, '_');
    let b = balancers.get(name);
    if (!b) {
      b = { name, members: [] };
      balancers.set(name, b);
    }
    return b;
  };
  const applyBalancerParams = (b: BalancerOut, p: Map<string, string>, line: number) => {
    for (const [k, v] of p) {
      switch (k) {
        case 'lbmethod':
          if (['byrequests', 'bytraffic', 'bybusyness'].includes(v)) b.method = v;
          else warn(line, `lbmethod=${v} has no Cohort equivalent; using byrequests (Cohort also offers bylatency)`);
          break;
        case 'stickysession': b.stickysession = v; break;
        case 'stickysessionsep': b.stickysessionsep = v.replace(/^"|"$/g, ''); break;
        case 'nofailover': b.nofailover = onOff(v); break;
        case 'maxattempts': b.maxattempts = Number(v); break;
        case 'timeout': b.timeout = Number(v); break;
        case 'forcerecovery': b.forcerecovery = onOff(v); break;
        case 'failonstatus': b.failonstatus = v.split(',').map((x) => Number(x.trim())).filter((n) => n >= 100 && n <= 599); break;
        case 'scolonpathdelim':
          if (!onOff(v)) warn(line, 'scolonpathdelim=Off: Cohort always reads the ;jsessionid= path parameter');
          break;
        case 'growth': warn(line, 'growth: not needed, members can be added at runtime without reserved slots'); break;
        default: warn(line, `${k}=${v}: not mapped`);
      }
    }
  };

  let inProxy: BalancerOut | undefined;
  let inLocation: { path: string; line: number; manager: boolean; open: boolean; match: boolean; restrictive: number[] } | undefined;
  /** Members without route=, in order, for --routes and the warning. */
  const routeless: { m: MemberOut; line: number; balancer: string }[] = [];
  let manager: { path: string } | undefined;
  const lines = text.split(/\r?\n/);
  // Join continuation lines (trailing backslash) while keeping the first line number.
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    let line = lines[i]!;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + lines[++i]!;
    line = line.trim();
    if (line === '' || line.startsWith('#')) continue;
    const ws = words(line);
    const d = ws[0]!.toLowerCase();
    if (d === '<proxy' || d === '<proxymatch') {
      const target = ws[1]?.replace(/>$/, '') ?? '';
      inProxy = getBalancer(target);
      if (!inProxy) warn(lineNo, `<Proxy ${target}> is not a balancer:// block; skipped`);
      continue;
    }
    if (d === '</proxy>' || d === '</proxymatch>') {
      inProxy = undefined;
      continue;
    }
    if (d === '<location' || d === '<locationmatch') {
      inLocation = { path: (ws[1] ?? '').replace(/>$/, ''), line: lineNo, manager: false, open: false, match: d === '<locationmatch', restrictive: [] };
      continue;
    }
    if (d === '</location>' || d === '</locationmatch>') {
      if (inLocation && !inLocation.manager && inLocation.restrictive.length > 0) {
        warn(inLocation.restrictive[0]!, `access control in <${inLocation.match ? 'LocationMatch' : 'Location'} ${inLocation.path}> (lines ${inLocation.restrictive.join(', ')}) is not imported: Cohort's mounts answer whoever reaches the listener; restrict them with the listen address, a firewall or a proxy in front`);
      }
      if (inLocation?.manager) {
        const path = inLocation.path.replace(/^"|"$/g, '').replace(/\/+$/, '') || '/balancer-manager';
        manager = { path };
        warn(inLocation.line, `<Location ${inLocation.path}> balancer-manager${inLocation.open ? ' was open to everyone' : ''}: it becomes Cohort's manager at ${path} on its own loopback listener (${DEFAULTS.managerListen}) with authentication and CSRF tokens — a password is generated on first start, or set manager.users / manager.token (see docs/manager.md)`);
      }
      inLocation = undefined;
      continue;
    }
    if (inLocation) {
      const access = accessControl(d, line);
      if (d === 'sethandler' && /balancer-manager/i.test(ws[1] ?? '')) inLocation.manager = true;
      else if (access !== undefined) {
        if ((d === 'allow' || d === 'require') && access === 'open') inLocation.open = true;
        if (access === 'restrictive') inLocation.restrictive.push(lineNo);
      } else if (d === 'proxypass') {
        // The tutorial's form: `ProxyPass balancer://tccluster/examples stickysession=…` inside <Location /examples>.
        const target = ws[1] ?? '';
        const raw = inLocation.path.replace(/^"|"$/g, '');
        const path = inLocation.match ? regexPrefix(raw) : raw;
        if (path === undefined) {
          warn(lineNo, `ProxyPass in <LocationMatch ${inLocation.path}>: the pattern is not a plain path prefix; Cohort mounts by prefix — add a mount by hand; skipped`);
          continue;
        }
        if (inLocation.match) warn(lineNo, `<LocationMatch ${inLocation.path}> becomes the prefix mount ${path}`);
        if (target === '!') {
          warn(lineNo, `ProxyPass ! in <Location ${inLocation.path}>: exclusions are not needed; skipped`);
          continue;
        }
        const b = getBalancer(target);
        if (!b) {
          warn(lineNo, `ProxyPass ${target} in <Location ${inLocation.path}>: only balancer:// targets are imported; skipped`);
          continue;
        }
        const upstream = target.replace(/^balancer:\/\/[^/]+/i, '') || '/';
        applyBalancerParams(b, params(ws.slice(2)), lineNo);
        mounts.push({ path: path.replace(/(.)\/+$/, '$1'), balancer: b.name, upstream });
      } else if (d === 'proxypassreverse' || d === 'proxypassreversecookiepath') {
        // Cohort rewrites Location/Set-Cookie paths for every mount by default.
      } else {
        warn(lineNo, `${ws[0]} in <${inLocation.match ? 'LocationMatch' : 'Location'} ${inLocation.path}>: not mapped`);
      }
      continue;
    }
    switch (d) {
      case 'balancermember': {
        let rest = ws.slice(1);
        let b = inProxy;
        if (rest[0] && /^balancer:\/\//i.test(rest[0])) {
          b = getBalancer(rest[0]);
          rest = rest.slice(1);
        }
        if (!b) {
          warn(lineNo, 'BalancerMember outside a <Proxy balancer://…> block; skipped');
          break;
        }
        const url = rest[0] ?? '';
        if (!/^https?:\/\//i.test(url)) {
          warn(lineNo, `BalancerMember ${url}: only http:// and https:// members are supported (ajp:// → use the member's HTTP connector); skipped`);
          break;
        }
        const u = new URL(url);
        if (u.pathname !== '/' && u.pathname !== '') warn(lineNo, `BalancerMember ${url}: the path ${u.pathname} is dropped; use the mount's upstream path`);
        const m: MemberOut = { url: `${u.protocol}//${u.host}` };
        for (const [k, v] of params(rest.slice(1))) {
          switch (k) {
            case 'route': m.route = v; break;
            case 'loadfactor': m.loadfactor = Math.max(1, Math.min(100, Math.round(Number(v)))); break;
            case 'max': m.max = Number(v); break;
            case 'retry': m.retry = Number(v); break;
            case 'lbset': m.lbset = Number(v); break;
            case 'status': {
              const flags: string[] = [];
              for (const ch of v.replace(/^[+-]/, '').toUpperCase()) {
                const f = STATUS_FLAGS[ch];
                if (f) {
                  if (!flags.includes(f)) flags.push(f);
                  if (ch === 'R') warn(lineNo, 'status=R (hot spare) is mapped to hot-standby');
                } else warn(lineNo, `status flag ${ch} is not mapped`);
              }
              if (v.startsWith('-')) warn(lineNo, `status=${v}: clearing flags has no meaning in a fresh config; ignored`);
              else m.status = flags;
              break;
            }
            case 'smax': case 'ttl': case 'min':
              warn(lineNo, `${k}=${v}: Cohort keeps idle connections for timeouts.keepalive; not mapped`);
              break;
            case 'timeout': case 'connectiontimeout':
              warn(lineNo, `${k}=${v}: per-member timeouts are global in Cohort (timeouts.connect / timeouts.firstbyte); not mapped`);
              break;
            case 'redirect':
              warn(lineNo, `redirect=${v}: Cohort fails over within the same lbset first; not mapped`);
              break;
            default: warn(lineNo, `${k}=${v}: not mapped`);
          }
        }
        b.members.push(m);
        if (m.route === undefined) routeless.push({ m, line: lineNo, balancer: b.name });
        break;
      }
      case 'proxyset': {
        let b = inProxy;
        let rest = ws.slice(1);
        if (rest[0] && /^balancer:\/\//i.test(rest[0])) {
          b = getBalancer(rest[0]);
          rest = rest.slice(1);
        }
        if (!b) warn(lineNo, 'ProxySet outside a balancer; skipped');
        else applyBalancerParams(b, params(rest), lineNo);
        break;
      }
      case 'proxypass': {
        const path = ws[1] ?? '';
        const target = ws[2] ?? '';
        if (target === '!') {
          warn(lineNo, `ProxyPass ${path} !: exclusions are not needed (the manager has its own path or listener); skipped`);
          break;
        }
        const b = getBalancer(target);
        if (!b) {
          warn(lineNo, `ProxyPass ${path} ${target}: only balancer:// targets are imported; skipped`);
          break;
        }
        const upstream = target.replace(/^balancer:\/\/[^/]+/i, '') || '/';
        applyBalancerParams(b, params(ws.slice(3)), lineNo);
        mounts.push({ path, balancer: b.name, upstream });
        break;
      }
      case 'proxypassreverse':
      case 'proxypassreversecookiepath':
        // Cohort rewrites Location/Set-Cookie paths for every mount by default.
        break;
      case 'listen': {
        const a = ws[1] ?? '';
        if (/^\d+$/.test(a)) {
          listen.push(`127.0.0.1:${a}`);
          warn(lineNo, `Listen ${a} (all interfaces) becomes 127.0.0.1:${a}: Cohort listens beyond loopback only when told (use 0.0.0.0:${a})`);
        } else listen.push(a);
        break;
      }
      case 'header':
        if (/BALANCER_ROUTE_CHANGED|BALANCER_WORKER_ROUTE/.test(line)) {
          warn(lineNo, 'a ROUTEID cookie set from BALANCER_WORKER_ROUTE is not needed: Cohort nodes put the route in the session id and rewrite it on take-over');
        } else warn(lineNo, `${ws[0]}: not mapped`);
        break;
      case 'proxyrequests':
        if (onOff(ws[1] ?? '')) warn(lineNo, 'ProxyRequests On (a forward proxy) is never copied: Cohort is a reverse proxy only');
        break;
      case 'proxypreservehost':
        if (onOff(ws[1] ?? '')) warn(lineNo, 'ProxyPreserveHost On: not mapped; members receive X-Forwarded-Host and Forwarded');
        break;
      case 'balancerpersist':
        break;
      case 'loadmodule':
        warn(lineNo, `LoadModule ${ws[1] ?? ''}: not needed (the proxy, the balancer and its methods are built in)`);
        break;
      default:
        if (d.startsWith('</')) break; // the end of a block whose start was warned about
        if (d.startsWith('<')) warn(lineNo, `${line}: the block's directives are imported one by one; the block itself is not (Cohort serves every host name and interface it listens on)`);
        else warn(lineNo, `${ws[0]}: not mapped`);
    }
  }
  const routes = options.routes ?? [];
  routeless.forEach(({ m, line, balancer }, i) => {
    const route = routes[i];
    if (route !== undefined) {
      m.route = route;
      warn(line, `BalancerMember ${m.url} in ${balancer}: route=${route} from --routes — run that node with \`cohort node --route ${route}\` (a Tomcat: jvmRoute="${route}" on its <Engine>)`);
    } else {
      warn(line, `BalancerMember ${m.url} in ${balancer} has no route=: sessions cannot stick to it. Set route= here and the same route on the node (\`cohort node --route tc1\`; a Tomcat: jvmRoute="tc1" on its <Engine>), or give the routes in order with --routes tc1,tc2`);
    }
  });
  if (routes.length > routeless.length) warnings.push(`${file}: --routes has ${routes.length} routes for ${routeless.length} member${routeless.length === 1 ? '' : 's'} without route=; the extra ones (${routes.slice(routeless.length).join(', ')}) are unused`);
  for (const b of balancers.values()) if (b.members.length === 0) warnings.push(`${file}: balancer ${b.name} has no members`);
  const config: Record<string, unknown> = {
    listen: listen.length === 0 ? '127.0.0.1:8080' : listen.length === 1 ? listen[0] : listen,
    balancers: [...balancers.values()],
  };
  if (mounts.length > 0) config.mounts = mounts;
  if (manager) config.manager = manager;
  return { config, warnings };
}
