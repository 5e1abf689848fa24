import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import type { IClientOptions } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../tests/helpers.js';
import { startBroker } from './broker.js';
import { KeyFileError } from './errors.js';
import { USERS, writeTestAuthFile } from './testing/auth.js';
import { createTestCerts } from './testing/certs.js';
import type { TestCerts } from './testing/certs.js';
import { createTestBrokers } from './testing/brokers.js';
import { createTestClients, received } from './testing/clients.js';

const run = promisify(execFile);
const brokers = createTestBrokers();
const clients = createTestClients();
let temp: { path: string; cleanup: () => Promise<void> };
let certs: TestCerts;
let ca: Buffer;

beforeAll(async () => {
  temp = await createTempDir('fso-broker-tls-');
  certs = await createTestCerts(temp.path);
  ca = await readFile(certs.caCert);
});
afterAll(async () => temp.cleanup());
afterEach(async () => {
  await clients.endAll();
  await brokers.closeAll();
});

/** Why a TLS connection failed, or a failure when it connects. */
async function tlsFailure(url: string, options: IClientOptions): Promise<string> {
  try {
    const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...options });
    await client.endAsync(true);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the TLS connection succeeded');
}

const tls = (): { certFile: string; keyFile: string } => ({ certFile: certs.serverCert, keyFile: certs.serverKey });

describe('TLS', () => {
  it('serves mqtts: a client without the CA fails, one trusting another CA fails, one with the CA works', async () => {
    const broker = await brokers.start({ tls: tls() });
    expect(broker.url).toBe(`mqtts://127.0.0.1:${broker.port}`);
    expect(await tlsFailure(broker.url, {})).toMatch(/self.signed|unable to (get|verify)/i);
    expect(await tlsFailure(broker.url, { ca: await readFile(certs.otherCaCert) })).toMatch(/self.signed|unable to (get|verify)/i);
    const subscriber = await clients.connect(broker.url, { ca });
    const messages = received(subscriber);
    await subscriber.subscribeAsync('fso/#', { qos: 1 });
    const publisher = await clients.connect(broker.url, { ca });
    await publisher.publishAsync('fso/agents/web-01/status', 'over-tls', { qos: 1 });
    await waitFor(() => messages.find((m) => m.payload === 'over-tls'), 'the message over TLS');
  });

  it('serves wss the same way', async () => {
    const broker = await brokers.start({ tls: tls(), wsPort: 0 });
    expect(broker.wsUrl).toBe(`wss://127.0.0.1:${broker.wsPort}`);
    expect(await tlsFailure(broker.wsUrl as string, {})).toMatch(/self.signed|unable to (get|verify)/i);
    await clients.connect(broker.wsUrl as string, { ca });
  });

  it('works with mosquitto_pub given --cafile, and not with another CA', async () => {
    const broker = await brokers.start({ tls: tls() });
    const subscriber = await clients.connect(broker.url, { ca });
    const messages = received(subscriber);
    await subscriber.subscribeAsync('fso/#', { qos: 1 });
    const args = (cafile: string, message: string): string[] => ['-h', '127.0.0.1', '-p', String(broker.port), '--cafile', cafile, '-q', '1', '-t', 'fso/agents/web-01/status', '-m', message];
    const refused = await run('mosquitto_pub', args(certs.otherCaCert, 'wrong-ca'), { timeout: 10_000 }).then(
      () => 0,
      (err: { code?: number }) => err.code ?? -1,
    );
    expect(refused).not.toBe(0);
    await run('mosquitto_pub', args(certs.caCert, 'right-ca'), { timeout: 10_000 });
    await waitFor(() => messages.find((m) => m.payload === 'right-ca'), 'the mosquitto_pub message');
    expect(messages.map((m) => m.payload)).toEqual(['right-ca']);
  });

  it('with --tls-ca, requires a client certificate signed by that CA', async () => {
    const broker = await brokers.start({ tls: { ...tls(), caFile: certs.caCert } });
    await expect(tlsFailure(broker.url, { ca })).resolves.toBeTruthy();
    await clients.connect(broker.url, { ca, cert: await readFile(certs.clientCert), key: await readFile(certs.clientKey) });
  });

  it('carries logins over TLS, beyond loopback with auth', async () => {
    const authFile = await writeTestAuthFile(temp.path, [USERS.viewer]);
    const broker = await brokers.start({ host: '0.0.0.0', tls: tls(), auth: { authFile } });
    const url = `mqtts://127.0.0.1:${broker.port}`;
    await clients.connect(url, { ca, clientId: 'v', username: USERS.viewer.username, password: USERS.viewer.password });
  });

  it('refuses to start with a key that does not match the certificate, naming the file', async () => {
    const error = await startBroker({ port: 0, tls: { certFile: certs.serverCert, keyFile: certs.clientKey } }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(KeyFileError);
    await expect(startBroker({ port: 0, tls: { certFile: `${temp.path}/missing.pem`, keyFile: certs.serverKey } })).rejects.toThrow(/tls cert file .*missing\.pem/);
  });
});
