import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBroker } from '@fso/broker';
import { verifyJwt } from '@fso/common';
import { createTempDir } from '../../../tests/helpers.js';
import { main } from './cli.js';
import { mintToken } from './token.js';

let temp: { path: string; cleanup: () => Promise<void> };
let secretFile: string;
let secret: Buffer;
let edKey: string;
let edPub: string;
let rsaKey: string;

beforeAll(async () => {
  temp = await createTempDir('fso-token-');
  secret = Buffer.from(randomBytes(32).toString('hex'));
  secretFile = path.join(temp.path, 'secret');
  await writeFile(secretFile, `${secret.toString()}\n`, { mode: 0o600 });
  const ed = generateKeyPairSync('ed25519');
  edKey = path.join(temp.path, 'ed.key');
  edPub = path.join(temp.path, 'ed.pub');
  await writeFile(edKey, ed.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await writeFile(edPub, ed.publicKey.export({ type: 'spki', format: 'pem' }));
  rsaKey = path.join(temp.path, 'rsa.key');
  await writeFile(rsaKey, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
});
afterAll(async () => temp.cleanup());

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]): Writable => new Writable({ write: (c: Buffer, _e, cb) => (into.push(c.toString()), cb()) });
  const code = await main(argv, { stdout: sink(out), stderr: sink(err) });
  return { code, stdout: out.join(''), stderr: err.join('') };
}

describe('mintToken', () => {
  it('mints an HS256 token with role, agent id, issuer and lifetime', async () => {
    const now = Date.UTC(2026, 10, 22);
    const token = await mintToken({ role: 'agent', agentId: 'web-01', ttlMs: 3_600_000, issuer: 'fso', secretFile, now });
    const claims = verifyJwt(token, { key: secret, alg: 'HS256', issuer: 'fso', now: now + 1000 });
    expect(claims).toMatchObject({ iss: 'fso', sub: 'web-01', role: 'agent', agentId: 'web-01', iat: now / 1000, nbf: now / 1000, exp: now / 1000 + 3600 });
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('refuses an agent without an agent id, a non-agent with one, and an RSA key', async () => {
    await expect(mintToken({ role: 'agent', ttlMs: 1000, issuer: 'fso', secretFile })).rejects.toThrow(/agentId is required/);
    await expect(mintToken({ role: 'viewer', agentId: 'x', ttlMs: 1000, issuer: 'fso', secretFile })).rejects.toThrow(/not allowed/);
    await expect(mintToken({ role: 'viewer', ttlMs: 1000, issuer: 'fso', privateKeyFile: rsaKey })).rejects.toThrow(/not a P-256 or Ed25519/);
  });
});

describe('fso-controller token', () => {
  it('prints an EdDSA token that a broker holding only the public key accepts', async () => {
    const result = await cli(['token', '--role', 'recorder', '--ttl', '10m', '--private-key-file', edKey, '--issuer', 'fso-test']);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const token = result.stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    const broker = await startBroker({ port: 0, auth: { jwt: { publicKeyFile: edPub, issuer: 'fso-test' } } });
    try {
      const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'rec', username: 'recorder', password: token });
      const [grant] = await client.subscribeAsync('fso/#', { qos: 1 });
      expect(grant?.qos).toBe(1);
      await client.endAsync();
    } finally {
      await broker.close();
    }
  });

  it('exits 2 with a clear message for a missing key file, no key, or both keys', async () => {
    const missing = await cli(['token', '--role', 'viewer', '--secret-file', path.join(temp.path, 'nope'), '--issuer', 'fso']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read secret file .*nope/);
    expect((await cli(['token', '--role', 'viewer', '--issuer', 'fso'])).stderr).toMatch(/exactly one of --secret-file/);
    expect((await cli(['token', '--role', 'viewer', '--issuer', 'fso', '--secret-file', secretFile, '--private-key-file', edKey])).code).toBe(2);
    expect((await cli(['token', '--role', 'admin', '--issuer', 'fso', '--secret-file', secretFile])).code).toBe(2);
  });
});
