import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

/** How log lines are written: one JSON object a line, or readable lines for a person at a terminal. */
export type LogFormat = 'json' | 'pretty';

/** Where log lines go: standard output by default. `isTTY` is what decides the format when none is asked for. */
export type LogDestination = NodeJS.WritableStream & { readonly isTTY?: boolean };

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** pino level (`info`, `debug`, …). */
  readonly level: string;
  /** Shown on each line; default `cldpd`. */
  readonly name?: string;
  /** `CLDPD_LOG_FORMAT`; undefined chooses by the destination (see {@link chooseLogFormat}). */
  readonly format?: LogFormat | undefined;
  /** Default `process.stdout`. */
  readonly destination?: LogDestination;
}

/**
 * The format asked for, else readable lines on a terminal and JSON everywhere else (pipes,
 * files, CI, containers), where a machine reads the lines.
 */
export function chooseLogFormat(requested: LogFormat | undefined, destination: { readonly isTTY?: boolean }): LogFormat {
  return requested ?? (destination.isTTY === true ? 'pretty' : 'json');
}

/**
 * The one pino logger of a long-running process (`serve`, `worker`, `up`). Pretty lines are
 * formatted in this thread and written synchronously, not by a worker-thread transport, so a
 * line logged just before the process exits is not lost. Colours only on a terminal (and as
 * pino-pretty decides there: `NO_COLOR`, `TERM=dumb`).
 */
export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? process.stdout;
  const settings = { level: options.level, name: options.name ?? 'cldpd' };
  if (chooseLogFormat(options.format, destination) === 'json') {
    return destination === process.stdout ? pino(settings) : pino(settings, destination);
  }
  return pino(settings, pretty({
    sync: true,
    // Standard output goes through pino-pretty's own synchronous writer (file descriptor 1).
    ...(destination === process.stdout ? {} : { destination }),
    ...(destination.isTTY === true ? {} : { colorize: false }),
    ignore: 'pid,hostname',
    translateTime: 'SYS:HH:MM:ss.l',
  }));
}
