import pino from 'pino';
import pretty from 'pino-pretty';

export type Logger = pino.Logger;

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** `name` binding of every line, e.g. `fso-agent`. */
  name: string;
  /** pino level; default `FSO_LOG_LEVEL` or `info`. */
  level?: string;
  /** `pretty` (one readable line per record) or `json`; default `FSO_LOG_FORMAT`, else pretty on a TTY. */
  format?: 'pretty' | 'json';
  /** Where to write; default stderr (stdout stays free for a CLI's own output). */
  destination?: NodeJS.WritableStream;
}

/**
 * The one logger factory of FSO. Children carry bindings
 * (`logger.child({ component: 'watcher', root })`).
 *
 * @example
 * const log = createLogger({ name: 'fso-agent' });
 * log.child({ component: 'watcher' }).info({ root }, 'watching');
 */
export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? process.env.FSO_LOG_LEVEL ?? 'info';
  const envFormat = process.env.FSO_LOG_FORMAT;
  const format =
    options.format ?? (envFormat === 'json' || envFormat === 'pretty' ? envFormat : process.stderr.isTTY ? 'pretty' : 'json');
  const base = { name: options.name };
  // Passwords and tokens must never reach a log line, whatever a caller passes.
  const redact = { paths: ['password', '*.password', 'token', '*.token'], censor: '[redacted]' };
  if (format === 'pretty') {
    // A synchronous stream: a daemon's last lines are flushed before exit.
    const stream = pretty({
      sync: true,
      colorize: Boolean((options.destination ?? process.stderr) === process.stderr && process.stderr.isTTY),
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      destination: options.destination ?? 2,
    });
    return pino({ level, base, redact }, stream);
  }
  const destination = options.destination ?? pino.destination({ fd: 2, sync: true });
  return pino({ level, base, redact, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A logger that drops everything (tests, library callers that pass none). */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
