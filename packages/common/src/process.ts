import { EXIT } from './exitCodes.js';
import type { Logger } from './logger.js';

/**
 * Wires SIGINT/SIGTERM to `close()` once; a second signal forces exit.
 * Sets the exit code and flushes nothing itself: loggers here are sync.
 */
export function onShutdown(close: () => Promise<void>, log: Logger): void {
  let closing = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (closing) {
      log.warn({ signal }, 'second signal, exiting now');
      process.exit(EXIT.interrupted);
    }
    closing = true;
    log.info({ signal }, 'shutting down');
    close().then(
      () => {
        log.info('stopped');
        process.exit(process.exitCode ?? EXIT.ok);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(EXIT.failed);
      },
    );
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

/** Splits a comma-separated or repeated commander option into a flat list. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Parses a duration like `500ms`, `10s`, `5m`, `24h`, `7d` (plain numbers are seconds). */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new TypeError(`invalid duration ${JSON.stringify(text)}: use e.g. 500ms, 10s, 5m, 24h`);
  const value = Number(match[1]);
  const unit = match[2] ?? 's';
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit] ?? 1000;
  return value * factor;
}
