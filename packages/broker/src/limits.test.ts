import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tests/helpers.js';
import type { Broker, BrokerOptions } from './broker.js';
import { DEFAULT_LIMITS, resolveLimits } from './limits.js';
import { createTestBrokers } from './testing/brokers.js';
import { createTestClients, received, subscribeCodes } from './testing/clients.js';
import { captureLog } from './testing/log.js';
import type { CapturedLog } from './testing/log.js';
import { connectPacket, rawConnect, remainingLength, subscribePacket } from './testing/raw.js';
import type { RawConnection } from './testing/raw.js';

const brokers = createTestBrokers();
const clients = createTestClients();
const raws: RawConnection[] = [];
afterEach(async () => {
  for (const raw of raws.splice(0)) raw.socket.destroy();
  await clients.endAll();
  await brokers.closeAll();
});

let log: CapturedLog;
async function start(options: BrokerOptions = {}): Promise<Broker> {
  log = captureLog();
  return brokers.start({ logger: log.logger, ...options });
}

async function raw(broker: Broker): Promise<RawConnection> {
  const connection = await rawConnect(broker.port);
  raws.push(connection);
  return connection;
}

/** True when a raw CONNECT gets its CONNACK, false when the broker closes the connection. */
async function connacked(broker: Broker): Promise<boolean> {
  const probe = await raw(broker);
  probe.socket.write(connectPacket(`probe-${raws.length}`));
  await waitFor(() => probe.isClosed() || probe.received().length >= 4, 'a CONNACK or a close');
  probe.socket.destroy();
  return probe.received().length >= 4;
}

/** Proves the broker still carries a message from one new client to another. */
async function stillServes(broker: Broker, url = broker.url): Promise<void> {
  const subscriber = await clients.connect(url);
  const messages = received(subscriber);
  await subscriber.subscribeAsync('fso/agents/+/status', { qos: 1 });
  const publisher = await clients.connect(url);
  await publisher.publishAsync('fso/agents/web-01/status', 'still-serving', { qos: 1 });
  await waitFor(() => messages.find((m) => m.payload === 'still-serving'), 'a message through the broker after the attack');
}

describe('packet size', () => {
  it('closes a connection at the header of a packet announcing more than the limit, before its payload is sent', async () => {
    const broker = await start();
    const connection = await raw(broker);
    connection.socket.write(connectPacket('big-1'));
    await waitFor(() => connection.received().length >= 4 && connection.received(), 'the CONNACK');
    // A PUBLISH announcing 100 MiB, followed by a few bytes only: the broker must not wait for the rest.
    connection.socket.write(Buffer.concat([Buffer.from([0x30]), remainingLength(100 * 1024 * 1024), Buffer.from([0, 3]), Buffer.from('a/b')]));
    await connection.closed;
    const record = await waitFor(() => log.find('connection closed before parsing')[0], 'the log line');
    expect(record).toMatchObject({ level: 40, reason: 'packet-too-large', announcedBytes: 100 * 1024 * 1024, limitBytes: DEFAULT_LIMITS.maxPacketBytes, clientId: 'big-1' });
    await stillServes(broker);
  });

  it('refuses a publish over --max-packet-bytes from a real client, delivering nothing', async () => {
    const broker = await start({ limits: { maxPacketBytes: 64 * 1024 } });
    const subscriber = await clients.connect(broker.url);
    const messages = received(subscriber);
    await subscriber.subscribeAsync('fso/#', { qos: 1 });
    const publisher = await clients.connect(broker.url, { clientId: 'too-big' });
    const closed = new Promise<void>((resolve) => publisher.once('close', () => resolve()));
    publisher.publish('fso/agents/web-01/diffs', Buffer.alloc(100 * 1024, 'x'), { qos: 1 });
    await closed;
    const fits = await clients.connect(broker.url);
    await fits.publishAsync('fso/agents/web-01/diffs', Buffer.alloc(60 * 1024, 'y'), { qos: 1 });
    await waitFor(() => messages.length > 0, 'the message that fits');
    expect(messages.map((m) => m.payload[0])).toEqual(['y']);
  });

  it('closes a connection whose CONNECT is over 64 KiB, whose first packet is not a CONNECT, or whose length is malformed', async () => {
    const broker = await start();
    const bigConnect = await raw(broker);
    bigConnect.socket.write(Buffer.concat([Buffer.from([0x10]), remainingLength(200 * 1024)]));
    const notConnect = await raw(broker);
    notConnect.socket.write(Buffer.from([0x30, 0x05, 0x00, 0x01, 0x61, 0x62, 0x63]));
    const badLength = await raw(broker);
    badLength.socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await Promise.all([bigConnect.closed, notConnect.closed, badLength.closed]);
    const reasons = log.find('connection closed before parsing').map((r) => r.reason);
    expect(reasons.sort()).toEqual(['malformed-length', 'not-connect', 'packet-too-large']);
    await stillServes(broker);
  });

  it('closes a connection sending a malformed CONNECT (bad protocol name, garbage), and keeps serving', async () => {
    const broker = await start();
    const garbage = await raw(broker);
    const body = Buffer.from('\x00\x04MQTX\x04\x02\x00\x3c\x00\x01a', 'latin1');
    garbage.socket.write(Buffer.concat([Buffer.from([0x10, body.length]), body]));
    const truncated = await raw(broker);
    truncated.socket.write(Buffer.from([0x10, 0x02, 0x00, 0x09]));
    truncated.socket.end();
    const random = await raw(broker);
    random.socket.write(Buffer.from([0x10, 0x0c, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef]));
    await Promise.all([garbage.closed, truncated.closed, random.closed]);
    expect(garbage.received()).toHaveLength(0);
    await stillServes(broker);
  });

  it('gives WebSocket connections the same packet limit', async () => {
    const broker = await start({ wsPort: 0, limits: { maxPacketBytes: 64 * 1024 } });
    const publisher = await clients.connect(broker.wsUrl as string);
    const closed = new Promise<void>((resolve) => publisher.once('close', () => resolve()));
    publisher.publish('fso/agents/web-01/diffs', Buffer.alloc(100 * 1024, 'x'), { qos: 1 });
    await closed;
    await stillServes(broker, broker.wsUrl);
  });
});

describe('topics, connections and rates', () => {
  it('refuses a topic with 1,000 levels (publish and subscribe) and keeps serving', async () => {
    const broker = await start();
    const deep = Array.from({ length: 1000 }, (_, i) => `l${i}`).join('/');
    const publisher = await clients.connect(broker.url, { clientId: 'deep-pub' });
    const pubClosed = new Promise<void>((resolve) => publisher.once('close', () => resolve()));
    publisher.publish(deep, 'x', { qos: 1 });
    await pubClosed;
    const subscriber = await clients.connect(broker.url, { clientId: 'deep-sub' });
    const subClosed = new Promise<void>((resolve) => subscriber.once('close', () => resolve()));
    subscriber.subscribe(deep, { qos: 1 }, () => undefined);
    await subClosed;
    const errors = log.records().filter((r) => r.reason === 'topic has too many levels').map((r) => r.clientId);
    expect(errors.sort()).toEqual(['deep-pub', 'deep-sub']);
    await stillServes(broker);
  });

  it('bounds connections: beyond --max-connections they are closed at accept, and a slot frees when one leaves', async () => {
    const broker = await start({ limits: { maxConnections: 10 } });
    const sockets = await Promise.all(Array.from({ length: 40 }, () => raw(broker)));
    await waitFor(() => sockets.filter((s) => s.isClosed()).length >= 30 || undefined, '30 connections closed by the broker');
    await new Promise((resolve) => setImmediate(resolve));
    expect(sockets.filter((s) => !s.isClosed())).toHaveLength(10);
    expect(log.find('connection refused')[0]).toMatchObject({ maxConnections: 10 });
    for (const s of sockets) s.socket.destroy();
    // MQTT.js waits forever when a socket closes before CONNACK, so probe with raw CONNECTs.
    await waitFor(async () => (await connacked(broker)) || undefined, 'a CONNACK once the other connections left');
  });

  it('closes a connection that never sends CONNECT after the connect timeout', async () => {
    const broker = await start({ limits: { connectTimeoutMs: 300 } });
    const silent = await raw(broker);
    const opened = Date.now();
    await silent.closed;
    expect(Date.now() - opened).toBeGreaterThanOrEqual(250);
    expect(Date.now() - opened).toBeLessThan(5000);
  });

  it('slows a client publishing faster than --max-publish-rate without losing a message, and logs it', async () => {
    const broker = await start({ limits: { maxPublishRate: 100 } });
    const subscriber = await clients.connect(broker.url);
    const messages = received(subscriber);
    await subscriber.subscribeAsync('fso/agents/+/events/#', { qos: 0 });
    const publisher = await clients.connect(broker.url, { clientId: 'flood' });
    const startedAt = Date.now();
    for (let i = 0; i < 250; i++) publisher.publish('fso/agents/web-01/events/create', String(i), { qos: 1 });
    await waitFor(() => messages.length >= 250 || undefined, '250 messages at the subscriber');
    // 100 pass at once (the burst), the other 150 at 100/s.
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1300);
    expect(messages.map((m) => Number(m.payload))).toEqual(Array.from({ length: 250 }, (_, i) => i));
    expect(log.find('publish rate limit reached')[0]).toMatchObject({ clientId: 'flood', maxPublishRate: 100 });
  });
});

describe('resolveLimits', () => {
  it('checks each limit and leaves room for the deepest FSO topic under the prefix', () => {
    expect(resolveLimits({}, 'fso')).toEqual(DEFAULT_LIMITS);
    expect(() => resolveLimits({ maxTopicLevels: 4 }, 'fso')).toThrow(/maxTopicLevels/);
    expect(() => resolveLimits({ maxTopicLevels: 6 }, 'a/b/c')).toThrow(/from 7 to 100/);
    expect(() => resolveLimits({ maxPacketBytes: 300_000_000 }, 'fso')).toThrow(/maxPacketBytes/);
    expect(() => resolveLimits({ maxConnections: 0 }, 'fso')).toThrow(/maxConnections/);
  });
});

const filters = (n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `fso/agents/ghost-${from + i}/status`);

describe('filters per SUBSCRIBE', () => {
  it('grants a SUBSCRIBE of --max-subscriptions filters and closes a client whose SUBSCRIBE carries more, logging it', async () => {
    const broker = await start();
    const fits = await clients.connect(broker.url);
    expect(await subscribeCodes(fits, filters(64))).toEqual(Array(64).fill(1));
    const over = await clients.connect(broker.url, { clientId: 'too-many' });
    const closed = new Promise<void>((resolve) => over.once('close', () => resolve()));
    await expect(subscribeCodes(over, filters(65))).rejects.toThrow();
    await closed;
    const line = await waitFor(() => log.find('connection closed before parsing: too-many-filters')[0], 'the refusal in the log');
    expect(line).toMatchObject({ clientId: 'too-many', packetType: 8, filters: 65, limitFilters: 64 });
    expect(broker.aedes.connectedClients).toBe(1);
  });

  it('closes a client sending a 50,000-filter SUBSCRIBE at once, without a SUBACK, and keeps serving', async () => {
    const broker = await start();
    const flooder = await raw(broker);
    flooder.socket.write(connectPacket('flooder'));
    await waitFor(() => flooder.received().length >= 4 || undefined, 'the CONNACK');
    const packet = subscribePacket(1, filters(50_000));
    const heapBefore = process.memoryUsage().heapUsed;
    const started = Date.now();
    for (let at = 0; at < packet.length && !flooder.isClosed(); at += 64 * 1024) {
      const part = packet.subarray(at, at + 64 * 1024);
      if (!flooder.socket.write(part)) await Promise.race([new Promise((resolve) => flooder.socket.once('drain', resolve)), flooder.closed]);
    }
    await flooder.closed;
    expect(Date.now() - started).toBeLessThan(2000);
    // No SUBACK: aedes never saw the packet.
    expect(flooder.received().length).toBe(4);
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    expect(log.find('connection closed before parsing: too-many-filters')[0]).toMatchObject({ clientId: 'flooder', filters: 65 });
    await stillServes(broker);
  });
});

describe('subscriptions per client', () => {
  it('refuses (0x80) a subscription beyond the limit, keeps the client, counts resubscribes once and frees a place on unsubscribe', async () => {
    const broker = await start({ limits: { maxSubscriptions: 4 } });
    const client = await clients.connect(broker.url, { clientId: 'counted' });
    expect(await subscribeCodes(client, filters(3))).toEqual([1, 1, 1]);
    expect(await subscribeCodes(client, [...filters(1), ...filters(2, 3)])).toEqual([1, 1, 128]);
    expect(await subscribeCodes(client, filters(1, 10))).toEqual([128]);
    expect(client.connected).toBe(true);
    await client.unsubscribeAsync(filters(1, 3));
    expect(await subscribeCodes(client, filters(1, 10))).toEqual([1]);
    // Logged once per 10 s per client, however many were refused.
    const lines = log.find('subscription refused');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ clientId: 'counted', maxSubscriptions: 4, topic: 'fso/agents/ghost-4/status' });
  });

  it("counts a restored persistent session's subscriptions", async () => {
    const broker = await start({ limits: { maxSubscriptions: 2 } });
    const first = await clients.connect(broker.url, { clientId: 'persistent', clean: false });
    expect(await subscribeCodes(first, filters(2))).toEqual([1, 1]);
    await first.endAsync();
    const again = await clients.connect(broker.url, { clientId: 'persistent', clean: false, resubscribe: false });
    expect(again.connected).toBe(true);
    expect(await subscribeCodes(again, filters(1, 5))).toEqual([128]);
    expect(await subscribeCodes(again, filters(1, 1))).toEqual([1]);
  });
});
