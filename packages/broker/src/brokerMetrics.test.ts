import { createTopics, startHealthServer } from '@fso/common';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { parseMetrics, waitFor } from '../../../tests/helpers.js';
import { createTestBrokers } from './testing/brokers.js';

const brokers = createTestBrokers();
afterEach(async () => {
  await brokers.closeAll();
});

describe('broker metrics and health', () => {
  it('counts connections, publishes by kind and acknowledged deliveries; readyz turns 503 on close', async () => {
    const broker = await brokers.start();
    const health = await startHealthServer({ port: 0, registry: broker.metrics, health: () => broker.health() });
    const topics = createTopics();
    const subscriber = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
    const publisher = await mqtt.connectAsync(broker.url, { protocolVersion: 4 });
    try {
      await subscriber.subscribeAsync(topics.allEvents(), { qos: 1 });
      const got = new Promise<void>((resolve) => subscriber.once('message', () => resolve()));
      await publisher.publishAsync(topics.event('web-01', 'create'), '{}', { qos: 1 });
      await publisher.publishAsync('elsewhere/x', 'x', { qos: 1 });
      await got;
      const samples = await waitFor(async () => {
        const s = parseMetrics(await (await fetch(`${health.url}/metrics`)).text());
        return (s.get('fso_broker_deliveries_acked_total') ?? 0) >= 1 ? s : undefined;
      }, "the subscriber's PUBACK in the metrics", 10_000, 50);
      expect(samples.get('fso_broker_connections')).toBe(2);
      expect(samples.get('fso_broker_connections_total')).toBe(2);
      expect(samples.get('fso_broker_messages_received_total{kind="event"}')).toBe(1);
      expect(samples.get('fso_broker_messages_received_total{kind="other"}')).toBe(1);
      expect(samples.get('fso_broker_subscriptions_total')).toBe(1);
      expect((await fetch(`${health.url}/readyz`)).status).toBe(200);
    } finally {
      await publisher.endAsync();
      await subscriber.endAsync();
    }
    const closing = broker.close();
    expect((await fetch(`${health.url}/readyz`)).status).toBe(503);
    await closing;
    await health.close();
  });
});
