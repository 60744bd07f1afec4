import { closeSync, openSync } from 'node:fs';
import { isatty } from 'node:tty';
import { ConfigError } from '../errors.js';
import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';
import { prettyStream } from './log-pretty.js';

/** `auto`: human-readable on a TTY, JSON otherwise. Documented in docs/configuration.md (`--log-format`). */
export type LogFormat = 'auto' | 'json' | 'pretty';
export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];

/** A file or fd destination; file destinations can be reopened (logrotate). */
interface Output {
  readonly stream?: DestinationStream;
  readonly file: string | undefined;
  reopen(): void;
}

type SonicBoom = ReturnType<typeof pino.destination>;

/**
 * The log destinations a command opened: every file among them is reopened by
 * {@link LogOutputs.reopen} (SIGUSR2, logrotate's `postrotate`). A file that
 * cannot be reopened (or written) is reported through `warn` and logging goes
 * on to the previous file descriptor: the process keeps serving.
 */
export class LogOutputs {
  private readonly outputs: Output[] = [];

  constructor(private readonly warn: (message: string, err: Error) => void = (m, e) => process.stderr.write(`cohort: ${m}: ${e.message}\n`)) {}

  /**
   * A destination: a path (appended to), or fd 1 / 2. `format` applies to a TTY fd only; files are JSON.
   * A file that cannot be opened now is a {@link ConfigError} naming `key` (`--log-file`, `accesslog.path`):
   * at start the process refuses to run rather than log into the void.
   */
  open(dest: string | number, format: LogFormat = 'auto', key = '--log-file'): DestinationStream {
    if (typeof dest === 'string') this.check(dest, key);
    const sonic: SonicBoom = pino.destination({ dest, sync: false, minLength: 0, ...(typeof dest === 'string' ? { mkdir: false } : {}) });
    const file = typeof dest === 'string' ? dest : undefined;
    // Without a listener an open or write error would end the process.
    sonic.on('error', (err: Error) => this.warn(file ? `log file ${file} cannot be opened or written; logging on to the previous file` : `log output fd ${String(dest)} failed`, err));
    const pretty = typeof dest === 'number' && (format === 'pretty' || (format === 'auto' && isatty(dest)));
    const stream = pretty ? prettyStream(sonic, isatty(dest as number)) : sonic;
    const out: Output = {
      stream,
      file,
      reopen: () => {
        if (!file) return;
        try {
          sonic.reopen();
        } catch (err) {
          this.warn(`log file ${file} cannot be reopened`, err as Error);
        }
      },
    };
    this.outputs.push(out);
    return stream;
  }

  /** A file that cannot be opened for appending now is a {@link ConfigError} naming `key`. */
  check(file: string, key: string): void {
    try {
      closeSync(openSync(file, 'a', 0o640));
    } catch (err) {
      throw new ConfigError(undefined, [`${key}: cannot open ${file} for appending: ${(err as Error).message}`]);
    }
  }

  /**
   * A file written by another writer (the balancer's access log) that reopens with the others: `reopen`
   * throws when it cannot, which is warned about like a log file's failure (the writer keeps the old file).
   */
  onReopen(file: string, reopen: () => void): void {
    this.outputs.push({
      file,
      reopen: () => {
        try {
          reopen();
        } catch (err) {
          this.warn(`log file ${file} cannot be reopened`, err as Error);
        }
      },
    });
  }

  /** Reopens every file destination (after logrotate moved the files). */
  reopen(): void {
    for (const o of this.outputs) o.reopen();
  }

  /** The files being written. */
  files(): string[] {
    return this.outputs.flatMap((o) => (o.file ? [o.file] : []));
  }
}

/**
 * Creates a logger: structured JSON lines (pino) on stdout, or to
 * `destination` (an fd, a file path, or a stream from {@link LogOutputs}).
 * Logs always name the local component (`name`).
 */
export function createLogger(name: string, level: LevelWithSilent = 'info', destination?: string | number | DestinationStream): Logger {
  const dest = typeof destination === 'object' ? destination : pino.destination({ dest: destination ?? 1, sync: false, minLength: 0 });
  return pino({ name, level, base: { name }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
}

/** A logger that drops everything (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
