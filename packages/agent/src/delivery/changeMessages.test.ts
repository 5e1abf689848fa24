import { describe, expect, it } from 'vitest';
import { createSilentLogger, createTopics, parseAgentConfig } from '@fso/common';
import { createChangePublisher } from './changeMessages.js';
import type { Differ, DiffResult } from '../diff/differ.js';
import { createWatchFilter } from '../watch/filters.js';
import type { Publisher } from './publisher.js';
import type { Change } from '../watch/reconciler.js';

const topics = createTopics();
const config = parseAgentConfig({ schema: 'fso.config/1', revision: 1, watch: [{ path: '/srv/app', important: ['**/*.conf'] }] }, 'test');
const spec = config.watch[0]!;

const change = (path: string): Change => ({
  type: 'modify', path, kind: 'file', size: 6, sha256: null, hashSkipped: null, origin: 'live',
  mtimeMs: 0, observedAtMs: 1_000, ops: [],
});

describe('createChangePublisher', () => {
  it('publishes the event, then for an important file its diff with the event id; close() waits for the diff, twice the same promise', async () => {
    const published: Array<{ topic: string; message: Record<string, unknown> }> = [];
    const publisher = {
      publish: (topic: string, message: Record<string, unknown>) => (published.push({ topic, message }), `id-${published.length}`),
    } as unknown as Publisher;
    let finish!: (result: DiffResult) => void;
    const differ = { diff: () => new Promise<DiffResult>((resolve) => (finish = resolve)) } as unknown as Differ;
    const changes = createChangePublisher({
      publisher, differ, topics, agentId: 'changes-01', log: createSilentLogger(), configInForce: () => config, newestConfig: () => config,
    });
    const sink = changes.sink('/srv/app', spec);
    sink.change(change('/srv/app/readme.txt'), createWatchFilter(spec));
    sink.change(change('/srv/app/app.conf'), createWatchFilter(spec));
    expect(published.map((p) => [p.topic, p.message.path, p.message.important])).toEqual([
      [topics.event('changes-01', 'modify'), '/srv/app/readme.txt', false],
      [topics.event('changes-01', 'modify'), '/srv/app/app.conf', true],
    ]);

    let closedYet = false;
    const closed = changes.close();
    expect(changes.close()).toBe(closed);
    void closed.then(() => (closedYet = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(closedYet).toBe(false);
    finish({ patch: '@@ -1 +1 @@\n-a\n+b\n', added: 1, removed: 1, skipped: null, redactions: [] });
    await closed;
    expect(published[2]).toEqual({ topic: topics.diffs('changes-01'), message: expect.objectContaining({ eventId: 'id-2', path: '/srv/app/app.conf', added: 1 }) });
  });
});
