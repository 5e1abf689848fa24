import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { MockInstance } from 'vitest';
import { createTempDir } from '../../../tests/helpers.js';
import { startBroker } from './broker.js';
import type { Broker } from './broker.js';
import { main } from './cli.js';

// main() only resolves by itself when the broker could not start (or for --help):
// a started one is left to SIGINT/SIGTERM, so only those paths run in-process.
let stderr: MockInstance<typeof process.stderr.write>;
let stdout: MockInstance<typeof process.stdout.write>;
let taken: Broker | undefined;

beforeEach(() => {
  stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
});

afterEach(async () => {
  vi.restoreAllMocks();
  await taken?.close();
  taken = undefined;
});

const written = (spy: MockInstance<typeof process.stderr.write>): string => spy.mock.calls.map((c) => String(c[0])).join('');

describe('fso-broker main()', () => {
  it('exits 1 with a clear message when the port is taken', async () => {
    taken = await startBroker({ port: 0 });
    expect(await main(['--port', String(taken.port)])).toBe(1);
    expect(written(stderr)).toContain(`fso-broker: cannot listen for mqtt on 127.0.0.1:${taken.port}: the port is already in use`);
  });

  it('exits 1 with a clear message when the data dir is unusable', async () => {
    const temp = await createTempDir();
    try {
      const file = path.join(temp.path, 'not-a-dir');
      await writeFile(file, '');
      expect(await main(['--port', '0', '--data-dir', file])).toBe(1);
      expect(written(stderr)).toContain(`fso-broker: cannot use broker data dir ${file}: it is not a directory`);
    } finally {
      await temp.cleanup();
    }
  });

  it('exits 2 on a bad port or topic prefix, naming the problem', async () => {
    expect(await main(['--port', '99999'])).toBe(2);
    expect(written(stderr)).toContain("option '--port <port>' argument '99999' is invalid");
    expect(await main(['--port', '0', '--topic-prefix', 'no spaces'])).toBe(2);
    expect(written(stderr)).toContain('invalid topic prefix "no spaces"');
  });

  it('prints the help with every flag and exits 0', async () => {
    expect(await main(['--help'])).toBe(0);
    const help = written(stdout);
    for (const flag of ['--host', '--port', '--ws-port', '--data-dir', '--topic-prefix']) expect(help).toContain(flag);
  });
});
