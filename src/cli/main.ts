import { Command, CommanderError } from 'commander';
import { CohortError, ConfigError } from '../errors.js';
import { runBalancer } from './balancer-command.js';
import { runDemo } from './demo-command.js';
import { loadBalancerConfig } from '../config/load.js';
import { hashPassword } from '../manager/password.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function buildProgram(): Command {
  const program = new Command('cohort')
    .description('Clustering for Node.js web applications: a sticky, failure-aware balancer and replicated sessions.')
    .exitOverride()
    .showHelpAfterError();

  program
    .command('balancer')
    .description('run the HTTP balancer (mod_proxy_balancer model)')
    .option('-c, --config <file>', 'YAML configuration file (see docs/configuration.md)')
    .option('-l, --listen <host:port>', 'listen address (repeatable); quick mode default 127.0.0.1:8080', collect)
    .option('-m, --member <route=url>', 'a member, e.g. tc1=http://127.0.0.1:8081 (repeatable; quick mode)', collect)
    .option('--method <name>', 'byrequests | bytraffic | bybusyness | bylatency (quick mode)')
    .option('--stickysession <names>', 'cookie|parameter name (quick mode)', undefined)
    .option('--log-level <level>', 'trace | debug | info | warn | error | silent')
    .option('--no-access-log', 'disable the access log')
    .option('--manager <host:port>', 'quick mode: serve the balancer manager, dashboard and /metrics here (docs/manager.md)')
    .action(async (opts) => {
      await runBalancer(opts);
    });

  program
    .command('check-config')
    .description('validate a balancer configuration file and exit (0 valid, 2 invalid)')
    .argument('<file>')
    .action((file: string) => {
      loadBalancerConfig(file);
      process.stdout.write(`${file}: ok\n`);
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
    .command('demo')
    .description('start a balancer in front of demo backends on localhost')
    .option('--port <n>', 'balancer port', '8080')
    .action(async (opts) => {
      await runDemo({ port: Number(opts.port) });
    });

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
