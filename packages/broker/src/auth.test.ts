import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../tests/helpers.js';
import { startBroker } from './broker.js';
import type { Broker } from './broker.js';
import { readAuthFile, writeAuthFile } from './authFile.js';
import type { AuthUser } from './authFile.js';
import { KeyFileError } from './errors.js';
import { hashPassword } from './passwords.js';
import { TEST_SCRYPT, USERS, testToken, writeTestAuthFile, writeTestJwtKeys } from './testing/auth.js';
import type { TestJwtKeys } from './testing/auth.js';
import { createTestBrokers } from './testing/brokers.js';
import { createTestClients, loginRefusal } from './testing/clients.js';
import { captureLog } from './testing/log.js';

const run = promisify(execFile);
const brokers = createTestBrokers();
const clients = createTestClients();
let temp: { path: string; cleanup: () => Promise<void> };
let authFile: string;
let keys: TestJwtKeys;

beforeAll(async () => {
  temp = await createTempDir('fso-broker-auth-');
  authFile = await writeTestAuthFile(temp.path);
  keys = await writeTestJwtKeys(temp.path);
});
afterEach(async () => {
  await clients.endAll();
  await brokers.closeAll();
});
afterAll(async () => temp.cleanup());

const refusal = loginRefusal;

const hsJwt = { secretFile: '', issuer: 'fso-test' };

describe('logins with an auth file', () => {
  it('refuses an anonymous client (MQTT.js and mosquitto_pub) and logs it', async () => {
    const log = captureLog();
    const broker = await brokers.start({ auth: { authFile }, logger: log.logger });
    expect(await refusal(broker.url, { clientId: 'anon' })).toBe(5);
    expect(await refusal(broker.url, { clientId: 'anon2', username: USERS.viewer.username })).toBe(5);
    const pub = await run('mosquitto_pub', ['-p', String(broker.port), '-h', '127.0.0.1', '-t', 'fso/x', '-m', 'x', '-i', 'mosq'], {
      timeout: 10_000,
    }).catch((err: { code?: number; stderr?: string }) => err);
    expect((pub as { code?: number }).code).not.toBe(0);
    expect(log.find('login refused').map((r) => r.clientId)).toEqual(expect.arrayContaining(['anon', 'anon2', 'mosq']));
  });

  it('refuses a wrong password and an unknown user (4), accepts the right one, and never logs a password', async () => {
    const log = captureLog();
    const broker = await brokers.start({ auth: { authFile }, logger: log.logger });
    const { username, password, agentId } = USERS.agentA;
    expect(await refusal(broker.url, { clientId: agentId, username, password: 'not-the-password' })).toBe(4);
    expect(await refusal(broker.url, { clientId: 'x', username: 'nobody', password })).toBe(4);
    const client = await clients.connect(broker.url, { clientId: agentId, username, password });
    expect(client.connected).toBe(true);
    const accepted = await waitFor(() => log.find('login accepted')[0], 'the login log line');
    expect(accepted).toMatchObject({ clientId: 'web-01', username: 'agent-a', role: 'agent', via: 'password' });
    expect(log.find('login refused').map((r) => r.reason)).toEqual(['wrong password', 'unknown user']);
    expect(log.text()).not.toContain(password);
    expect(log.text()).not.toContain('not-the-password');
  });

  it("refuses an agent whose client id is not its agent id, and another role taking an agent's client id", async () => {
    const broker = await brokers.start({ auth: { authFile } });
    const { username, password } = USERS.agentA;
    expect(await refusal(broker.url, { clientId: 'web-02', username, password })).toBe(2);
    expect(await refusal(broker.url, { clientId: 'web-01', username: USERS.viewer.username, password: USERS.viewer.password })).toBe(2);
    // web-01 is still free for its own agent.
    await clients.connect(broker.url, { clientId: 'web-01', username, password });
  });

  it("refuses a second login taking over a connected client's id", async () => {
    const broker = await brokers.start({ auth: { authFile } });
    const controller = await clients.connect(broker.url, { clientId: 'ops-1', username: USERS.controller.username, password: USERS.controller.password });
    expect(await refusal(broker.url, { clientId: 'ops-1', username: USERS.viewer.username, password: USERS.viewer.password })).toBe(2);
    expect(controller.connected).toBe(true);
  });

  it('refuses a last will on a topic the login may not publish to', async () => {
    const broker = await brokers.start({ auth: { authFile } });
    const { username, password } = USERS.agentA;
    const will = { topic: 'fso/agents/web-02/status', payload: Buffer.from('{"state":"offline"}'), qos: 1 as const, retain: true };
    expect(await refusal(broker.url, { clientId: 'web-01', username, password, will })).toBe(5);
    await clients.connect(broker.url, { clientId: 'web-01', username, password, will: { ...will, topic: 'fso/agents/web-01/status' } });
  });

  it('re-reads the auth file on reload: a removed user is disconnected, a new one can log in', async () => {
    const dir = await createTempDir();
    try {
      const file = await writeTestAuthFile(dir.path, [USERS.viewer, USERS.recorder]);
      const broker = await brokers.start({ auth: { authFile: file } });
      const viewer = await clients.connect(broker.url, { clientId: 'v', username: USERS.viewer.username, password: USERS.viewer.password });
      const recorder = await clients.connect(broker.url, { clientId: 'r', username: USERS.recorder.username, password: USERS.recorder.password });
      const viewerClosed = new Promise<void>((resolve) => viewer.once('close', () => resolve()));
      const data = await readAuthFile(file);
      const kept = data.users.find((u) => u.username === USERS.recorder.username);
      const added = { username: USERS.controller.username, role: USERS.controller.role, password: await hashPassword(USERS.controller.password, TEST_SCRYPT) };
      await writeAuthFile(file, { ...data, users: [kept as AuthUser, added] });
      await broker.reload();
      await viewerClosed;
      // The recorder's entry did not change: it keeps its connection (a QoS 1 publish is acknowledged).
      await recorder.publishAsync('fso/agents/web-01/ack', '{}', { qos: 1 });
      await clients.connect(broker.url, { clientId: 'c', username: USERS.controller.username, password: USERS.controller.password });
      expect(await refusal(broker.url, { clientId: 'v2', username: USERS.viewer.username, password: USERS.viewer.password })).toBe(4);
    } finally {
      await dir.cleanup();
    }
  });
});

describe('logins with a JWT as the password', () => {
  const start = (extra: Partial<typeof hsJwt> & { publicKeyFile?: string } = {}, logger = captureLog().logger): Promise<Broker> =>
    brokers.start({ auth: { jwt: { ...hsJwt, secretFile: keys.secretFile, ...extra } }, logger });

  it('accepts a valid HS256 token under any username, with role and agent id from its claims', async () => {
    const log = captureLog();
    const broker = await start({}, log.logger);
    const token = testToken({ sub: 'web-01', role: 'agent', agentId: 'web-01' }, keys.secret);
    await clients.connect(broker.url, { clientId: 'web-01', username: 'whatever', password: token });
    const accepted = await waitFor(() => log.find('login accepted')[0], 'the login log line');
    expect(accepted).toMatchObject({ username: 'web-01', role: 'agent', via: 'token' });
    expect(log.text()).not.toContain(token);
    expect(log.text()).not.toContain(token.split('.')[2]);
  });

  it('refuses expired, not-yet-valid, wrong-issuer, forged, alg none and claim-less tokens, logging why', async () => {
    const log = captureLog();
    const broker = await start({}, log.logger);
    const now = Math.floor(Date.now() / 1000);
    const good = testToken({ role: 'viewer' }, keys.secret);
    const [header, , signature] = good.split('.') as [string, string, string];
    const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    const tokens: Record<string, string> = {
      expired: testToken({ role: 'viewer', iat: now - 7200, nbf: now - 7200, exp: now - 3600 }, keys.secret),
      future: testToken({ role: 'viewer', nbf: now + 3600, iat: now }, keys.secret),
      issuer: testToken({ role: 'viewer', iss: 'someone-else' }, keys.secret),
      forged: `${header}.${b64({ iss: 'fso-test', role: 'controller', exp: now + 3600 })}.${signature}`,
      otherSecret: testToken({ role: 'viewer' }, Buffer.alloc(32, 7)),
      none: `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: 'fso-test', role: 'recorder', exp: now + 3600 })}.`,
      noRole: testToken({ sub: 'x' }, keys.secret),
      agentWithoutId: testToken({ role: 'agent' }, keys.secret),
    };
    // A username each: five failures of one username from one address start a back-off (CONNACK 3).
    for (const [name, token] of Object.entries(tokens)) {
      expect(await refusal(broker.url, { clientId: `t-${name}`, username: `u-${name}`, password: token }), name).toBe(4);
    }
    const reasons = Object.fromEntries(log.find('login refused').map((r) => [String(r.clientId).slice(2), r.reason]));
    expect(reasons).toEqual({
      expired: 'token refused: expired',
      future: 'token refused: not-yet-valid',
      issuer: 'token refused: wrong-issuer',
      forged: 'token refused: bad-signature',
      otherSecret: 'token refused: bad-signature',
      none: 'token refused: bad-signature',
      noRole: 'token refused: bad-claims',
      agentWithoutId: 'token refused: bad-claims',
    });
  });

  it.each([
    ['ES256', () => keys.es256],
    ['EdDSA', () => keys.ed25519],
  ] as const)('accepts %s tokens with only the public key, and refuses an HS256 token keyed with that public key', async (alg, pair) => {
    const { privateKey, publicKeyFile } = pair();
    const broker = await brokers.start({ auth: { jwt: { publicKeyFile, issuer: 'fso-test' } } });
    await clients.connect(broker.url, { clientId: 'rec-1', username: 'rec', password: testToken({ role: 'recorder' }, privateKey, alg) });
    // Alg confusion: HMAC with the (public) PEM as the secret.
    const publicPem = await readFile(publicKeyFile);
    const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iss: 'fso-test', role: 'recorder', exp: Math.floor(Date.now() / 1000) + 600 })}`;
    const confused = `${input}.${createHmac('sha256', publicPem).update(input).digest('base64url')}`;
    expect(await refusal(broker.url, { clientId: 'rec-2', username: 'rec', password: confused })).toBe(4);
  });

  it('will not start with a private key given as the public key, or a short HS256 secret', async () => {
    await expect(startBroker({ port: 0, auth: { jwt: { publicKeyFile: keys.ed25519.privateKeyFile, issuer: 'fso-test' } } })).rejects.toThrow(KeyFileError);
    const short = `${temp.path}/short.secret`;
    await writeFile(short, 'too-short\n', { mode: 0o600 });
    await expect(startBroker({ port: 0, auth: { jwt: { secretFile: short, issuer: 'fso-test' } } })).rejects.toThrow(/at least 32 bytes/);
  });

  it('disconnects a client when its token expires', async () => {
    const broker = await start();
    const now = Math.floor(Date.now() / 1000);
    const client = await clients.connect(broker.url, { clientId: 'short-lived', username: 'v', password: testToken({ role: 'viewer', exp: now + 1 }, keys.secret) });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    await waitFor(() => closed.then(() => true), 'the disconnect at token expiry', 15_000);
  });

  it('takes users from the auth file first and tokens for other usernames, side by side', async () => {
    const broker = await brokers.start({ auth: { authFile, jwt: { ...hsJwt, secretFile: keys.secretFile } } });
    await clients.connect(broker.url, { clientId: 'v1', username: USERS.viewer.username, password: USERS.viewer.password });
    await clients.connect(broker.url, { clientId: 'v2', username: 'someone', password: testToken({ role: 'viewer' }, keys.secret) });
    // A file user's name with a token as password is checked against the file, and fails.
    expect(await refusal(broker.url, { clientId: 'v3', username: USERS.viewer.username, password: testToken({ role: 'viewer' }, keys.secret) })).toBe(4);
  });
});
