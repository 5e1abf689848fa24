// Test support for this package's tests (kept out of the build by tsconfig.json).
import { Writable } from 'node:stream';
import { createLogger } from '@fso/common';
import type { Logger } from '@fso/common';

/** A JSON logger at debug level whose records the test can read. */
export interface CapturedLog {
  logger: Logger;
  records(): Array<Record<string, unknown>>;
  /** Every line, as written. */
  text(): string;
  /** The records whose message starts with `prefix`. */
  find(prefix: string): Array<Record<string, unknown>>;
}

export function captureLog(): CapturedLog {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      callback();
    },
  });
  const records = (): Array<Record<string, unknown>> => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return {
    logger: createLogger({ name: 'test', level: 'debug', format: 'json', destination }),
    records,
    text: () => lines.join('\n'),
    find: (prefix) => records().filter((r) => String(r.msg).startsWith(prefix)),
  };
}
