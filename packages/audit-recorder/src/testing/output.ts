// Test support (kept out of the build by tsconfig.json).
import { PassThrough } from 'node:stream';

/** A writable stream that keeps what was written, for main()'s stdout/stderr. */
export interface CapturedOutput {
  stream: PassThrough;
  text(): string;
  lines(): string[];
}

export function captureOutput(): CapturedOutput {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { stream, text: () => text, lines: () => text.split('\n').filter(Boolean) };
}
