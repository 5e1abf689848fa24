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
