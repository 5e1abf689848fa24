import { describe, expect, it } from 'vitest';
import { createSilentLogger, createTopics } from '@fso/common';
import { createRescanner } from './overflowRescans.js';
import type { Publisher } from '../delivery/publisher.js';
import type { RootWatcher } from './rootWatcher.js';

const topics = createTopics();

/** A watcher that counts its rescans and its delete holds; a rescan lasts until `finish` is called. */
function fakeWatcher(root: string): RootWatcher & { rescans: number; holds: number; finish: () => void } {
  let finish = (): void => undefined;
  const w = {
    root, rescans: 0, holds: 0,
    finish: () => finish(),
    rescan: () => ((w.rescans += 1), new Promise<void>((resolve) => (finish = resolve))),
    holdDeletes: () => ((w.holds += 1), () => void (w.holds -= 1)),
  };
  return w as unknown as RootWatcher & { rescans: number; holds: number; finish: () => void };
}

describe('createRescanner', () => {
  it('an overflow holds deletes, announces a gap, rescans every root, then releases the holds; close() twice is one promise', async () => {
    const published: Array<{ topic: string; message: unknown }> = [];
    const publisher = { publish: (topic: string, message: unknown) => (published.push({ topic, message }), 'id') } as unknown as Publisher;
    const watcher = fakeWatcher('/srv/a');
    let overflows = 0;
    const rescans = createRescanner({
      watchers: new Map([[watcher.root, watcher]]), publisher, topics, agentId: 'rescan-01', log: createSilentLogger(),
      maxQueuedEvents: 4, onOverflow: () => (overflows += 1),
    });
    // Threshold 2 (half the queue), counted in one turn of the loop.
    for (let i = 0; i < 3; i += 1) rescans.note();
    expect(watcher.holds).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(watcher.holds).toBe(1);
    expect(watcher.rescans).toBe(1);
    expect(overflows).toBe(1);
    expect(published).toEqual([{ topic: topics.gaps('rescan-01'), message: expect.objectContaining({ reason: 'watcher-overflow', roots: ['/srv/a'], notifications: 3 }) }]);
    expect(rescans.inotify()).toMatchObject({ maxQueuedEvents: 4, overflows: 1 });

    // close() waits for the round under way.
    const closed = rescans.close();
    expect(rescans.close()).toBe(closed);
    watcher.finish();
    await closed;
    expect(watcher.rescans).toBe(1);
    expect(watcher.holds).toBe(0);
  });

  it('without inotify there is no inotify part in the status', async () => {
    const rescans = createRescanner({
      watchers: new Map(), publisher: {} as Publisher, topics, agentId: 'rescan-02', log: createSilentLogger(), maxQueuedEvents: null, onOverflow: () => undefined,
    });
    rescans.note();
    expect(rescans.inotify()).toBeUndefined();
    await rescans.close();
  });
});
