/** Test support (not built): runs the CLI's `main` in-process and keeps what it printed. */
import { Writable } from 'node:stream';
import { main } from '../cli.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall-clock time of the run. */
  ms: number;
}

function sink(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return { stream, text: () => chunks.join('') };
}

/** `fso-controller <argv>` against `brokerUrl` (added as `--broker`). */
export async function runCli(brokerUrl: string, argv: string[]): Promise<CliRun> {
  const out = sink();
  const err = sink();
  const started = Date.now();
  const code = await main([...argv, '--broker', brokerUrl], { stdout: out.stream, stderr: err.stream });
  return { code, stdout: out.text(), stderr: err.text(), ms: Date.now() - started };
}
