import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { connectMqtt, createTopics, endMqtt } from '@fso/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openInbox } from './inbox.js';

const topics = createTopics();

describe('openInbox', () => {
  let broker: Broker;
  beforeEach(async () => {
    broker = await startBroker({ port: 0 });
  });
  afterEach(async () => {
    await broker.close();
  });

  it('close() twice returns the same promise (one UNSUBSCRIBE)', async () => {
    const client = await connectMqtt({ url: broker.url, clientId: 'inbox-close' });
    try {
      const inbox = await openInbox(client, [topics.status('+')], topics.prefix);
      let unsubscribes = 0;
      client.on('packetsend', (packet) => {
        if (packet.cmd === 'unsubscribe') unsubscribes += 1;
      });
      const closed = inbox.close();
      expect(inbox.close()).toBe(closed);
      await closed;
      expect(unsubscribes).toBe(1);
    } finally {
      await endMqtt(client);
    }
  });
});
