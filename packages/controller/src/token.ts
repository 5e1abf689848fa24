/**
 * `fso-controller token`: mints a login token (JWT) that `fso-broker
 * --jwt-secret-file` or `--jwt-public-key-file` accepts as an MQTT password.
 */
import { createPrivateKey, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { JwtError, createJwtKey, jwtAlgorithmOf, jwtSecretFromFile, parseFsoClaims, signJwt } from '@fso/common';
import type { FsoRole, JwtAlgorithm, JwtClaims } from '@fso/common';
import { TokenError } from './errors.js';

/** Options of {@link mintToken}: exactly one of `secretFile` or `privateKeyFile`. */
export interface MintTokenOptions {
  role: FsoRole;
  /** Required for role `agent`, refused for the others. */
  agentId?: string;
  /** Lifetime in ms. */
  ttlMs: number;
  /** The broker's `--jwt-issuer`. */
  issuer: string;
  /** HS256 secret file (the broker's `--jwt-secret-file`). */
  secretFile?: string;
  /** PEM private key: P-256 (ES256) or Ed25519 (EdDSA); the broker holds its public half. */
  privateKeyFile?: string;
  /** `sub`; default the agent id for an agent, else the role. */
  subject?: string;
  /** Issue time (ms since the epoch); default now. */
  now?: number;
}

async function readKey(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new TokenError(`cannot read ${what} ${file}: ${(err as Error).message}`, { cause: err, file });
  }
}

async function signingKey(options: MintTokenOptions): Promise<{ key: KeyObject; alg: JwtAlgorithm }> {
  if ((options.secretFile === undefined) === (options.privateKeyFile === undefined)) {
    throw new TokenError('give exactly one of --secret-file (HS256) or --private-key-file (ES256/EdDSA)');
  }
  try {
    if (options.secretFile !== undefined) {
      return { key: createJwtKey(jwtSecretFromFile(await readKey(options.secretFile, 'secret file')), 'HS256', 'sign'), alg: 'HS256' };
    }
    const file = options.privateKeyFile as string;
    const key = createPrivateKey(await readKey(file, 'private key file'));
    const alg = jwtAlgorithmOf(key);
    if (alg === undefined || alg === 'HS256') throw new TokenError(`${file} is not a P-256 or Ed25519 private key`, { file });
    return { key: createJwtKey(key, alg, 'sign'), alg };
  } catch (err) {
    if (err instanceof TokenError) throw err;
    throw new TokenError((err as Error).message, { cause: err, file: options.secretFile ?? options.privateKeyFile });
  }
}

/**
 * Mints a token with `iss`, `sub`, `role`, `agentId` (agents), `iat`,
 * `nbf`, `exp` and a random `jti`.
 *
 * @throws {TokenError} for a bad role/agent id pair, a bad lifetime or an unusable key.
 * @example
 * const token = await mintToken({ role: 'agent', agentId: 'web-01', ttlMs: 86_400_000, issuer: 'fso', privateKeyFile: 'fso-jwt.key' });
 */
export async function mintToken(options: MintTokenOptions): Promise<string> {
  if (!Number.isFinite(options.ttlMs) || options.ttlMs <= 0) throw new TokenError('the lifetime must be positive');
  if (options.issuer === '') throw new TokenError('the issuer must not be empty');
  const role = { role: options.role, ...(options.agentId === undefined ? {} : { agentId: options.agentId }) };
  try {
    parseFsoClaims(role);
  } catch (err) {
    if (err instanceof JwtError) throw new TokenError(err.message.replace(/^invalid token \(bad-claims\): /, ''), { cause: err });
    throw err;
  }
  const { key, alg } = await signingKey(options);
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  const claims: JwtClaims = {
    iss: options.issuer,
    sub: options.subject ?? options.agentId ?? options.role,
    ...role,
    iat: now,
    nbf: now,
    exp: now + Math.ceil(options.ttlMs / 1000),
    jti: randomUUID(),
  };
  return signJwt(claims, key, alg);
}
