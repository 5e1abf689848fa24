import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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

/**
 * Runs a bin's `main` when `moduleUrl` (its `import.meta.url`) is the script
 * node was started with (also through a symlink, as `node_modules/.bin` has
 * it), and sets the exit code; an unexpected error is one line on stderr,
 * prefixed with `name`, and exit code 1. Imported by a test, it does nothing.
 *
 * @example
 * runIfMain(import.meta.url, 'fso-console', main);
 */
export function runIfMain(moduleUrl: string, name: string, main: (argv: string[]) => Promise<number>): void {
  const script = process.argv[1];
  let direct = false;
  try {
    direct = script !== undefined && realpathSync(script) === fileURLToPath(moduleUrl);
  } catch {
    direct = false;
  }
  if (!direct) return;
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
