// Test support for this package's tests (kept out of the build by tsconfig.json).
import { Writable } from 'node:stream';
import { createLogger } from '@fso/common';
import type { Logger } from '@fso/common';

/** A real pino logger (common's) whose every line is kept, to search for what must, or must never, be logged. */
export interface CapturedLog {
  log: Logger;
  /** Everything written so far. */
  text(): string;
  /** The lines written so far, parsed. */
  lines(): Array<Record<string, unknown>>;
}

/** A JSON logger at `level` (default `trace`: the most a deployment could log) writing into memory. */
export function captureLog(level = 'trace'): CapturedLog {
  let text = '';
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString('utf8');
      callback();
    },
  });
  return {
    log: createLogger({ name: 'test', level, format: 'json', destination }),
    text: () => text,
    lines: () => text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
