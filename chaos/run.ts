/**
 * `npm run chaos`: runs one chaos scenario, prints the report and exits 1
 * when a target is missed (2 on a usage error). SIGINT releases everything
 * the run started (processes by PID, namespaces, temp dirs) before exiting.
 */
import { NetnsUnavailable } from './netns.js';
import { USAGE, UsageError, parseChaosArgs } from './options.js';
import { formatReport, missedTargets } from './report.js';
import { Resources } from './resources.js';
import { runChaos } from './scenario.js';

async function main(): Promise<number> {
  if (process.argv.includes('--help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let options;
  try {
    options = parseChaosArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const res = new Resources();
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`\ncohort chaos: ${sig}: stopping everything this run started…\n`);
    void res.release().then((failures) => {
      for (const f of failures) process.stderr.write(`cleanup failed: ${f}\n`);
      process.exit(130);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const result = await runChaos(options, res, (line) => process.stderr.write(`${line}\n`));
    const failures = await res.release();
    process.stdout.write(`${formatReport(result)}\n`);
    if (options.json) process.stdout.write(`${JSON.stringify(result, (_k, v) => (v === Infinity ? 'Infinity' : v), 2)}\n`);
    for (const f of failures) process.stderr.write(`cleanup failed: ${f}\n`);
    return missedTargets(result).length === 0 && failures.length === 0 ? 0 : 1;
  } catch (err) {
    const failures = await res.release();
    for (const f of failures) process.stderr.write(`cleanup failed: ${f}\n`);
    if (err instanceof NetnsUnavailable) {
      process.stdout.write(`cohort chaos: netns profile SKIPPED: ${err.message}\n`);
      return 0;
    }
    process.stderr.write(`cohort chaos: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

process.exitCode = await main();
