import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../../tests/helpers.js';
import type { Broker, BrokerOptions } from './broker.js';
import { createTestBrokers } from './testing/brokers.js';
import { createTestClients, received, subscribeCodes } from './testing/clients.js';
import { captureLog } from './testing/log.js';
import type { CapturedLog } from './testing/log.js';
import { connectPacket, rawConnect, subscribePacket } from './testing/raw.js';
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

/** Proves the broker still carries a message between two new clients. */
async function stillServes(broker: Broker): Promise<void> {
  const subscriber = await clients.connect(broker.url);
  const messages = received(subscriber);
  await subscriber.subscribeAsync('fso/agents/+/status', { qos: 1 });
  const publisher = await clients.connect(broker.url);
  await publisher.publishAsync('fso/agents/web-01/status', 'still-serving', { qos: 1 });
  await waitFor(() => messages.find((m) => m.payload === 'still-serving'), 'a message through the broker');
}

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
    const raw = await rawConnect(broker.port);
    raws.push(raw);
    raw.socket.write(connectPacket('flooder'));
    await waitFor(() => raw.received().length >= 4 || undefined, 'the CONNACK');
    const packet = subscribePacket(1, filters(50_000));
    const heapBefore = process.memoryUsage().heapUsed;
    const started = Date.now();
    for (let at = 0; at < packet.length && !raw.isClosed(); at += 64 * 1024) {
      const part = packet.subarray(at, at + 64 * 1024);
      if (!raw.socket.write(part)) await Promise.race([new Promise((resolve) => raw.socket.once('drain', resolve)), raw.closed]);
    }
    await raw.closed;
    expect(Date.now() - started).toBeLessThan(2000);
    // No SUBACK: aedes never saw the packet.
    expect(raw.received().length).toBe(4);
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
