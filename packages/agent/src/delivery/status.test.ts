import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { createSilentLogger, createTopics, statusSchema } from '@fso/common';
import type { ConfigOutcome } from '../configManager.js';
import type { Outbox } from './outbox.js';
import { createStatusReporter, offlineStatusAtStart } from './status.js';

const identity = { agentId: 'status-01', hostname: 'host', epoch: '01J0000000000000000000000A' };
const outcome: ConfigOutcome = { revision: 3, state: 'applied', error: null, source: 'agent', appliedRevision: 3 };

/** A client that is connected and keeps what it was asked to publish. */
function fakeClient(): { client: MqttClient; published: Array<{ topic: string; json: Record<string, unknown> }> } {
  const published: Array<{ topic: string; json: Record<string, unknown> }> = [];
  const keep = (topic: string, payload: string): void => {
    published.push({ topic, json: JSON.parse(payload) as Record<string, unknown> });
  };
  const client = {
    connected: true,
    publish: (topic: string, payload: string, _opts: unknown, done: (err?: Error) => void) => (keep(topic, payload), done()),
    publishAsync: async (topic: string, payload: string) => keep(topic, payload),
  };
  return { client: client as unknown as MqttClient, published };
}

const outbox = { pendingCount: 2, ackedSeq: 5, pendingBytes: 100, full: false, lost: () => [] } as unknown as Outbox;

describe('createStatusReporter', () => {
  it('builds a valid status from its sources, coalesces a burst, publishes nothing after close() but the offline status; counts each one published', async () => {
    const { client, published } = fakeClient();
    let counted = 0;
    const status = createStatusReporter({
      ...identity, client, topics: createTopics(), log: createSilentLogger(), onPublished: () => (counted += 1),
      sources: { lastSeq: () => 7, outbox, config: () => outcome, watching: () => [], inotify: () => ({ maxQueuedEvents: 16384, overflows: 1, lastOverflowAt: null }) },
    });
    expect(statusSchema.parse(status.status())).toMatchObject({ state: 'online', lastSeq: 7, config: { revision: 3, source: 'agent' }, outbox: { pending: 2 }, inotify: { overflows: 1 } });
    status.publishSoon();
    status.publishSoon();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(published.map((p) => p.json.state)).toEqual(['online']);

    status.publishSoon();
    const closed = status.close();
    expect(status.close()).toBe(closed);
    await closed;
    status.publish();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(published).toHaveLength(1);
    await status.publishOffline();
    expect(published.map((p) => p.json.state)).toEqual(['online', 'offline']);
    expect(counted).toBe(published.length);
  });

  it('the will says offline with what was known at connect', () => {
    expect(statusSchema.parse(offlineStatusAtStart(identity, 4))).toMatchObject({ state: 'offline', lastSeq: 4, watching: [] });
  });
});
