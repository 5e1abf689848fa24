import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startBroker } from '@fso/broker';
import type { Broker } from '@fso/broker';
import { agentConfigSchema, createTopics } from '@fso/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../tests/helpers.js';
import { getConfig, listAgents } from './index.js';
import { startFakeAgent } from './testing/fakeAgent.js';
import type { FakeAgent, FakeAgentOptions } from './testing/fakeAgent.js';
import { runCli } from './testing/runCli.js';

const topics = createTopics();
const config = (revision: number, watchPath = '/srv/app') => ({ schema: 'fso.config/1', revision, watch: [{ path: watchPath }] });

let broker: Broker;
let dir: Awaited<ReturnType<typeof createTempDir>>;
let agents: FakeAgent[];
const agent = async (options: Omit<FakeAgentOptions, 'url'>): Promise<FakeAgent> => {
  const fake = await startFakeAgent({ url: broker.url, ...options });
  agents.push(fake);
  return fake;
};
const push = async (target: string[], revision: number, watchPath?: string): Promise<number> => {
  const file = path.join(dir.path, `cfg-${revision}.json`);
  await writeFile(file, JSON.stringify(config(revision, watchPath)));
  return (await runCli(broker.url, ['push', ...target, '--file', file, '--timeout', '2'])).code;
};

beforeEach(async () => {
  broker = await startBroker({ port: 0 });
  dir = await createTempDir('fso-controller-');
  agents = [];
});
afterEach(async () => {
  for (const a of agents) await a.close();
  await broker.close();
  await dir.cleanup();
});

describe('get --agent', () => {
  it("prints the agent's own config when it runs it", async () => {
    await agent({ agentId: 'web-01' });
    expect(await push(['--default'], 3, '/srv/default')).toBe(0);
    expect(await push(['--agent', 'web-01'], 7)).toBe(0);

    const run = await runCli(broker.url, ['get', '--agent', 'web-01']);

    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(agentConfigSchema.parse(config(7)));
    expect(run.stderr).toBe(`source: agent (${topics.config('web-01')}), revision 7\n`);
  });

  it('prints the default config for an agent that runs it', async () => {
    await agent({ agentId: 'web-02' });
    expect(await push(['--default'], 3, '/srv/default')).toBe(0);

    const run = await runCli(broker.url, ['get', '--agent', 'web-02']);

    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ revision: 3, watch: [{ path: '/srv/default' }] });
    expect(run.stderr).toContain(`source: default (${topics.defaultConfig()}), revision 3`);
  });

  it('says when the retained revision was rejected and another one is in force', async () => {
    await agent({ agentId: 'web-01' });
    expect(await push(['--agent', 'web-01'], 5)).toBe(0);
    expect(await push(['--agent', 'web-01'], 4)).toBe(1);

    const found = await getConfig({ brokerUrl: broker.url, agentId: 'web-01' });

    expect(found.revision).toBe(4);
    expect(found.notes).toEqual(['the agent reports revision 5 in force: revision 4 was rejected (revision 4 is lower than revision 5 in force)']);
  });

  it('shows the config an agent that never reported would use', async () => {
    expect(await push(['--default'], 2)).toBe(0);
    const run = await runCli(broker.url, ['get', '--agent', 'new-01']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ revision: 2 });
    expect(run.stderr).toContain('note: the agent has never reported a status');
  });

  it('exits 1 for an agent nobody knows', async () => {
    const run = await runCli(broker.url, ['get', '--agent', 'ghost']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('agent ghost has never reported a status');
    expect(run.stdout).toBe('');
    await waitFor(() => broker.aedes.connectedClients === 0, 'the controller to disconnect after the failure', 2_000);
  });

  it('exits 2 for an invalid agent id', async () => {
    const run = await runCli(broker.url, ['get', '--agent', '../etc']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('invalid agent id "../etc"');
  });
});

describe('agents', () => {
  const setUp = async (): Promise<void> => {
    await agent({ agentId: 'b-2' });
    const gone = await agent({ agentId: 'a-1' });
    expect(await push(['--agent', 'b-2'], 6)).toBe(0);
    await gone.goOffline();
  };

  it('--json lists every agent with state, host, config revision and state, last seen', async () => {
    await setUp();
    const run = await runCli(broker.url, ['agents', '--json']);
    expect(run.code).toBe(0);
    const listed = JSON.parse(run.stdout) as { agentId: string; lastSeen: string }[];
    expect(listed).toMatchObject([
      { agentId: 'a-1', state: 'offline', hostname: 'a-1.test', configRevision: null, configState: 'none' },
      { agentId: 'b-2', state: 'online', hostname: 'b-2.test', configRevision: 6, configState: 'applied', configSource: 'agent' },
    ]);
    for (const a of listed) expect(Date.now() - Date.parse(a.lastSeen)).toBeLessThan(60_000);
    await waitFor(() => broker.aedes.connectedClients === 1, 'the controller to disconnect (b-2 stays)', 2_000);
  });

  it('prints a table by default', async () => {
    await setUp();
    const run = await runCli(broker.url, ['agents']);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^AGENT\s+STATE\s+HOST\s+CONFIG\s+CONFIG STATE\s+SOURCE\s+LAST SEEN$/);
    expect(lines[1]).toMatch(/^a-1\s+offline\s+a-1\.test\s+-\s+none\s+cli\s+\d{4}-\d\d-\d\dT/);
    expect(lines[2]).toMatch(/^b-2\s+online\s+b-2\.test\s+6\s+applied\s+agent\s+\d{4}-\d\d-\d\dT/);
    expect(lines).toHaveLength(3);
  });

  it('skips a malformed retained status instead of failing', async () => {
    await agent({ agentId: 'ok-1' });
    await new Promise<void>((resolve, reject) =>
      broker.aedes.publish(
        { cmd: 'publish', topic: topics.status('bad-1'), payload: Buffer.from('{"schema":'), qos: 1, retain: true, dup: false },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    const listed = await listAgents({ brokerUrl: broker.url });
    expect(listed.map((a) => a.agentId)).toEqual(['ok-1']);
  });

  it('says so when no agent has reported', async () => {
    const run = await runCli(broker.url, ['agents']);
    expect(run.stdout).toBe('no agent has reported a status\n');
  });
});

describe('broker unreachable', () => {
  it('exits 4 when the broker stops acknowledging after the connect', async () => {
    // A real broker that accepts the connection, then never answers a SUBSCRIBE.
    broker.aedes.authorizeSubscribe = () => {};
    const run = await runCli(broker.url, ['agents', '--connect-timeout', '0.5']);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain(`the broker did not acknowledge SUBSCRIBE ${topics.allStatus()} within 500 ms`);
    await waitFor(() => broker.aedes.connectedClients === 0, 'the controller to disconnect', 2_000);
  });

  it('exits 4 when the broker never acknowledges the config PUBLISH', async () => {
    broker.aedes.authorizePublish = () => {};
    const file = path.join(dir.path, 'cfg.json');
    await writeFile(file, JSON.stringify(config(1)));
    const run = await runCli(broker.url, ['push', '--agent', 'web-01', '--file', file, '--connect-timeout', '0.5']);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain(`the broker did not acknowledge PUBLISH ${topics.config('web-01')} within 500 ms`);
    await waitFor(() => broker.aedes.connectedClients === 0, 'the controller to disconnect', 2_000);
  });

  it('exits 4 with a clear message', async () => {
    const url = broker.url;
    await broker.close();
    const run = await runCli(url, ['agents', '--connect-timeout', '0.5']);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain(`cannot connect to MQTT broker at ${url}`);
  });
});
