import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { createTopics, parseAgentConfig } from '@fso/common';
import { createCollector, createTempDir } from '../../../tests/helpers.js';
import type { CollectedMessage, MessageCollector } from '../../../tests/helpers.js';
import { startAgent } from './agent.js';
import type { Agent } from './agent.js';

const topics = createTopics();
const pathOf = (m: CollectedMessage): unknown => (m.json as { path?: unknown }).path;

/** How many active resources (those keeping the event loop alive) of each type there are. */
function resourceCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** The types with more resources now than in `before`, as `type: before -> now`. */
function leaked(before: Map<string, number>): string[] {
  return [...resourceCounts()].filter(([type, n]) => n > (before.get(type) ?? 0)).map(([type, n]) => `${type}: ${before.get(type) ?? 0} -> ${n}`);
}

describe('agent.close() (real broker on port 0, real agent, real temp dirs)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let broker: Broker | undefined;
  let agent: Agent | undefined;
  let sub: MessageCollector | undefined;
  beforeEach(async () => {
    tmp = await createTempDir('fso-agent-close-');
  });
  afterEach(async () => {
    // Only when the test failed half-way; each close() is idempotent.
    await sub?.close();
    await agent?.close();
    await broker?.close();
    await tmp.cleanup();
  });

  it('leaves nothing keeping the process alive (watches, sockets, timers not unref()ed, worker threads); a second close() returns the same promise', async () => {
    const watched = path.join(tmp.path, 'watched');
    await mkdir(watched);
    await writeFile(path.join(watched, 'before.conf'), 'a = 1\n');
    // vitest's own handles (its IPC channel, its timers) are in this snapshot too.
    const before = resourceCounts();

    broker = await startBroker({ port: 0 });
    sub = await createCollector(broker.url, ['fso/#']);
    const initialConfig = parseAgentConfig({ schema: 'fso.config/1', revision: 0, watch: [{ path: watched, important: ['**/*.conf'] }] }, 'test');
    agent = await startAgent({ agentId: 'close-01', brokerUrl: broker.url, stateDir: path.join(tmp.path, 'state'), initialConfig, pairWindowMs: 100 });
    await agent.ready();

    // Changes of every kind, with a diff (an important file): the differ's worker, the looker's, the outbox, the content store.
    await writeFile(path.join(watched, 'new.conf'), 'b = 2\n');
    await mkdir(path.join(watched, 'dir'));
    await writeFile(path.join(watched, 'dir', 'inner.txt'), 'x');
    await sub.waitFor((m) => m.topic === topics.event('close-01', 'create') && pathOf(m) === path.join(watched, 'dir', 'inner.txt'), 'the create of dir/inner.txt');
    await rename(path.join(watched, 'new.conf'), path.join(watched, 'renamed.conf'));
    await rm(path.join(watched, 'before.conf'));
    await sub.waitFor((m) => m.topic === topics.event('close-01', 'rename') && pathOf(m) === path.join(watched, 'renamed.conf'), 'the rename of new.conf');
    await sub.waitFor((m) => m.topic === topics.event('close-01', 'delete') && pathOf(m) === path.join(watched, 'before.conf'), 'the delete of before.conf');
    await sub.waitFor((m) => m.topic === topics.diffs('close-01'), 'a diff of an important file');

    await sub.close();
    const closed = agent.close();
    expect(agent.close()).toBe(closed);
    await closed;
    await broker.close();
    sub = undefined;
    agent = undefined;
    broker = undefined;
    // A handle closed (server.close(), socket.destroy()) is still listed until libuv's
    // close-callbacks phase, which follows the check phase of this turn of the loop.
    await new Promise((resolve) => setImmediate(() => setImmediate(resolve)));

    expect(leaked(before), 'resources left after agent.close() and broker.close()').toEqual([]);
  });
});
