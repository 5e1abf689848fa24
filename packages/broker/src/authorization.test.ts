import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../tests/helpers.js';
import type { Broker } from './broker.js';
import { readAuthFile, writeAuthFile } from './authFile.js';
import { USERS, writeTestAuthFile } from './testing/auth.js';
import type { TestUser } from './testing/auth.js';
import { createTestBrokers } from './testing/brokers.js';
import { createTestClients, received, subscribeCodes } from './testing/clients.js';
import { captureLog } from './testing/log.js';
import type { CapturedLog } from './testing/log.js';

const run = promisify(execFile);
const brokers = createTestBrokers();
const clients = createTestClients();
let temp: { path: string; cleanup: () => Promise<void> };
let authFile: string;
let log: CapturedLog;
let broker: Broker;

beforeAll(async () => {
  temp = await createTempDir('fso-broker-acl-');
  authFile = await writeTestAuthFile(temp.path);
});
afterAll(async () => temp.cleanup());
afterEach(async () => {
  await clients.endAll();
  await brokers.closeAll();
});

async function start(): Promise<void> {
  log = captureLog();
  broker = await brokers.start({ auth: { authFile }, logger: log.logger });
}

const login = (user: TestUser, clientId = user.agentId ?? user.username, clean = true): Promise<MqttClient> =>
  clients.connect(broker.url, { clientId, username: user.username, password: user.password, clean });

/** A recorder that sees everything under fso/. */
async function spy(): Promise<ReturnType<typeof received>> {
  const recorder = await login(USERS.recorder, 'spy');
  const messages = received(recorder);
  await recorder.subscribeAsync('fso/#', { qos: 1 });
  return messages;
}

/** Publishes and waits for the broker to drop the connection (its answer to an unauthorized PUBLISH). */
async function publishRefused(client: MqttClient, topic: string, payload: string, retain = false): Promise<void> {
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  client.publish(topic, payload, { qos: 1, retain });
  await closed;
}

describe('authorization by role', () => {
  it('does not deliver what agent A publishes as agent B, logs it, and still serves agent A', async () => {
    await start();
    const seen = await spy();
    const agentA = await login(USERS.agentA);
    await publishRefused(agentA, 'fso/agents/web-02/events/create', 'forged-payload-31337');

    const again = await login(USERS.agentA);
    await again.publishAsync('fso/agents/web-01/events/create', 'legit', { qos: 1 });
    await waitFor(() => seen.find((m) => m.payload === 'legit'), 'the legitimate event at the recorder');
    expect(seen.filter((m) => m.topic.includes('web-02'))).toEqual([]);

    const refusal = await waitFor(() => log.find('publish refused')[0], 'the refusal log line');
    expect(refusal).toMatchObject({ level: 40, clientId: 'web-01', username: 'agent-a', role: 'agent', topic: 'fso/agents/web-02/events/create' });
    expect(log.text()).not.toContain('forged-payload-31337');
    expect(log.text()).not.toContain(USERS.agentA.password);
  });

  it('answers an agent subscribing to fso/# with a failure SUBACK and keeps it connected', async () => {
    await start();
    const agent = await login(USERS.agentA);
    expect(await subscribeCodes(agent, 'fso/#')).toEqual([128]);
    expect(await subscribeCodes(agent, ['fso/agents/web-01/config', 'fso/agents/web-02/config', 'fso/config/default'])).toEqual([1, 128, 1]);
    expect(agent.connected).toBe(true);
    expect(log.find('subscription refused').map((r) => r.topic)).toEqual(['fso/#', 'fso/agents/web-02/config']);
  });

  it('denies mosquitto_sub, logged in as an agent, a subscription to fso/#', async () => {
    await start();
    const { username, password, agentId } = USERS.agentA;
    const args = ['-h', '127.0.0.1', '-p', String(broker.port), '-i', agentId, '-u', username, '-P', password, '-q', '1', '-t', 'fso/#', '-W', '5'];
    const result = await run('mosquitto_sub', args, { timeout: 10_000 }).then(
      (r) => ({ code: 0, stderr: r.stderr }),
      (err: { code?: number; stderr?: string }) => ({ code: err.code, stderr: err.stderr ?? '' }),
    );
    // mosquitto_sub 2.0 reports the 0x80 SUBACK on stderr and stops.
    expect(result.stderr).toContain('All subscription requests were denied');
    expect(log.find('subscription refused')[0]).toMatchObject({ clientId: 'web-01', role: 'agent', topic: 'fso/#' });
  });

  it('refuses a viewer publishing a config: nothing delivered, nothing retained', async () => {
    await start();
    const seen = await spy();
    const viewer = await login(USERS.viewer);
    await publishRefused(viewer, 'fso/config/default', '{"schema":"fso.config/1"}', true);
    // A legitimate config from the controller after it arrives, retained; the viewer's never does.
    const controller = await login(USERS.controller);
    await controller.publishAsync('fso/agents/web-01/config', 'from-controller', { qos: 1, retain: true });
    await waitFor(() => seen.find((m) => m.payload === 'from-controller'), 'the controller config at the recorder');
    expect(seen.filter((m) => m.topic === 'fso/config/default')).toEqual([]);
    const late = await login(USERS.recorder, 'late');
    const retained = received(late);
    await late.subscribeAsync(['fso/config/default', 'fso/agents/web-01/config'], { qos: 1 });
    await waitFor(() => retained.find((m) => m.payload === 'from-controller'), 'the retained controller config');
    expect(retained.filter((m) => m.topic === 'fso/config/default')).toEqual([]);
    expect(log.find('publish refused')[0]).toMatchObject({ username: 'view', role: 'viewer', topic: 'fso/config/default' });
  });

  it('refuses a viewer publishing a config with mosquitto_pub too', async () => {
    await start();
    const seen = await spy();
    const { username, password } = USERS.viewer;
    const args = ['-h', '127.0.0.1', '-p', String(broker.port), '-i', 'mosq-view', '-u', username, '-P', password, '-q', '1', '-t', 'fso/config/default', '-m', 'x'];
    await run('mosquitto_pub', args, { timeout: 10_000 }).catch(() => undefined);
    await waitFor(() => log.find('publish refused')[0], 'the refusal log line');
    const controller = await login(USERS.controller);
    await controller.publishAsync('fso/config/default', 'marker', { qos: 1 });
    await waitFor(() => seen.find((m) => m.payload === 'marker'), 'the marker');
    expect(seen.map((m) => m.payload)).toEqual(['marker']);
  });

  it('lets each role do its job: controller configs, recorder acks, agent status, viewer reads', async () => {
    await start();
    const viewer = await login(USERS.viewer);
    const viewed = received(viewer);
    const grants = await subscribeCodes(viewer, ['fso/agents/+/events/#', 'fso/agents/+/diffs', 'fso/agents/+/status', 'fso/agents/+/config']);
    expect(grants).toEqual([1, 1, 1, 128]);
    const agent = await login(USERS.agentA);
    const agentInbox = received(agent);
    await agent.subscribeAsync(['fso/agents/web-01/config', 'fso/agents/web-01/ack'], { qos: 1 });
    await agent.publishAsync('fso/agents/web-01/status', 'online', { qos: 1, retain: true });
    await agent.publishAsync('fso/agents/web-01/diffs', 'diff', { qos: 1 });
    const controller = await login(USERS.controller);
    await controller.publishAsync('fso/agents/web-01/config', 'config', { qos: 1, retain: true });
    const recorder = await login(USERS.recorder);
    await recorder.publishAsync('fso/agents/web-01/ack', 'ack', { qos: 1, retain: true });
    await waitFor(() => agentInbox.length >= 2 && agentInbox, 'config and ack at the agent');
    expect(agentInbox.map((m) => m.payload).sort()).toEqual(['ack', 'config']);
    await waitFor(() => viewed.length >= 2 && viewed, 'status and diff at the viewer');
    expect(viewed.map((m) => m.payload).sort()).toEqual(['diff', 'online']);
  });

  it('never lets anyone write $SYS', async () => {
    await start();
    const recorder = await login(USERS.recorder);
    await publishRefused(recorder, '$SYS/broker/fake', 'x');
    expect(log.find('publish refused')[0]).toMatchObject({ topic: '$SYS/broker/fake', role: 'recorder' });
  });

  it('checks queued messages again at delivery: a session whose login lost the right gets none of them', async () => {
    const dir = await createTempDir();
    try {
      const file = await writeTestAuthFile(dir.path, [USERS.recorder, USERS.controller, USERS.agentA]);
      log = captureLog();
      broker = await brokers.start({ auth: { authFile: file }, logger: log.logger });
      const first = await login(USERS.recorder, 'rec-session', false);
      await first.subscribeAsync('fso/#', { qos: 1 });
      await first.endAsync();
      const controller = await login(USERS.controller);
      await controller.publishAsync('fso/agents/web-01/config', 'queued-1', { qos: 1 });
      // Same login, same session: the queued message arrives (the control case).
      const second = clients.connectLater(broker.url, { clientId: 'rec-session', username: USERS.recorder.username, password: USERS.recorder.password, clean: false });
      const secondInbox = received(second);
      await waitFor(() => secondInbox.find((m) => m.payload === 'queued-1'), 'the queued message for the unchanged login');
      await second.endAsync();

      await controller.publishAsync('fso/agents/web-01/config', 'queued-2', { qos: 1 });
      const data = await readAuthFile(file);
      await writeAuthFile(file, { ...data, users: data.users.map((u) => (u.username === USERS.recorder.username ? { ...u, role: 'viewer' } : u)) });
      await broker.reload();
      const third = clients.connectLater(broker.url, { clientId: 'rec-session', username: USERS.recorder.username, password: USERS.recorder.password, clean: false });
      const thirdInbox = received(third);
      await new Promise<void>((resolve) => third.once('connect', () => resolve()));
      // A status published now proves the restored session is live and filtered, not just slow.
      const agent = await login(USERS.agentA);
      await agent.publishAsync('fso/agents/web-01/status', 'status-after', { qos: 1 });
      const grants = await third.subscribeAsync('fso/agents/+/status', { qos: 1 });
      expect(grants[0]?.qos).toBe(1);
      await agent.publishAsync('fso/agents/web-01/status', 'status-after-2', { qos: 1 });
      await waitFor(() => thirdInbox.find((m) => m.payload === 'status-after-2'), 'the status at the reconnected viewer');
      expect(thirdInbox.filter((m) => m.payload.startsWith('queued'))).toEqual([]);
    } finally {
      await dir.cleanup();
    }
  });
});
