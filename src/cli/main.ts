import { Command, CommanderError } from 'commander';
import { CohortError, ConfigError } from '../errors.js';
import { runBalancer } from './balancer-command.js';
import { runDemo } from './demo-command.js';
import { runNode } from './node-command.js';
import { registerRolloutCommand } from './rollout-command.js';
import { formatMembersTable, type ClusterSnapshot } from '../cluster/index.js';
import { parseBalancerConfig } from '../config/load.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { stringify as toYaml } from 'yaml';
import { importHttpd } from '../import/httpd.js';
import { hashPassword } from '../manager/password.js';
import { checkConfigFile, configFileFrom, CONFIG_ENV } from './check-config.js';
import { LOG_FORMATS, type LogFormat } from '../util/logger.js';

/** The package's version, from its package.json (dist/src/cli/ → the package root). */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function logFormat(value: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(value)) throw new ConfigError(undefined, [`--log-format: expected ${LOG_FORMATS.join(' | ')}, got "${value}"`]);
  return value as LogFormat;
}
const LOG_FILE_HELP = 'append the log to this file instead of stderr (JSON lines; reopened on SIGUSR2, for logrotate)';
const LOG_FORMAT_HELP = 'auto (human-readable on a terminal, JSON otherwise) | json | pretty';

export function buildProgram(): Command {
  const program = new Command('cohort')
    .description('Clustering for Node.js web applications: a sticky, failure-aware balancer and replicated sessions.')
    .version(packageVersion(), '-V, --version', 'print the version (of the cohort-cluster package) and exit')
    .exitOverride()
    .showHelpAfterError();

  program
    .command('balancer')
    .description('run the HTTP balancer (mod_proxy_balancer model)')
    .option('-c, --config <file>', `YAML configuration file (see docs/configuration.md); default $${CONFIG_ENV}`)
    .option('-l, --listen <host:port>', 'listen address (repeatable); quick mode default 127.0.0.1:8080', collect)
    .option('-m, --member <route=url>', 'a member, e.g. tc1=http://127.0.0.1:8081 (repeatable; quick mode)', collect)
    .option('--method <name>', 'byrequests | bytraffic | bybusyness | bylatency (quick mode)')
    .option('--stickysession <names>', 'cookie|parameter name (quick mode)', undefined)
    .option('--log-level <level>', 'trace | debug | info | warn | error | silent')
    .option('--no-access-log', 'disable the access log')
    .option('--manager <host:port>', 'quick mode: serve the balancer manager, dashboard and /metrics here (docs/manager.md)')
    .option('--status <host:port>', 'serve /metrics, /health and /live here (no manager needed; status.listen in a file)')
    .option('--log-file <file>', LOG_FILE_HELP)
    .option('--log-format <format>', LOG_FORMAT_HELP, logFormat)
    .option('--workers <n>', 'engines sharing the listeners and member state (overrides the config key `workers`; default 1)')
    .action(async (opts) => {
      await runBalancer(opts);
    });

  program
    .command('check-config')
    .description(`validate a balancer or node configuration file and exit (0 valid, 2 invalid); default $${CONFIG_ENV}`)
    .argument('[file]')
    .action((arg: string | undefined) => {
      const file = configFileFrom(arg);
      if (!file) throw new ConfigError(undefined, [`check-config: expected a file argument (or ${CONFIG_ENV})`]);
      const kind = checkConfigFile(file);
      process.stdout.write(`${file}: ok (${kind})\n`);
    });

  program
    .command('hash-password')
    .description('read a password on stdin and print its scrypt hash for manager.users[].password')
    .action(async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
      if (password === '') throw new CohortError('COHORT_MANAGER_INVALID', 'expected a password on stdin');
      process.stdout.write(`${await hashPassword(password)}\n`);
    });

  program
    .command('import-httpd')
    .description("convert an httpd mod_proxy_balancer configuration into Cohort's YAML (warnings on stderr)")
    .argument('<file>', 'httpd configuration file')
    .option('-o, --output <file>', 'write the YAML here instead of stdout')
    .option('--routes <list>', 'routes for the members without route=, in order, e.g. tc1,tc2 (each node\'s --route, Tomcat\'s jvmRoute)')
    .action((file: string, opts: { output?: string; routes?: string }) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`]);
      }
      const routes = opts.routes === undefined ? undefined : opts.routes.split(',').map((r) => r.trim()).filter((r) => r !== '');
      const { config, warnings } = importHttpd(text, file, routes ? { routes } : {});
      // The result must be a valid Cohort configuration.
      parseBalancerConfig(config, `${file} (converted)`);
      for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
      const yaml = `# Converted from ${file} by cohort import-httpd\n${toYaml(config)}`;
      if (opts.output) writeFileSync(opts.output, yaml);
      else process.stdout.write(yaml);
    });

  program
    .command('node')
    .description("run your app as a cluster node with replicated sessions")
    .option('-c, --config <file>', `YAML file with a node: section (see docs/node.md); default $${CONFIG_ENV}`)
    .option('--route <id>', 'this node\'s route (unique in the cluster), e.g. tc1')
    .option('-l, --listen <host:port>', 'the app\'s HTTP listener (default 127.0.0.1:8081)')
    .option('--app <module>', 'module whose default export is a request listener, an Express app or a Fastify instance')
    .option('--cluster-listen <host:port>', 'the cluster channel listener (default 127.0.0.1:4000)')
    .option('--cluster-name <name>', 'cluster name (default cohort)')
    .option('--advertise <host:port>', 'the channel address peers dial (when listening on a wildcard)')
    .option('-m, --member <host:port>', 'a static member\'s channel address (repeatable)', collect)
    .option('--multicast', 'discover members by UDP multicast (228.0.0.4:45564)')
    .option('--dns <name>', 'discover members by DNS (A and AAAA records), e.g. a Kubernetes headless service')
    .option('--dns-type <type>', 'with --dns: A | AAAA | A+AAAA | SRV (default A+AAAA; SRV records give the ports)')
    .option('--dns-port <port>', 'with --dns: the members\' channel port for A/AAAA answers (default this node\'s cluster port)')
    .option('--secret-file <file>', 'file holding the cluster secret (or set COHORT_CLUSTER_SECRET)')
    .option('--cluster-tls-ca <file>', 'mutual TLS on the cluster channel: the cluster CA certificate (PEM)')
    .option('--cluster-tls-cert <file>', 'mutual TLS: this node\'s certificate (PEM), signed by the cluster CA')
    .option('--cluster-tls-key <file>', 'mutual TLS: this node\'s private key (PEM)')
    .option('--sessions-mode <mode>', 'all-to-all | backup')
    .option('--backups <n>', 'backup copies per session in backup mode (default 1)')
    .option('--consistency <c>', 'async | sync (default async)')
    .option('--resave', 'store every session at the end of each request, changed or not (express-session\'s resave; the default)')
    .option('--no-resave', 'store a session only when it changed (express-session\'s resave: false, what it recommends)')
    .option('--save-uninitialized', 'store new sessions nothing was written to (express-session\'s saveUninitialized; the default)')
    .option('--no-save-uninitialized', 'create a session only when the request writes to it (saveUninitialized: false)')
    .option('--redis <url>', 'keep sessions in Redis/Valkey instead of replicating them (redis://[user:pass@]host:port[/db], rediss:// for TLS)')
    .option('--redis-cluster <host:port>', 'Redis mode on a Redis Cluster: a seed node (repeatable)', collect)
    .option('--redis-sentinel <host:port>', 'Redis mode through Sentinel: a sentinel (repeatable; with --redis-master)', collect)
    .option('--redis-master <name>', 'with --redis-sentinel: the master name the sentinels monitor')
    .option('--redis-client <name>', 'node-redis | ioredis (default node-redis; the package must be installed)')
    .option('--redis-password-file <file>', 'file holding the Redis password (or set COHORT_REDIS_PASSWORD)')
    .option('--redis-wait-replicas <n>', 'every commit waits until n replicas acknowledged it (WAIT)')
    .option('--loadfactor <n>', 'this node\'s weight for a balancer that learns the nodes (1..100)')
    .option('--load-report', 'publish a loadfactor derived from event-loop utilization (every 2 s)')
    .option('--metrics-path <path>', 'also serve the node\'s metrics at this app path, e.g. /metrics (default: only /.cohort/metrics)')
    .option('--log-level <level>', 'trace | debug | info | warn | error | silent')
    .option('--log-file <file>', LOG_FILE_HELP)
    .option('--log-format <format>', LOG_FORMAT_HELP, logFormat)
    .action(async (opts) => {
      await runNode(opts);
    });

  program
    .command('members')
    .description("print a running node's view of the cluster")
    .option('--node <url>', 'the node\'s HTTP address', 'http://127.0.0.1:8081')
    .option('--json', 'print the raw JSON')
    .action(async (opts: { node: string; json?: boolean }) => {
      const res = await fetch(new URL('/.cohort/members', opts.node), { signal: AbortSignal.timeout(5000) });
      if (res.status !== 200) throw new CohortError('COHORT_MEMBERS_UNAVAILABLE', `${opts.node} answered ${res.status}: ${(await res.text()).trim()}`);
      const snap = (await res.json()) as ClusterSnapshot;
      process.stdout.write(opts.json ? `${JSON.stringify(snap, null, 2)}\n` : `${formatMembersTable(snap)}\n`);
    });

  program
    .command('demo')
    .description('start a balancer and three session-replicating nodes on localhost')
    .option('--port <n>', 'balancer port (nodes use the next ports)', '8080')
    .option('--nodes <n>', 'number of nodes', '3')
    .option('--restart-after <s>', 'restart a killed node after this many seconds (0 = never)', '5')
    .option('--log-format <format>', LOG_FORMAT_HELP, logFormat)
    .action(async (opts) => {
      await runDemo({ port: Number(opts.port), nodes: Number(opts.nodes), restartAfter: Number(opts.restartAfter), ...(opts.logFormat ? { logFormat: opts.logFormat as LogFormat } : {}) });
    });

  registerRolloutCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`cohort: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof CohortError) {
      process.stderr.write(`cohort: ${err.code}: ${err.message}\n`);
      process.exit(1);
    }
    const e = err as NodeJS.ErrnoException;
    if (e?.code === 'EADDRINUSE' || e?.code === 'EACCES') {
      process.stderr.write(`cohort: cannot listen: ${e.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
