import { pino, type Logger, type LevelWithSilent } from 'pino';

/**
 * Creates the process logger: structured JSON lines (pino) on stdout, or to
 * `destination`. Logs always name the local component (`name`).
 */
export function createLogger(name: string, level: LevelWithSilent = 'info', destination?: string | number): Logger {
  return pino({ name, level, base: { name }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: destination ?? 1, sync: false, minLength: 0 }));
}

/** A logger that drops everything (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
