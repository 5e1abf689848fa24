// Test support for this package's tests (kept out of the build by tsconfig.json).
import { PassThrough, Readable } from 'node:stream';
import { main } from '../cli.js';

/** What an in-process `fso-broker` run returned and printed. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `fso-broker` in-process with `stdin` text and env; returns the exit code and output. */
export async function runCli(argv: string[], stdin = '', env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: string[] = [];
  const err: string[] = [];
  stdout.on('data', (c: Buffer) => out.push(c.toString()));
  stderr.on('data', (c: Buffer) => err.push(c.toString()));
  const code = await main(argv, { stdin: Readable.from([Buffer.from(stdin)]), stdout, stderr, env });
  return { code, stdout: out.join(''), stderr: err.join('') };
}
