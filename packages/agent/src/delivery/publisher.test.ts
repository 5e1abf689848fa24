import path from 'node:path';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSilentLogger } from '@fso/common';
import type { FsoGap } from '@fso/common';
import { createTempDir } from '../../../../tests/helpers.js';
import { openOutbox } from './outbox.js';
import type { Outbox } from './outbox.js';
import { createPublisher } from './publisher.js';
import type { Unstamped } from './publisher.js';

describe('createPublisher', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let outbox: Outbox;
  beforeEach(async () => {
    tmp = await createTempDir();
    outbox = await openOutbox({ file: path.join(tmp.path, 'outbox.jsonl'), journalFile: path.join(tmp.path, 'journal.jsonl'), log: createSilentLogger() });
  });
  afterEach(async () => {
    await outbox.close();
    await tmp.cleanup();
  });

  it('tells first sends from resends (onSent), a restart\'s resends too, and dates the oldest unacknowledged message', async () => {
    const sent: Array<[number, boolean]> = [];
    const client = { connected: true, publish: (_t: string, _p: string, _o: unknown, done: (err?: Error) => void) => done() } as unknown as MqttClient;
    const at = '2026-01-01T00:00:00.000Z';
    const gap: Unstamped<FsoGap> = { schema: 'fso.gap/1', reason: 'watcher-overflow', roots: ['/srv'], since: at, until: at, notifications: 1, observedAt: at };
    const publisher = createPublisher({ client, outbox, agentId: 'a1', epoch: 'e1', log: createSilentLogger(), onSent: (e, resend) => sent.push([e.seq, resend]) });
    expect(publisher.oldestPendingMs()).toBeNull();
    const before = Date.now();
    publisher.publish('fso/a1/gap', gap);
    publisher.publish('fso/a1/gap', gap);
    await publisher.flush();
    expect(sent).toEqual([[1, false], [2, false]]);
    const oldest = publisher.oldestPendingMs();
    expect(oldest).toBeGreaterThanOrEqual(before - 1);
    expect(oldest).toBeLessThanOrEqual(Date.now());
    publisher.resendPending();
    await publisher.flush();
    expect(sent.slice(2)).toEqual([[1, true], [2, true]]);
    publisher.acknowledge(2);
    expect(publisher.oldestPendingMs()).toBeNull();
    publisher.publish('fso/a1/gap', gap);
    await publisher.close();
    expect(sent.slice(4)).toEqual([[3, false]]);

    // A restart: what the outbox holds was sent by the process before, so sending it again is a resend.
    const restarted: Array<[number, boolean]> = [];
    const again = createPublisher({ client, outbox, agentId: 'a1', epoch: 'e1', log: createSilentLogger(), onSent: (e, resend) => restarted.push([e.seq, resend]) });
    again.resendPending();
    again.publish('fso/a1/gap', gap);
    await again.close();
    expect(restarted).toEqual([[3, true], [4, false]]);
  });

  it('close() twice returns the same promise, which resolves once what was queued is in the outbox', async () => {
    // Offline: nothing is handed to the broker, so close() waits only for the outbox.
    const client = { connected: false, publish: () => undefined } as unknown as MqttClient;
    const publisher = createPublisher({ client, outbox, agentId: 'a1', epoch: 'e1', log: createSilentLogger() });
    const at = '2026-01-01T00:00:00.000Z';
    const gap: Unstamped<FsoGap> = { schema: 'fso.gap/1', reason: 'watcher-overflow', roots: ['/srv'], since: at, until: at, notifications: 1, observedAt: at };
    publisher.publish('fso/a1/gap', gap);
    const closed = publisher.close();
    // Before, a second call resolved at once, before the flush the first one waited for.
    expect(publisher.close()).toBe(closed);
    await closed;
    expect(outbox.pendingCount).toBe(1);
    expect(() => publisher.publish('fso/a1/gap', gap)).toThrow(/closed/);
  });
});
