import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { IClientOptions } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../tests/helpers.js';
import { createSilentLogger } from '@fso/common';
import { startBroker } from './broker.js';
import type { Broker } from './broker.js';
import { BrokerStorageError } from './errors.js';
import { openStorage } from './storage.js';
import { createTestBrokers } from './testing/brokers.js';
import { createTestClients, received } from './testing/clients.js';

let temp: { path: string; cleanup: () => Promise<void> };
let dataDir: string;
const brokers = createTestBrokers();
const clients = createTestClients();
const connect = clients.connect;

beforeEach(async () => {
  temp = await createTempDir('fso-broker-test-');
  dataDir = path.join(temp.path, 'broker', 'data');
});

afterEach(async () => {
  await clients.endAll();
  await brokers.closeAll();
  await temp.cleanup();
});

/** A broker keeping its state in this test's `dataDir`. */
const start = (): Promise<Broker> => brokers.start({ dataDir });

describe('startBroker with dataDir', () => {
  it('creates a missing data dir with mode 0700', async () => {
    const broker = await start();
    expect(broker.dataDir).toBe(dataDir);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
  });

  it('keeps a retained message across close() and a new broker on the same dir', async () => {
    const first = await start();
    const publisher = await connect(first.url);
    await publisher.publishAsync('fso/agents/web-01/config', '{"revision":7}', { qos: 1, retain: true });
    await publisher.endAsync();
    // Reopening at once also proves close() released the database lock.
    await first.close();

    const second = await start();
    const reader = await connect(second.url);
    const messages = received(reader);
    await reader.subscribeAsync('fso/agents/+/config', { qos: 1 });
    const message = await waitFor(() => messages[0], 'the retained config after the restart');
    expect(message).toEqual({ topic: 'fso/agents/web-01/config', payload: '{"revision":7}', qos: 1, retain: true });
  });

  it('delivers to an offline persistent session the QoS 1 messages published before and after a restart', async () => {
    const session: IClientOptions = { clientId: 'fso-audit-recorder', clean: false };
    const first = await start();
    const subscriber = await connect(first.url, session);
    await subscriber.subscribeAsync('fso/agents/+/events/#', { qos: 1 });
    await subscriber.endAsync();

    const publisher = await connect(first.url);
    await publisher.publishAsync('fso/agents/a/events/create', 'one', { qos: 1 });
    await publisher.publishAsync('fso/agents/a/events/modify', 'two', { qos: 1 });
    await publisher.endAsync();
    await first.close();

    // The subscription itself must come back from disk for this one to be queued.
    const second = await start();
    const publisher2 = await connect(second.url);
    await publisher2.publishAsync('fso/agents/a/events/delete', 'three', { qos: 1 });
    await publisher2.endAsync();

    const returning = clients.connectLater(second.url, session);
    const messages = received(returning);
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
      returning.once('connect', resolve);
      returning.once('error', reject);
    });
    expect(connack.sessionPresent).toBe(true);
    await waitFor(() => messages.length >= 3, '3 queued messages');
    expect(messages.map((m) => m.payload)).toEqual(['one', 'two', 'three']);
  });

  it('keeps the last will a client left when the broker closed: retained, and queued for an offline session', async () => {
    const recorder: IClientOptions = { clientId: 'fso-audit-recorder', clean: false };
    const first = await start();
    const offline = await connect(first.url, recorder);
    await offline.subscribeAsync('fso/agents/+/status', { qos: 1 });
    await offline.endAsync();
    await connect(first.url, {
      clientId: 'agent-web-01',
      will: { topic: 'fso/agents/web-01/status', payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    // close() publishes the will while it shuts the client down (MQTT-3.1.2-8): storing it
    // and queueing it for the offline session must both reach the disk before the database closes.
    await first.close();

    const second = await start();
    const queued = received(clients.connectLater(second.url, recorder));
    await waitFor(() => queued.find((m) => m.payload === 'offline'), 'the will queued for the offline session');

    const reader = await connect(second.url);
    const messages = received(reader);
    await reader.subscribeAsync('fso/agents/+/status', { qos: 1 });
    await waitFor(() => messages.find((m) => m.payload === 'offline' && m.retain), 'the retained will after the restart');
  });

  it('forgets retained messages without a dataDir', async () => {
    const first = await brokers.start();
    const publisher = await connect(first.url);
    await publisher.publishAsync('fso/config/default', 'x', { qos: 1, retain: true });
    await first.close();

    const second = await brokers.start();
    const reader = await connect(second.url);
    const messages = received(reader);
    await reader.subscribeAsync('fso/#', { qos: 1 });
    // The control: a fresh message arrives, and it is the only one.
    await connect(second.url).then((c) => c.publishAsync('fso/probe', 'p', { qos: 1 }));
    await waitFor(() => messages.find((m) => m.topic === 'fso/probe'), 'the probe message');
    expect(messages.map((m) => m.topic)).toEqual(['fso/probe']);
  });
});

describe('unusable data dirs', () => {
  it('says the data dir is not a directory', async () => {
    const file = path.join(temp.path, 'a-file');
    await writeFile(file, 'x');
    const error = await startBroker({ port: 0, dataDir: file }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(BrokerStorageError);
    expect(error).toMatchObject({ dataDir: file, message: `cannot use broker data dir ${file}: it is not a directory` });
  });

  it('says the data dir is locked by another broker, and leaves that broker working', async () => {
    const first = await start();
    const error = await startBroker({ port: 0, dataDir }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(BrokerStorageError);
    expect((error as Error).message).toBe(
      `cannot use broker data dir ${dataDir}: it is locked by another process (is another broker using it?)`,
    );
    const client = await connect(first.url);
    await client.publishAsync('fso/still/up', 'x', { qos: 1, retain: true });
  });

  it('closes the database when a listener fails, so the dir can be used at once', async () => {
    const taken = await brokers.start();
    await expect(startBroker({ port: taken.port, dataDir })).rejects.toThrow(/already in use/);
    await start();
  });
});

describe('openStorage', () => {
  it('close() twice returns the same promise, and the database is closed once (reopening it works)', async () => {
    const tmp = await createTempDir('fso-broker-storage-');
    try {
      const dataDir = path.join(tmp.path, 'data');
      const storage = await openStorage(dataDir, createSilentLogger());
      const closed = storage.close();
      expect(storage.close()).toBe(closed);
      await closed;
      // The lock is released: a second open of the same dir succeeds.
      await (await openStorage(dataDir, createSilentLogger())).close();
    } finally {
      await tmp.cleanup();
    }
  });
});
