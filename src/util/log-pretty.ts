/**
 * Human-readable log lines for a terminal: pino's JSON lines turned into
 * `12:03:04.512 INFO  cohort-node-tc1  node ready  route=tc1 http=http://…`,
 * the level coloured. A pure function (one JSON line in, one text line out)
 * plus a stream adapter; JSON stays the format when the output is not a TTY.
 */
import type { DestinationStream } from 'pino';

const LEVELS: Record<number, { name: string; colour: string }> = {
  10: { name: 'TRACE', colour: '\x1b[90m' },
  20: { name: 'DEBUG', colour: '\x1b[36m' },
  30: { name: 'INFO ', colour: '\x1b[32m' },
  40: { name: 'WARN ', colour: '\x1b[33m' },
  50: { name: 'ERROR', colour: '\x1b[31m' },
  60: { name: 'FATAL', colour: '\x1b[41m' },
};
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';
/** Keys shown in the line's head (or dropped), not repeated as key=value. */
const HEAD_KEYS = new Set(['level', 'time', 'name', 'msg', 'pid', 'hostname']);

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** Formats one pino JSON line; a line that is not JSON is returned unchanged. */
export function prettyLine(line: string, colour: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  if (o === null || typeof o !== 'object') return `${line.trimEnd()}\n`;
  const lvl = LEVELS[Number(o.level)] ?? { name: String(o.level ?? '?').toUpperCase().padEnd(5), colour: '' };
  const t = typeof o.time === 'string' ? o.time.slice(11, 23) : typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const rest = Object.entries(o).filter(([k]) => !HEAD_KEYS.has(k)).map(([k, v]) => `${k}=${value(v)}`).join(' ');
  const level = colour ? `${lvl.colour}${lvl.name}${RESET}` : lvl.name;
  const name = o.name === undefined ? '' : colour ? `${DIM}${String(o.name)}${RESET} ` : `${String(o.name)} `;
  return `${t} ${level} ${name}${String(o.msg ?? '')}${rest ? `  ${colour ? DIM : ''}${rest}${colour ? RESET : ''}` : ''}\n`;
}

/** A pino destination that writes {@link prettyLine}s to `out`. */
export function prettyStream(out: DestinationStream & { flush?: (cb?: (err?: Error) => void) => void }, colour: boolean): DestinationStream & { flush(cb?: (err?: Error) => void): void } {
  return {
    write(chunk: string) {
      // pino writes whole lines, one per call
      for (const line of chunk.split('\n')) if (line !== '') out.write(prettyLine(line, colour));
    },
    flush(cb?: (err?: Error) => void) {
      if (out.flush) out.flush(cb);
      else cb?.();
    },
  };
}
