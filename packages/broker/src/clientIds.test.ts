import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { IClientOptions } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSilentLogger } from '@fso/common';
import { createTempDir, waitFor } from '../../../tests/helpers.js';
import { readAuthFile, withoutUser, writeAuthFile } from './authFile.js';
import type { Broker, BrokerOptions } from './broker.js';
import { startBroker } from './broker.js';
import { CLIENT_IDS_FILE, openClientIdRegistry, readClientIds } from './clientIds.js';
import { BrokerStorageError } from './errors.js';
import { USERS, testToken, writeTestAuthFile, writeTestJwtKeys } from './testing/auth.js';
import type { TestJwtKeys, TestUser } from './testing/auth.js';
import { createTestBrokers } from './testing/brokers.js';
import { runCli } from './testing/cli.js';
import { createTestClients, loginRefusal, received } from './testing/clients.js';
import { captureLog } from './testing/log.js';
import type { CapturedLog } from './testing/log.js';

const brokers = createTestBrokers();
const clients = createTestClients();
let temp: { path: string; cleanup: () => Promise<void> };
let keys: TestJwtKeys;
let dirs = 0;
beforeAll(async () => {
  temp = await createTempDir('fso-broker-client-ids-');
  keys = await writeTestJwtKeys(temp.path);
});
afterEach(async () => {
  await clients.endAll();
  await brokers.closeAll();
});
afterAll(async () => temp.cleanup());

/** A fresh dir with an auth file of every test user; `dataDir` is inside it, not created yet. */
async function fixture(): Promise<{ authFile: string; dataDir: string }> {
  dirs += 1;
  const dir = path.join(temp.path, `case-${dirs}`);
  await mkdir(dir);
  const authFile = await writeTestAuthFile(dir);
  return { authFile, dataDir: path.join(dir, 'data') };
}

let log: CapturedLog;
async function start(authFile: string, options: BrokerOptions = {}): Promise<Broker> {
  log = captureLog();
  return brokers.start({ auth: { authFile, jwt: { secretFile: keys.secretFile, issuer: 'fso-test' } }, logger: log.logger, ...options });
}

const as = (user: TestUser, clientId: string, clean = true): IClientOptions => ({ clientId, username: user.username, password: user.password, clean });

const refusal = loginRefusal;
const cli = runCli;

describe('client ids bound to their first login', () => {
  it("refuses a viewer an offline recorder's persistent client id, so the recorder's queue survives; clean logins bind nothing", async () => {
    const { authFile } = await fixture();
    const broker = await start(authFile);
    const recorder = await clients.connect(broker.url, as(USERS.recorder, 'fso-audit-1', false));
    await recorder.subscribeAsync('fso/agents/+/status', { qos: 1 });
    await recorder.endAsync();
    const agent = await clients.connect(broker.url, as(USERS.agentA, 'web-01'));
    await agent.publishAsync('fso/agents/web-01/status', 'queued while offline', { qos: 1 });

    expect(await refusal(broker.url, as(USERS.viewer, 'fso-audit-1'))).toBe(2);
    expect(await refusal(broker.url, as(USERS.controller, 'fso-audit-1', false))).toBe(2);
    const line = log.find('login refused').find((r) => r.username === USERS.viewer.username);
    expect(line).toMatchObject({ clientId: 'fso-audit-1', reason: 'that client id belongs to another login (recorder:rec)' });

    const back = clients.connectLater(broker.url, as(USERS.recorder, 'fso-audit-1', false));
    const messages = received(back);
    await waitFor(() => messages.find((m) => m.payload === 'queued while offline'), "the recorder's queued message");

    // A clean login binds nothing: the id stays free for whoever uses it next with a persistent session.
    const viewer = await clients.connect(broker.url, as(USERS.viewer, 'shared'));
    await viewer.endAsync();
    const owner = await clients.connect(broker.url, as(USERS.recorder, 'shared', false));
    await owner.endAsync();
    expect(await refusal(broker.url, as(USERS.viewer, 'shared'))).toBe(2);
  });

  it('keeps bindings in the data dir (0600) across restarts, token agents included', async () => {
    const { authFile, dataDir } = await fixture();
    let broker = await start(authFile, { dataDir });
    await (await clients.connect(broker.url, as(USERS.recorder, 'fso-audit-1', false))).endAsync();
    const agentToken = testToken({ sub: 'edge-9', role: 'agent', agentId: 'web-09' }, keys.secret);
    await (await clients.connect(broker.url, { clientId: 'web-09', username: 'edge-9', password: agentToken })).endAsync();
    await brokers.closeAll();

    const file = path.join(dataDir, CLIENT_IDS_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ schema: 'fso.client-ids/1' });
    expect(await readClientIds(dataDir)).toEqual([
      { clientId: 'fso-audit-1', owner: 'recorder:rec', role: 'recorder', username: 'rec', via: 'password', since: expect.any(String) },
      { clientId: 'web-09', owner: 'agent:web-09', role: 'agent', username: 'edge-9', agentId: 'web-09', via: 'token', since: expect.any(String) },
    ]);

    broker = await start(authFile, { dataDir });
    expect(await refusal(broker.url, as(USERS.viewer, 'fso-audit-1'))).toBe(2);
    expect(await refusal(broker.url, as(USERS.controller, 'web-09'))).toBe(2);
    expect((await clients.connect(broker.url, as(USERS.recorder, 'fso-audit-1', false))).connected).toBe(true);
  });

  it('releases the client ids of a user removed from the auth file (on reload, and at start)', async () => {
    const { authFile, dataDir } = await fixture();
    const broker = await start(authFile, { dataDir });
    await (await clients.connect(broker.url, as(USERS.recorder, 'fso-audit-1', false))).endAsync();
    await (await clients.connect(broker.url, as(USERS.controller, 'ctl-1', false))).endAsync();
    await writeAuthFile(authFile, withoutUser(await readAuthFile(authFile), USERS.recorder.username)!);
    await broker.reload();
    expect(log.find('client id released')).toMatchObject([{ clientId: 'fso-audit-1', owner: 'recorder:rec' }]);
    expect((await clients.connect(broker.url, as(USERS.viewer, 'fso-audit-1'))).connected).toBe(true);
    await brokers.closeAll();
    expect((await readClientIds(dataDir)).map((b) => b.clientId)).toEqual(['ctl-1']);

    await writeAuthFile(authFile, withoutUser(await readAuthFile(authFile), USERS.controller.username)!);
    await start(authFile, { dataDir });
    expect(log.find('client id released')).toMatchObject([{ clientId: 'ctl-1', owner: 'controller:ctl' }]);
  });

  it('refuses a login one more client id than maxClientIdsPerLogin, and lets it reuse its own', async () => {
    const { authFile } = await fixture();
    const broker = await start(authFile, { limits: { maxClientIdsPerLogin: 2 } });
    for (const id of ['v-1', 'v-2']) await (await clients.connect(broker.url, as(USERS.viewer, id, false))).endAsync();
    expect(await refusal(broker.url, as(USERS.viewer, 'v-3', false))).toBe(2);
    expect(log.find('login refused').at(-1)?.reason).toMatch(/already owns 2 client ids/);
    expect((await clients.connect(broker.url, as(USERS.viewer, 'v-1', false))).connected).toBe(true);
    expect((await clients.connect(broker.url, as(USERS.viewer, 'v-3'))).connected).toBe(true);
  });
});

describe('fso-broker session', () => {
  it('lists bindings, refuses to release while a broker runs, releases once it is stopped', async () => {
    const { authFile, dataDir } = await fixture();
    const broker = await start(authFile, { dataDir });
    await (await clients.connect(broker.url, as(USERS.recorder, 'fso-audit-1', false))).endAsync();
    await waitFor(async () => (await readClientIds(dataDir)).length === 1, 'the binding on disk');

    const list = await cli(['session', 'list', '--data-dir', dataDir]);
    expect(list).toMatchObject({ code: 0, stdout: expect.stringMatching(/^fso-audit-1 {2}recorder:rec \(password\) since \d{4}-/) });
    expect(JSON.parse((await cli(['session', 'list', '--data-dir', dataDir, '--json'])).stdout)).toHaveLength(1);

    const running = await cli(['session', 'release', '--data-dir', dataDir, '--client-id', 'fso-audit-1']);
    expect(running.code).toBe(1);
    expect(running.stderr).toContain('a running broker is using it: stop the broker');
    await brokers.closeAll();

    expect(await cli(['session', 'release', '--data-dir', dataDir, '--client-id', 'nope'])).toMatchObject({ code: 2, stderr: expect.stringContaining('client id nope is not bound') });
    const released = await cli(['session', 'release', '--data-dir', dataDir, '--client-id', 'fso-audit-1']);
    expect(released).toMatchObject({ code: 0, stdout: expect.stringContaining('released client id fso-audit-1, owned by recorder:rec') });
    expect(await readClientIds(dataDir)).toEqual([]);
    const again = await start(authFile, { dataDir });
    expect((await clients.connect(again.url, as(USERS.viewer, 'fso-audit-1'))).connected).toBe(true);
  });

  it('refuses to start on a broken bindings file, naming it', async () => {
    const { authFile, dataDir } = await fixture();
    await brokers.start({ dataDir });
    await brokers.closeAll();
    await writeFile(path.join(dataDir, CLIENT_IDS_FILE), '{"schema": "fso.client-ids/1", "bindings": [{"clientId": 1}]}');
    await expect(startBroker({ port: 0, dataDir, auth: { authFile } })).rejects.toThrow(BrokerStorageError);
    await expect(startBroker({ port: 0, dataDir, auth: { authFile } })).rejects.toThrow(/client-ids\.json: bindings\[0\] needs clientId/);
    expect(await cli(['session', 'list', '--data-dir', dataDir])).toMatchObject({ code: 1, stderr: expect.stringContaining('client-ids.json') });
    await writeFile(path.join(dataDir, CLIENT_IDS_FILE), 'not json');
    await expect(startBroker({ port: 0, dataDir, auth: { authFile } })).rejects.toThrow(/client-ids\.json: not JSON/);
  });
});

describe('openClientIdRegistry', () => {
  it('close() twice returns the same promise, which waits for the last write', async () => {
    const { dataDir } = await fixture();
    await mkdir(dataDir);
    const registry = await openClientIdRegistry(dataDir, createSilentLogger());
    registry.bind('web-01', { username: 'edge', role: 'agent', agentId: 'web-01', via: 'password' });
    const closed = registry.close();
    expect(registry.close()).toBe(closed);
    await closed;
    expect(await readClientIds(dataDir)).toEqual([expect.objectContaining({ clientId: 'web-01', owner: 'agent:web-01' })]);
  });
});
