import { z } from 'zod';
import { clusterSectionShape, hostPort } from './cluster-section.js';
import { ERROR_PROBE_DEFAULTS } from '../balancer/error-probe.js';

/**
 * The balancer's configuration schema. Key names follow httpd's
 * mod_proxy_balancer (loadfactor, lbset, stickysession, retry, ...), so people
 * who set up the httpd + Tomcat cluster feel at home. Every key is documented
 * in docs/configuration.md with its default and unit; keep the two in step.
 * Unknown keys are rejected (`strict`).
 */

/** Named defaults, documented once (docs/configuration.md). */
export const DEFAULTS = {
  listen: '127.0.0.1:8080',
  /** Engines (processes) sharing the listeners and the member state; docs/balancer.md "Every core". */
  workers: 1,
  method: 'byrequests',
  stickysession: 'JSESSIONID|jsessionid',
  stickysessionsep: '.',
  maxattempts: 1,
  timeoutS: 0,
  loadfactor: 1,
  max: 150,
  retryS: 60,
  lbset: 0,
  forcerecovery: true,
  maxqueue: 1024,
  slowstartS: 10,
  retryBudgetPercent: 20,
  retryBudgetMin: 3,
  outlierConsecutive5xx: 5,
  outlierEjectTimeS: 30,
  outlierMaxEjectPercent: 50,
  hcheckIntervalS: 5,
  hcheckTimeoutS: 2,
  hcheckRise: 2,
  hcheckFall: 3,
  connectTimeoutS: 5,
  firstByteTimeoutS: 60,
  idleTimeoutS: 60,
  keepaliveTimeoutS: 5,
  maxHeaderSize: 16384,
  maxUrlLength: 8192,
  headersTimeoutS: 20,
  requestTimeoutS: 300,
  shutdownTimeoutS: 30,
  connections: 256,
  managerListen: '127.0.0.1:8090',
  managerPath: '/balancer-manager',
  managerSessionTtlS: 1800,
  managerHistory: 200,
} as const;

const seconds = z.number().min(0, 'expected a number of seconds ≥ 0');

const tlsFiles = z.strictObject({
  cert: z.string().min(1, 'expected a path to a PEM certificate file'),
  key: z.string().min(1, 'expected a path to a PEM private key file'),
});

export const listenerSchema = z.union([
  hostPort,
  z.strictObject({ address: hostPort, tls: tlsFiles.optional() }),
]);

export const memberStatusSchema = z.enum(['disabled', 'drain', 'hot-standby', 'ignore-errors', 'stopped']);

export const hcheckSchema = z.strictObject({
  path: z.string().startsWith('/', 'expected a path starting with "/"').default('/'),
  method: z.enum(['GET', 'HEAD', 'OPTIONS']).default('GET'),
  interval: z.number().positive('expected seconds > 0').default(DEFAULTS.hcheckIntervalS),
  timeout: z.number().positive('expected seconds > 0').default(DEFAULTS.hcheckTimeoutS),
  rise: z.number().int().min(1).default(DEFAULTS.hcheckRise),
  fall: z.number().int().min(1).default(DEFAULTS.hcheckFall),
  /** Accepted status codes; default 2xx and 3xx. */
  expect: z.array(z.number().int().min(100).max(599)).optional(),
});

/**
 * A member's own health-check settings, over the balancer's `hcheck` (or over the defaults when the
 * balancer has none): e.g. another path for one member. `false`: never check this member.
 */
export const memberHcheckSchema = z.union([
  z.literal(false),
  z.strictObject({
    path: hcheckSchema.shape.path.unwrap().optional(),
    method: hcheckSchema.shape.method.unwrap().optional(),
    interval: hcheckSchema.shape.interval.unwrap().optional(),
    timeout: hcheckSchema.shape.timeout.unwrap().optional(),
    rise: hcheckSchema.shape.rise.unwrap().optional(),
    fall: hcheckSchema.shape.fall.unwrap().optional(),
    expect: hcheckSchema.shape.expect,
  }),
]);

export const memberSchema = z.strictObject({
  url: z.string().url('expected an http:// or https:// URL').refine((u) => /^https?:\/\//i.test(u), 'expected an http:// or https:// URL'),
  route: z.string().regex(/^[A-Za-z0-9_~-][A-Za-z0-9_.~-]*$/, 'expected a route id of letters, digits, "-", "_", "." or "~"').optional(),
  loadfactor: z.number().int('expected an integer 1..100').min(1, 'expected an integer 1..100').max(100, 'expected an integer 1..100').default(DEFAULTS.loadfactor),
  max: z.number().int().min(1, 'expected an integer ≥ 1').default(DEFAULTS.max),
  retry: seconds.default(DEFAULTS.retryS),
  lbset: z.number().int().min(0).max(99, 'expected an integer 0..99').default(DEFAULTS.lbset),
  status: z.array(memberStatusSchema).default([]),
  hcheck: memberHcheckSchema.optional(),
});


export const outlierSchema = z.strictObject({
  consecutive5xx: z.number().int().min(1).default(DEFAULTS.outlierConsecutive5xx),
  ejecttime: seconds.default(DEFAULTS.outlierEjectTimeS),
  /** Capped at 50: outlier detection never ejects more than half of the members at once (issue 2). */
  maxejectpercent: z.number().min(0, 'expected a percentage 0..50').max(50, 'expected a percentage 0..50 (outlier detection never ejects more than half of the members)').default(DEFAULTS.outlierMaxEjectPercent),
});

export const balancerSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'expected a name of letters, digits, "-", "_" or "."'),
  method: z.enum(['byrequests', 'bytraffic', 'bybusyness', 'bylatency']).default(DEFAULTS.method),
  stickysession: z.string().default(DEFAULTS.stickysession),
  stickysessionsep: z.string().length(1, 'expected exactly one character').default(DEFAULTS.stickysessionsep),
  nofailover: z.boolean().default(false),
  maxattempts: z.number().int().min(0).default(DEFAULTS.maxattempts),
  timeout: seconds.default(DEFAULTS.timeoutS),
  maxqueue: z.number().int().min(0).default(DEFAULTS.maxqueue),
  failonstatus: z.array(z.number().int().min(100).max(599)).default([]),
  forcerecovery: z.boolean().default(DEFAULTS.forcerecovery),
  slowstart: seconds.default(DEFAULTS.slowstartS),
  retrybudget: z.strictObject({
    percent: z.number().min(0).max(100).default(DEFAULTS.retryBudgetPercent),
    min: z.number().int().min(0).default(DEFAULTS.retryBudgetMin),
  }).default({ percent: DEFAULTS.retryBudgetPercent, min: DEFAULTS.retryBudgetMin }),
  outlier: z.union([z.literal(false), outlierSchema]).default(false),
  hcheck: z.union([z.literal(false), hcheckSchema]).default(false),
  members: z.array(memberSchema).default([]),
  /** httpd ProxyPreserveHost for every mount of this balancer (a mount's own setting wins); off by default. */
  preservehost: z.boolean().default(false),
});

export const mountSchema = z.strictObject({
  path: z.string().startsWith('/', 'expected a path starting with "/"'),
  balancer: z.string(),
  upstream: z.string().startsWith('/', 'expected a path starting with "/"').optional(),
  /** ProxyPassReverse / ProxyPassReverseCookiePath rewriting; on by default. */
  reverse: z.boolean().default(true),
  /** httpd ProxyPreserveHost: send the client's Host to members instead of the member's host:port. Default: the balancer's. */
  preservehost: z.boolean().optional(),
});

/** A manager user: name and an scrypt hash (`cohort hash-password`), never a plain password. */
export const managerUserSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'expected a user name of letters, digits, "_", ".", "@" or "-"'),
  password: z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=_-]+\$[A-Za-z0-9+/=_-]+$/, 'expected an scrypt hash "scrypt$N$r$p$salt$hash" (make one with `cohort hash-password`)'),
});

/**
 * The balancer manager, dashboard and /metrics (docs/manager.md). Present
 * (even as `manager: {}`) = on; absent or `false` = off.
 */
/** `status:` the balancer's metrics and health listener (no manager needed). */
export const statusSchema = z.strictObject({
  listen: hostPort,
  /** Besides loopback, clients (IPs or CIDRs) allowed to read /metrics (/health and /live answer everyone). */
  from: z.array(z.string()).default([]),
});

export const managerSchema = z.strictObject({
  /** Its own listener; loopback by default. */
  listen: hostPort.default(DEFAULTS.managerListen),
  /** Serve the manager over HTTPS (PEM files); login cookies are then `Secure`. */
  tls: tlsFiles.optional(),
  /** URL path prefix of the page, dashboard and API. */
  path: z.string().regex(/^\/[A-Za-z0-9_.~\/-]*[A-Za-z0-9_.~-]$/, 'expected a path like "/balancer-manager" (no trailing "/")').default(DEFAULTS.managerPath),
  users: z.array(managerUserSchema).default([]),
  /** Bearer token for scripts (at least 16 characters). */
  token: z.string().min(16, 'expected a token of at least 16 characters').optional(),
  /** File holding the bearer token (first line); read at start. */
  tokenfile: z.string().min(1).optional(),
  /** Where the generated password is written (0600) when no users or token are configured; default `<config>.manager-password`, quick mode `.cohort-state/manager-password`. */
  passwordfile: z.string().min(1).optional(),
  /** More origins whose changes are accepted (a manager behind a reverse proxy), e.g. https://admin.example.com. */
  origins: z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'expected an origin like https://admin.example.com (scheme://host[:port], no path)')).default([]),
  /** Idle lifetime of a login session, seconds. */
  sessionttl: z.number().positive('expected seconds > 0').default(DEFAULTS.managerSessionTtlS),
  /** Whether GET /metrics needs credentials (Basic or Bearer): always, never, or (`remote`) except from this host directly. */
  metricsauth: z.union([z.boolean(), z.literal('remote')], { error: 'expected true, false or "remote"' }).default('remote'),
  /** State changes kept for the dashboard's history. */
  history: z.number().int().min(1).max(10000).default(DEFAULTS.managerHistory),
});

export const balancerConfigSchema = z.strictObject({
  listen: z.union([listenerSchema, z.array(listenerSchema).min(1)]).default(DEFAULTS.listen),
  balancers: z.array(balancerSchema).min(1, 'expected at least one balancer'),
  mounts: z.array(mountSchema).optional(),
  /** Client addresses whose X-Forwarded-* / Forwarded headers are trusted (exact IPs or CIDR). */
  trustedproxies: z.array(z.string()).default([]),
  /**
   * A client's FIN aborts its in-flight request (frees the member's slot at once). false: a client that
   * half-closes after sending its request still gets the answer (HTTP/1.1 allows it; netcat, some tools).
   */
  abortonclose: z.boolean().default(true),
  timeouts: z.strictObject({
    connect: z.number().positive().default(DEFAULTS.connectTimeoutS),
    firstbyte: z.number().positive().default(DEFAULTS.firstByteTimeoutS),
    idle: z.number().positive().default(DEFAULTS.idleTimeoutS),
    keepalive: z.number().positive().default(DEFAULTS.keepaliveTimeoutS),
    headers: z.number().positive().default(DEFAULTS.headersTimeoutS),
    request: z.number().min(0).default(DEFAULTS.requestTimeoutS),
    shutdown: z.number().min(0).default(DEFAULTS.shutdownTimeoutS),
  }).prefault({}),
  limits: z.strictObject({
    maxheadersize: z.number().int().min(1024).default(DEFAULTS.maxHeaderSize),
    maxurllength: z.number().int().min(256).default(DEFAULTS.maxUrlLength),
    connections: z.number().int().min(1).default(DEFAULTS.connections),
  }).prefault({}),
  upstreamtls: z.strictObject({
    rejectunauthorized: z.boolean().default(true),
    ca: z.string().optional(),
  }).prefault({}),
  /** `true` (JSON on stdout), `false`, or `{ path?: FILE, format?: json | combined }` (httpd's combined LogFormat). */
  accesslog: z.union([z.boolean(), z.strictObject({ path: z.string().optional(), format: z.enum(['json', 'combined']).default('json') })]).default(true),
  loglevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Engines sharing the listeners and the member state exactly (`max` is global); 1 = one engine in this process. */
  workers: z.number().int('expected an integer 1..64').min(1, 'expected an integer 1..64').max(64, 'expected an integer 1..64').default(DEFAULTS.workers),
  /**
   * Answer requests carrying `X-Cohort-Explain: 1` with an X-Cohort-Explain
   * response header: `local` (default) for loopback clients and
   * `trustedproxies` only, `true` for everyone, `false` never.
   */
  explain: z.union([z.boolean(), z.literal('local')]).default('local'),
  persist: z.boolean().default(true),
  /**
   * Join the session cluster's membership to learn the nodes (mod_cluster's
   * idea): nodes that publish role=node, http=URL, ready=true are added to
   * `balancer` as members; removed when they leave.
   */
  cluster: z.strictObject({
    balancer: z.string().optional(),
    ...clusterSectionShape('127.0.0.1:0'),
  }).optional(),
  manager: z.union([z.literal(false), managerSchema]).optional(),
  /**
   * A small listener of its own for `/metrics`, `/health` and `/live`, without
   * the manager (src/status/balancer-status.ts; docs/metrics.md).
   */
  status: statusSchema.optional(),
  /**
   * Members without a health check that failed at the connection level are
   * probed (`GET path` every `interval` s) and eligible again after `rise`
   * passes instead of after `retry` (src/balancer/error-probe.ts). false: off.
   */
  errorprobe: z.union([z.literal(false), z.strictObject({
    interval: z.number().positive().default(ERROR_PROBE_DEFAULTS.interval),
    timeout: z.number().positive().default(ERROR_PROBE_DEFAULTS.timeout),
    path: z.string().regex(/^\/[^\s#]*$/, 'expected a path like "/.cohort/health"').default(ERROR_PROBE_DEFAULTS.path),
    rise: z.number().int().min(1).default(ERROR_PROBE_DEFAULTS.rise),
  })]).prefault({}),
}).superRefine((cfg, ctx) => {
  const names = new Set<string>();
  cfg.balancers.forEach((b, i) => {
    if (names.has(b.name)) ctx.addIssue({ code: 'custom', path: ['balancers', i, 'name'], message: `duplicate balancer name "${b.name}"` });
    names.add(b.name);
    const routes = new Set<string>();
    b.members.forEach((m, j) => {
      if (m.route === undefined) return;
      if (routes.has(m.route)) ctx.addIssue({ code: 'custom', path: ['balancers', i, 'members', j, 'route'], message: `duplicate route "${m.route}" in balancer "${b.name}"` });
      routes.add(m.route);
    });
  });
  if (cfg.cluster?.balancer !== undefined && !names.has(cfg.cluster.balancer)) {
    ctx.addIssue({ code: 'custom', path: ['cluster', 'balancer'], message: `expected the name of a balancer (${[...names].join(', ')}), got "${cfg.cluster.balancer}"` });
  }
  (cfg.mounts ?? []).forEach((m, i) => {
    if (!names.has(m.balancer)) ctx.addIssue({ code: 'custom', path: ['mounts', i, 'balancer'], message: `expected the name of a balancer (${[...names].join(', ')}), got "${m.balancer}"` });
  });
});

export type BalancerConfigInput = z.input<typeof balancerConfigSchema>;
export type BalancerConfig = z.output<typeof balancerConfigSchema>;
export type BalancerSpec = z.output<typeof balancerSchema>;
export type MemberSpec = z.output<typeof memberSchema>;
export type MountSpec = z.output<typeof mountSchema>;
export type HcheckSpec = z.output<typeof hcheckSchema>;
export type MemberHcheck = z.output<typeof memberHcheckSchema>;
export type ListenerSpec = z.output<typeof listenerSchema>;
export type ManagerSpec = z.output<typeof managerSchema>;
export type StatusSpec = z.output<typeof statusSchema>;
