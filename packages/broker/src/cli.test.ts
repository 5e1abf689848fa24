import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { MockInstance } from 'vitest';
import { createTempDir } from '../../../tests/helpers.js';
import { startBroker } from './broker.js';
import type { Broker } from './broker.js';
import { main } from './cli.js';
import { BrokerInsecureError } from './errors.js';
import { isLoopback } from '@fso/common';

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
    const flags = ['--host', '--port', '--ws-port', '--data-dir', '--topic-prefix', '--auth', '--jwt-secret-file', '--jwt-public-key-file', '--jwt-issuer'];
    flags.push('--tls-cert', '--tls-key', '--tls-ca', '--insecure', '--max-packet-bytes', '--max-connections', '--max-publish-rate', '--connect-timeout');
    flags.push('--max-subscriptions');
    for (const flag of flags) expect(help).toContain(flag);
  });

  it('refuses a non-loopback --host without authentication (exit 2), naming the way out', async () => {
    expect(await main(['--host', '0.0.0.0', '--port', '0'])).toBe(2);
    expect(written(stderr)).toContain('fso-broker: refusing to listen on 0.0.0.0 without authentication');
    expect(written(stderr)).toContain('--insecure');
  });

  it('exits 2 on flag combinations that make no sense, and 1 on an auth file that does not exist', async () => {
    expect(await main(['--port', '0', '--jwt-secret-file', 'x'])).toBe(2);
    expect(written(stderr)).toContain('--jwt-issuer is required');
    expect(await main(['--port', '0', '--tls-cert', 'x'])).toBe(2);
    expect(written(stderr)).toContain('--tls-cert and --tls-key go together');
    expect(await main(['--port', '0', '--jwt-secret-file', 'a', '--jwt-public-key-file', 'b', '--jwt-issuer', 'i'])).toBe(2);
    expect(await main(['--port', '0', '--max-packet-bytes', 'lots'])).toBe(2);
    expect(await main(['--port', '0', '--max-topic-levels', '3'])).toBe(2);
    expect(written(stderr)).toContain('invalid maxTopicLevels 3');
    expect(await main(['--port', '0', '--max-subscriptions', 'many'])).toBe(2);
    expect(await main(['--port', '0', '--max-subscriptions', '0'])).toBe(2);
    expect(written(stderr)).toContain('invalid maxSubscriptions 0');
    expect(await main(['--port', '0', '--auth', '/nonexistent/auth.json'])).toBe(1);
    expect(written(stderr)).toContain('fso-broker: auth file /nonexistent/auth.json: no such file');
  });
});

describe('secure by default', () => {
  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopback(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'example.com', '::ffff:10.0.0.1', '128.0.0.1']) expect(isLoopback(host), host).toBe(false);
  });

  it('starts beyond loopback without auth only with insecure', async () => {
    await expect(startBroker({ host: '0.0.0.0', port: 0 })).rejects.toThrow(BrokerInsecureError);
    taken = await startBroker({ host: '0.0.0.0', port: 0, insecure: true });
    expect(taken.authenticated).toBe(false);
  });
});
