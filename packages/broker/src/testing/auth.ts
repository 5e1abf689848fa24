// Test support for this package's tests (kept out of the build by tsconfig.json).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { signJwt } from '@fso/common';
import type { FsoRole, JwtAlgorithm, JwtClaims } from '@fso/common';
import { AUTH_FILE_SCHEMA, writeAuthFile } from '../authFile.js';
import type { AuthUser } from '../authFile.js';
import { hashPassword } from '../passwords.js';
import type { ScryptParams } from '../passwords.js';

/** Cheap scrypt for tests (the format and the check are the same; only the cost differs). */
export const TEST_SCRYPT = { N: 1024, r: 8, p: 1, keyLength: 32 };

export interface TestUser {
  username: string;
  password: string;
  role: FsoRole;
  agentId?: string;
}

/** One user of each role, with passwords a log-grep test can search for. */
export const USERS = {
  agentA: { username: 'agent-a', password: 'pw-agent-a-1f3e9', role: 'agent', agentId: 'web-01' },
  agentB: { username: 'agent-b', password: 'pw-agent-b-7c2d4', role: 'agent', agentId: 'web-02' },
  controller: { username: 'ctl', password: 'pw-controller-93ab1', role: 'controller' },
  recorder: { username: 'rec', password: 'pw-recorder-55e02', role: 'recorder' },
  viewer: { username: 'view', password: 'pw-viewer-0d8c7', role: 'viewer' },
} satisfies Record<string, TestUser>;

/** Writes an auth file holding `users` (cheap hashes unless `params` says otherwise) into `dir`; returns its path. */
export async function writeTestAuthFile(
  dir: string,
  users: readonly TestUser[] = Object.values(USERS),
  name = 'auth.json',
  params: ScryptParams = TEST_SCRYPT,
): Promise<string> {
  const file = path.join(dir, name);
  const entries: AuthUser[] = [];
  for (const u of users) {
    entries.push({
      username: u.username,
      role: u.role,
      ...(u.agentId === undefined ? {} : { agentId: u.agentId }),
      password: await hashPassword(u.password, params),
    });
  }
  await writeAuthFile(file, { schema: AUTH_FILE_SCHEMA, users: entries });
  return file;
}

/** Keys for each JWT algorithm, written into `dir`. */
export interface TestJwtKeys {
  secret: Buffer;
  secretFile: string;
  es256: { privateKey: string; publicKeyFile: string; privateKeyFile: string };
  ed25519: { privateKey: string; publicKeyFile: string; privateKeyFile: string };
}

export async function writeTestJwtKeys(dir: string): Promise<TestJwtKeys> {
  const secret = Buffer.from(randomBytes(32).toString('base64'));
  const secretFile = path.join(dir, 'jwt.secret');
  await writeFile(secretFile, `${secret.toString()}\n`, { mode: 0o600 });
  const pair = async (name: string, keys: { privateKey: import('node:crypto').KeyObject; publicKey: import('node:crypto').KeyObject }) => {
    const privateKey = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const publicKeyFile = path.join(dir, `${name}.pub.pem`);
    const privateKeyFile = path.join(dir, `${name}.key.pem`);
    await writeFile(publicKeyFile, keys.publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(privateKeyFile, privateKey, { mode: 0o600 });
    return { privateKey, publicKeyFile, privateKeyFile };
  };
  return {
    secret,
    secretFile,
    es256: await pair('es256', generateKeyPairSync('ec', { namedCurve: 'prime256v1' })),
    ed25519: await pair('ed25519', generateKeyPairSync('ed25519')),
  };
}

/** A token for `claims` (iss `fso-test`, valid for an hour from now unless overridden). */
export function testToken(claims: JwtClaims, key: string | Buffer, alg: JwtAlgorithm = 'HS256'): string {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ iss: 'fso-test', iat: now, nbf: now, exp: now + 3600, ...claims }, key, alg);
}
