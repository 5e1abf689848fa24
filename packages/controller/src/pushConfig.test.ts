import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { agentConfigSchema, createTopics } from '@fso/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCollector, createTempDir, waitFor } from '../../../tests/helpers.js';
import type { MessageCollector } from '../../../tests/helpers.js';
import { pushConfig } from './index.js';
import { startFakeAgent } from './testing/fakeAgent.js';
import type { FakeAgent } from './testing/fakeAgent.js';
import { runCli } from './testing/runCli.js';

const topics = createTopics();
const config = (revision: number, extra: Record<string, unknown> = {}) => ({
  schema: 'fso.config/1',
  revision,
  watch: [{ path: '/srv/app', important: ['**/*.conf'] }],
  ...extra,
});

let broker: Broker;
let dir: Awaited<ReturnType<typeof createTempDir>>;
let closers: (() => Promise<void>)[];
const agent = async (options: Omit<Parameters<typeof startFakeAgent>[0], 'url'>): Promise<FakeAgent> => {
  const fake = await startFakeAgent({ url: broker.url, ...options });
  closers.push(fake.close);
  return fake;
};
const collector = async (filter: string): Promise<MessageCollector> => {
  const c = await createCollector(broker.url, filter);
  closers.push(c.close);
  return c;
};
const file = async (name: string, content: unknown): Promise<string> => {
  const target = path.join(dir.path, name);
  await writeFile(target, typeof content === 'string' ? content : JSON.stringify(content));
  return target;
};

beforeEach(async () => {
  broker = await startBroker({ port: 0 });
  dir = await createTempDir('fso-controller-');
  closers = [];
});
afterEach(async () => {
  for (const close of closers.reverse()) await close();
  await broker.close();
  await dir.cleanup();
});

describe('push --agent', () => {
  it('exits 0 once the agent applies the revision, and leaves the config retained', async () => {
    const web = await agent({ agentId: 'web-01' });
    const cfg = await file('cfg.json', config(7));

    const run = await runCli(broker.url, ['push', '--agent', 'web-01', '--file', cfg]);

    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('web-01: applied revision 7');
    expect(web.received.map((r) => r.topic)).toEqual([topics.config('web-01')]);
    // A client that subscribes later still gets it: it is retained, with defaults filled in.
    const later = await collector(topics.config('web-01'));
    const retained = await later.waitFor((m) => m.retain, 'the retained config');
    expect(retained.json).toEqual(agentConfigSchema.parse(config(7)));
  });

  it('exits 1 with the reason when the agent rejects the revision', async () => {
    await agent({ agentId: 'web-01', answer: () => 'watch path /srv/app does not exist' });
    const cfg = await file('cfg.json', config(3));

    const run = await runCli(broker.url, ['push', '--agent', 'web-01', '--file', cfg]);

    expect(run.code).toBe(1);
    expect(run.stdout).toContain('web-01: rejected revision 3: watch path /srv/app does not exist');
  });

  it('reports a revision lower than the one in force as rejected', async () => {
    await agent({ agentId: 'web-01' });
    expect((await runCli(broker.url, ['push', '--agent', 'web-01', '--file', await file('a.json', config(5))])).code).toBe(0);

    const run = await runCli(broker.url, ['push', '--agent', 'web-01', '--file', await file('b.json', config(4))]);

    expect(run.code).toBe(1);
    expect(run.stdout).toContain('revision 4 is lower than revision 5 in force');
  });

  it('exits 3 within the timeout when no agent answers', async () => {
    await agent({ agentId: 'web-01', silent: true });
    const cfg = await file('cfg.json', config(1));

    const run = await runCli(broker.url, ['push', '--agent', 'web-01', '--file', cfg, '--timeout', '0.5']);

    expect(run.code).toBe(3);
    expect(run.stdout).toContain('web-01: no answer for revision 1 within 0.5 s');
    expect(run.ms).toBeLessThan(5_000);
    // The controller's own connection is gone: only the agent is left.
    await waitFor(() => broker.aedes.connectedClients === 1, 'the controller to disconnect', 2_000);
  });

  it('does not take a retained status of an earlier push of the same revision for an answer', async () => {
    await agent({
      agentId: 'web-01',
      silent: true,
      initialConfig: { revision: 9, state: 'applied', error: null, source: 'agent', appliedRevision: 9 },
    });
    const run = await runCli(broker.url, ['push', '--agent', 'web-01', '--file', await file('c.json', config(9)), '--timeout', '0.5']);
    expect(run.code).toBe(3);
  });

  it('says when the agent is offline', async () => {
    const web = await agent({ agentId: 'web-01' });
    await web.goOffline();
    const run = await runCli(broker.url, ['push', '--agent', 'web-01', '--file', await file('d.json', config(2)), '--timeout', '0.3']);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/web-01: no answer .* \(it is offline since .*; the config stays retained for when it reconnects\)/);
  });
});

describe('push with an invalid file', () => {
  const cases: [string, unknown, RegExp][] = [
    ['a relative watch path', config(1, { watch: [{ path: 'srv/app' }] }), /watch\.0\.path: path must be absolute/],
    ['an unknown key', config(1, { colour: 'blue' }), /colour/],
    ['a wrong type', config(1, { revision: '7' }), /revision: .*number/],
    ['a nested unknown key', config(1, { diff: { contxt: 3 } }), /diff.*contxt/],
  ];
  for (const [what, content, field] of cases) {
    it(`exits 2 naming the file and the field for ${what}, and publishes nothing`, async () => {
      const all = await collector(topics.all());
      const cfg = await file('bad.json', content);

      const run = await runCli(broker.url, ['push', '--agent', 'web-01', '--file', cfg]);

      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`invalid config in ${cfg}`);
      expect(run.stderr).toMatch(field);
      expect(run.stderr).toContain('nothing was published');
      // Anything the push had published would reach the collector before this marker.
      await broker.aedes.publish({ cmd: 'publish', topic: 'fso/marker', payload: '', qos: 1, retain: false, dup: false }, () => {});
      await all.waitFor((m) => m.topic === 'fso/marker', 'the marker');
      expect(all.messages.filter((m) => m.topic !== 'fso/marker')).toEqual([]);
    });
  }

  it('exits 2 for a file that does not exist', async () => {
    const missing = path.join(dir.path, 'nope.json');
    const run = await runCli(broker.url, ['push', '--default', '--file', missing]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`cannot use config file ${missing}: no such file`);
  });

  it('exits 2 for a file that is not JSON', async () => {
    const cfg = await file('broken.json', '{ "schema": "fso.config/1", ');
    const run = await runCli(broker.url, ['push', '--default', '--file', cfg]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`cannot use config file ${cfg}: not JSON`);
  });
});

describe('push --default', () => {
  it('waits for every online agent that has no config of its own', async () => {
    const a = await agent({ agentId: 'a-1' });
    const b = await agent({ agentId: 'b-1' });
    const own = await agent({ agentId: 'own-1' });
    expect((await runCli(broker.url, ['push', '--agent', 'own-1', '--file', await file('own.json', config(1))])).code).toBe(0);

    const run = await runCli(broker.url, ['push', '--default', '--file', await file('default.json', config(4))]);

    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`published revision 4 to ${topics.defaultConfig()} (retained)`);
    expect(run.stdout).toContain('a-1: applied revision 4');
    expect(run.stdout).toContain('b-1: applied revision 4');
    expect(run.stdout).toContain('own-1: not affected (it runs its own config)');
    expect(a.received.at(-1)?.config.revision).toBe(4);
    expect(b.received.at(-1)?.config.revision).toBe(4);
    expect(own.received.map((r) => r.topic)).toEqual([topics.config('own-1')]);
  });

  it('waits for an agent whose own config was cleared', async () => {
    const a = await agent({ agentId: 'a-1' });
    expect((await runCli(broker.url, ['push', '--agent', 'a-1', '--file', await file('own.json', config(1))])).code).toBe(0);
    const clearer = await collector(topics.config('a-1'));
    await clearer.client.publishAsync(topics.config('a-1'), '', { qos: 1, retain: true });

    const run = await runCli(broker.url, ['push', '--default', '--file', await file('default.json', config(2))]);

    expect(run.code).toBe(0);
    expect(run.stdout).toContain('a-1: applied revision 2');
    expect(a.received.at(-1)).toMatchObject({ topic: topics.defaultConfig(), config: { revision: 2 } });
  });

  it('reports each agent: one applies, one rejects', async () => {
    await agent({ agentId: 'a-1' });
    await agent({ agentId: 'b-1', answer: () => 'no space left' });
    const run = await runCli(broker.url, ['push', '--default', '--file', await file('default.json', config(2))]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('a-1: applied revision 2');
    expect(run.stdout).toContain('b-1: rejected revision 2: no space left');
  });

  it('succeeds with no agent online and keeps the config for agents that start later', async () => {
    const run = await runCli(broker.url, ['push', '--default', '--file', await file('default.json', config(1))]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('stored retained for agents that start later');
    await waitFor(() => broker.aedes.connectedClients === 0, 'the controller to disconnect', 2_000);
    const late = await agent({ agentId: 'late-1' });
    await expect.poll(() => late.received.map((r) => r.config.revision)).toEqual([1]);
  });
});

describe('pushConfig', () => {
  it('uses a client it is given and leaves it connected', async () => {
    await agent({ agentId: 'web-01' });
    const mine = await collector(topics.status('web-01'));
    const listeners = mine.client.listenerCount('message');
    const result = await pushConfig({ client: mine.client, target: { agentId: 'web-01' }, config: config(1) });
    expect(result.ok).toBe(true);
    expect(result.outcomes).toMatchObject([{ agentId: 'web-01', outcome: 'applied' }]);
    expect(result.config).toEqual(agentConfigSchema.parse(config(1)));
    expect(mine.client.connected).toBe(true);
    expect(mine.client.listenerCount('message')).toBe(listeners);
  });
});
