import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTempDir, waitFor } from '../../../tests/helpers.js';
import type { Broker } from './broker.js';
import { loggableUsername } from './brokerLog.js';
import { DEFAULT_SCRYPT_PARAMS } from './passwords.js';
import { USERS, testToken, writeTestAuthFile, writeTestJwtKeys } from './testing/auth.js';
import type { TestJwtKeys, TestUser } from './testing/auth.js';
import { createTestBrokers } from './testing/brokers.js';
import { captureLog } from './testing/log.js';
import type { CapturedLog } from './testing/log.js';
import { connackCode, connectPacket, rawConnect, rawLogin } from './testing/raw.js';
import type { RawLogin } from './testing/raw.js';

const brokers = createTestBrokers();
const opened: RawLogin[] = [];
let temp: { path: string; cleanup: () => Promise<void> };
/** Users hashed at a real cost (scrypt N=2^14, half the default): what a login flood makes the broker compute. */
let costlyAuthFile: string;
let cheapAuthFile: string;
let keys: TestJwtKeys;
const costly: TestUser = { username: 'costly', password: 'pw-costly-4a1b9', role: 'viewer' };

beforeAll(async () => {
  temp = await createTempDir('fso-broker-guard-');
  costlyAuthFile = await writeTestAuthFile(temp.path, [costly, { ...USERS.viewer }], 'costly.json', { ...DEFAULT_SCRYPT_PARAMS, N: 2 ** 14 });
  cheapAuthFile = await writeTestAuthFile(temp.path);
  keys = await writeTestJwtKeys(temp.path);
});
afterEach(async () => {
  for (const login of opened.splice(0)) login.connection.socket.destroy();
  await brokers.closeAll();
});
afterAll(async () => temp.cleanup());

let log: CapturedLog;
async function start(authFile: string): Promise<Broker> {
  log = captureLog();
  return brokers.start({ auth: { authFile, jwt: { secretFile: keys.secretFile, issuer: 'fso-test' } }, logger: log.logger });
}

/** Raw logins sent together (every socket opened first, then every CONNECT written), each from `from`. */
async function burst(broker: Broker, count: number, login: (i: number) => { clientId: string; username: string; password: string; from: string }): Promise<RawLogin[]> {
  const attempts = Array.from({ length: count }, (_, i) => login(i));
  const connections = await Promise.all(attempts.map((a) => rawConnect(broker.port, '127.0.0.1', a.from)));
  const started = Date.now();
  const answered = connections.map(async (connection, i) => {
    const { clientId, username, password } = attempts[i] as (typeof attempts)[number];
    connection.socket.write(connectPacket(clientId, { username, password }));
    await waitFor(() => connection.isClosed() || connackCode(connection.received()) !== undefined, `an answer to ${clientId}`, 30_000, 5);
    return { code: connackCode(connection.received()), ms: Date.now() - started, connection };
  });
  const results = await Promise.all(answered);
  opened.push(...results);
  return results;
}

const codes = (logins: RawLogin[]): Record<string, number> => {
  const counts: Record<string, number> = {};
  for (const { code } of logins) counts[String(code)] = (counts[String(code)] ?? 0) + 1;
  return counts;
};

async function mqttLogin(broker: Broker, options: mqtt.IClientOptions): Promise<{ ms: number; code?: number }> {
  const started = Date.now();
  try {
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 20_000, ...options });
    await client.endAsync(true);
    return { ms: Date.now() - started };
  } catch (err) {
    return { ms: Date.now() - started, code: (err as { code?: number }).code };
  }
}

describe('login floods', () => {
  it('answers a legitimate login from the same address at once while 80 unknown usernames flood it, computing no check for them', async () => {
    const broker = await start(costlyAuthFile);
    const flood = burst(broker, 80, (i) => ({ clientId: `flood-${i}`, username: `nobody-${i}`, password: 'guess', from: '127.0.0.1' }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const legit = await rawLogin(broker.port, 'legit', costly, { localAddress: '127.0.0.1' });
    opened.push(legit);
    expect(legit.code).toBe(0);
    expect(legit.ms).toBeLessThan(1000);
    // Each answered after an imitated check: no password check waits, so no place is refused.
    expect(codes(await flood)).toEqual({ 4: 80 });
    expect(log.find('login refused').filter((r) => r.reason === 'unknown user')).toHaveLength(80);
  });

  it('lets one address have at most 8 logins in progress while checks wait, refusing the rest at once (CONNACK 3), logged once', async () => {
    const broker = await start(costlyAuthFile);
    const flood = burst(broker, 30, (i) => ({ clientId: `busy-${i}`, username: costly.username, password: `wrong-${i}`, from: '127.0.0.3' }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const other = await rawLogin(broker.port, 'other-address', costly, { localAddress: '127.0.0.4', timeoutMs: 30_000 });
    opened.push(other);
    expect(other.code).toBe(0);
    const outcome = codes(await flood);
    expect((outcome['4'] ?? 0) + (outcome['3'] ?? 0)).toBe(30);
    expect(outcome['3']).toBeGreaterThanOrEqual(10);
    const busy = log.find('login refused').filter((r) => String(r.reason).startsWith('too many logins in progress from this address'));
    expect(busy).toHaveLength(1);
    expect(busy[0]).toMatchObject({ remoteAddress: '127.0.0.3' });
  });

  it('checks at most 2 passwords at once with 32 waiting, and refuses the rest at once with CONNACK 3, logged once', async () => {
    const broker = await start(costlyAuthFile);
    // From 40 addresses, so the per-address bound plays no part.
    const started = Date.now();
    const logins = await burst(broker, 40, (i) => ({ clientId: `wrong-${i}`, username: costly.username, password: `wrong-${i}`, from: `127.0.1.${i + 1}` }));
    const outcome = codes(logins);
    expect((outcome['4'] ?? 0) + (outcome['3'] ?? 0)).toBe(40);
    expect(outcome['3']).toBeGreaterThanOrEqual(4);
    const slowestBusy = Math.max(...logins.filter((l) => l.code === 3).map((l) => l.ms));
    const slowestChecked = Math.max(...logins.filter((l) => l.code === 4).map((l) => l.ms));
    expect(slowestBusy).toBeLessThan(slowestChecked);
    const busy = log.find('login refused').filter((r) => String(r.reason).startsWith('server busy'));
    expect(busy).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('gives an unknown username about the time of a wrong password, without a check', async () => {
    const broker = await start(costlyAuthFile);
    const timed = async (username: string, n: number): Promise<number> => {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const login = await rawLogin(broker.port, `t-${username}-${n}-${i}`, { username, password: 'wrong-guess' }, { localAddress: `127.0.2.${n + i}` });
        opened.push(login);
        expect(login.code).toBe(4);
        times.push(login.ms);
      }
      return times.sort((a, b) => a - b)[1] as number;
    };
    const known = await timed(costly.username, 1);
    const unknown = await timed('nobody-at-all', 10);
    expect(unknown).toBeGreaterThan(known / 3);
    expect(unknown).toBeLessThan(known * 3 + 50);
  });
});

describe('back-off after failed logins', () => {
  it('refuses an address and username 10 failures in for a growing time that ends by itself; other addresses and usernames go on', async () => {
    const broker = await start(cheapAuthFile);
    const { username, password } = USERS.viewer;
    const attempt = async (pw: string, from: string, user = username): Promise<number | undefined> => {
      const login = await rawLogin(broker.port, `v-${opened.length}`, { username: user, password: pw }, { localAddress: from });
      opened.push(login);
      return login.code;
    };
    for (let i = 0; i < 10; i++) expect(await attempt(`wrong-${i}`, '127.0.3.1')).toBe(4);
    // Even the right password: the address and username are backing off, and nothing is checked.
    expect(await attempt(password, '127.0.3.1')).toBe(3);
    expect(await attempt(password, '127.0.3.2')).toBe(0);
    expect(await attempt(USERS.controller.password, '127.0.3.1', USERS.controller.username)).toBe(0);
    const refusal = log.find('login refused').find((r) => String(r.reason).startsWith('too many failed logins'));
    expect(refusal).toMatchObject({ username, remoteAddress: '127.0.3.1', reason: 'too many failed logins for this username from this address: retry in 1 s' });
    const blockedAt = Date.now();
    await waitFor(async () => (await attempt(password, '127.0.3.1')) === 0, 'the back-off to end', 5000, 100);
    expect(Date.now() - blockedAt).toBeGreaterThan(300);
  });
});

describe('usernames in the log', () => {
  it('keeps names that look like usernames, and redacts tokens and long or odd ones', () => {
    expect(loggableUsername('web-01')).toBe('web-01');
    expect(loggableUsername('ops@example.com')).toBe('ops@example.com');
    expect(loggableUsername(undefined)).toBeNull();
    const token = testToken({ role: 'viewer', sub: 'x' }, Buffer.alloc(32, 1));
    expect(loggableUsername(token)).toMatch(new RegExp(`^eyJh…\\(${token.length} chars, sha256 [0-9a-f]{8}\\)$`));
    expect(loggableUsername('a'.repeat(65))).toMatch(/^aaaa…\(65 chars, sha256 [0-9a-f]{8}\)$/);
    expect(loggableUsername('has space')).toMatch(/^has …\(9 chars/);
    expect(loggableUsername('x'.repeat(64))).toBe('x'.repeat(64));
  });

  it('logs a refused login with a token as its username without the token', async () => {
    const broker = await start(cheapAuthFile);
    const token = testToken({ role: 'controller', sub: 'ops' }, keys.secret);
    expect((await mqttLogin(broker, { clientId: 'swapped', username: token, password: 'ops' })).code).toBe(4);
    expect((await mqttLogin(broker, { clientId: 'plain', username: 'nobody', password: 'guess' })).code).toBe(4);
    const lines = log.find('login refused');
    expect(lines.find((r) => r.clientId === 'swapped')?.username).toMatch(/^eyJh…\(\d+ chars, sha256 [0-9a-f]{8}\)$/);
    expect(lines.find((r) => r.clientId === 'plain')?.username).toBe('nobody');
    expect(log.text()).not.toContain(token.split('.')[1]);
  });
});
