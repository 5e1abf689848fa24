/**
 * Turns a CONNECT's username and password into an {@link Identity}: a user
 * of the auth file (scrypt), or a JWT given as the password.
 */
import { readFile, stat } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { JwtError, createJwtKey, jwtAlgorithmOf, jwtSecretFromFile, parseFsoClaims, verifyJwt } from '@fso/common';
import type { JwtAlgorithm } from '@fso/common';
import type { Identity } from './acl.js';
import { authFileModeWarning, readAuthFile } from './authFile.js';
import type { AuthUser } from './authFile.js';
import type { CheckQueue } from './checkQueue.js';
import { AuthenticationError, CheckQueueFullError, KeyFileError } from './errors.js';
import { DEFAULT_SCRYPT_PARAMS, hashPassword, verifyPassword } from './passwords.js';
import type { ScryptParams } from './passwords.js';

/** JWT logins: exactly one of `secretFile` (HS256) or `publicKeyFile` (ES256 or EdDSA, PEM). */
export interface JwtAuthOptions {
  /** A file holding the HS256 secret (at least 32 bytes; one final newline is ignored). */
  secretFile?: string;
  /** A PEM public key (P-256 for ES256, Ed25519 for EdDSA): the broker can check tokens but not mint them. */
  publicKeyFile?: string;
  /** The `iss` every token must carry. */
  issuer: string;
  /** Tolerance for `exp`/`nbf`, in seconds; default 30. */
  clockSkewSeconds?: number;
}

/** Where logins are checked; with neither, the broker is open. */
export interface AuthOptions {
  /** The auth file (see authFile.ts); re-read by `reload()`. */
  authFile?: string;
  jwt?: JwtAuthOptions;
}

/** Checks logins against what was loaded. */
export interface Authenticator {
  /**
   * The identity behind `username`/`password`. A username of the auth file
   * is checked against its hash only; any other login needs a valid token as
   * its password (the username is then free: the token's claims decide).
   *
   * @throws {AuthenticationError} 5 without a password, 4 for anything wrong
   *   with it, 3 when the password checks are all busy (retry later).
   */
  authenticate(username: string | undefined, password: Buffer | undefined, clientId: string): Promise<Identity>;
  /** The auth file's user `username`, if any (to re-check connected clients after a reload). */
  user(username: string): AuthUser | undefined;
  /** The agent ids of the auth file's agents. */
  readonly agentIds: readonly string[];
  /** True when an auth file was loaded (its users are all the password logins there are). */
  readonly hasAuthFile: boolean;
  /** For the start log line: what is checked, never a secret. */
  readonly summary: Record<string, unknown>;
  /** Problems worth a warning (file modes). */
  readonly warnings: readonly string[];
}

interface JwtVerifier {
  key: KeyObject;
  alg: JwtAlgorithm;
  issuer: string;
  clockSkewSeconds?: number;
}

async function readKeyFile(purpose: string, file: string, warnings: string[]): Promise<Buffer> {
  try {
    const { mode } = await stat(file);
    if (purpose === 'jwt secret' && (mode & 0o077) !== 0) {
      warnings.push(`jwt secret file ${file} is mode ${(mode & 0o777).toString(8)}: make it 0600`);
    }
    return await readFile(file);
  } catch (err) {
    throw new KeyFileError(purpose, file, (err as Error).message, { cause: err });
  }
}

async function loadJwtVerifier(options: JwtAuthOptions, warnings: string[]): Promise<JwtVerifier> {
  if ((options.secretFile === undefined) === (options.publicKeyFile === undefined)) {
    throw new TypeError('JWT logins need exactly one of a secret file (HS256) or a public key file (ES256/EdDSA)');
  }
  if (options.issuer === '') throw new TypeError('JWT logins need an issuer');
  if (options.secretFile !== undefined) {
    const secret = jwtSecretFromFile(await readKeyFile('jwt secret', options.secretFile, warnings));
    try {
      return { key: createJwtKey(secret, 'HS256', 'verify'), alg: 'HS256', issuer: options.issuer, clockSkewSeconds: options.clockSkewSeconds };
    } catch (err) {
      throw new KeyFileError('jwt secret', options.secretFile, (err as Error).message, { cause: err });
    }
  }
  const file = options.publicKeyFile as string;
  const pem = await readKeyFile('jwt public key', file, warnings);
  if (pem.includes('PRIVATE KEY')) {
    // The point of a public key is that the broker cannot mint tokens; refuse to hold the private half.
    throw new KeyFileError('jwt public key', file, 'holds a private key: give its public half (openssl pkey -in KEY -pubout)');
  }
  try {
    const probe = createJwtKey(pem, 'EdDSA', 'verify');
    return { key: probe, alg: 'EdDSA', issuer: options.issuer, clockSkewSeconds: options.clockSkewSeconds };
  } catch {
    // Not Ed25519: the only other choice is ES256, whose error explains a wrong key best.
  }
  try {
    const key = createJwtKey(pem, 'ES256', 'verify');
    return { key, alg: jwtAlgorithmOf(key) ?? 'ES256', issuer: options.issuer, clockSkewSeconds: options.clockSkewSeconds };
  } catch (err) {
    throw new KeyFileError('jwt public key', file, `${(err as Error).message} (use a P-256 or Ed25519 public key in PEM)`, { cause: err });
  }
}

/** A JWS compact serialization: three dot-separated base64url parts (the signature may be empty). */
function looksLikeJwt(password: Buffer): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(password.toString('latin1'));
}

/** The scrypt parameters most users have: what an unknown username's imitated check should cost. */
function typicalParams(users: Iterable<AuthUser>): ScryptParams {
  const counts = new Map<string, { params: ScryptParams; count: number }>();
  for (const { password: { N, r, p, keyLength } } of users) {
    const key = `${N}/${r}/${p}/${keyLength}`;
    const entry = counts.get(key) ?? { params: { N, r, p, keyLength }, count: 0 };
    entry.count += 1;
    counts.set(key, entry);
  }
  return [...counts.values()].sort((a, b) => b.count - a.count)[0]?.params ?? DEFAULT_SCRYPT_PARAMS;
}

/** Weight of the latest check in the running estimate of how long one takes. */
const CHECK_TIME_WEIGHT = 0.2;

/**
 * Loads the auth file and JWT key; undefined when `options` asks for neither
 * (an open broker). Password checks run in `checks`.
 *
 * @throws {AuthFileError} or {@link KeyFileError} naming the file that cannot be used.
 */
export async function loadAuthenticator(options: AuthOptions, checks: CheckQueue): Promise<Authenticator | undefined> {
  if (options.authFile === undefined && options.jwt === undefined) return undefined;
  const warnings: string[] = [];
  const users = new Map<string, AuthUser>();
  if (options.authFile !== undefined) {
    for (const user of (await readAuthFile(options.authFile)).users) users.set(user.username, user);
    const modeWarning = await authFileModeWarning(options.authFile);
    if (modeWarning) warnings.push(modeWarning);
  }
  const jwt = options.jwt ? await loadJwtVerifier(options.jwt, warnings) : undefined;
  // An unknown username takes as long as a known one's check (so timing does not tell which
  // exist) without computing one: it waits as long as one takes, measured here and then on
  // every real check, so a flood of unknown usernames costs timers, not scrypt.
  let checkMs = 0;
  if (users.size > 0) {
    const startedAt = performance.now();
    await hashPassword('calibration', typicalParams(users.values()));
    checkMs = performance.now() - startedAt;
  }
  const queued = async <T>(clientId: string, task: () => Promise<T>): Promise<T> => {
    try {
      return await task();
    } catch (err) {
      if (err instanceof CheckQueueFullError) throw new AuthenticationError(3, clientId, err.message, { cause: err });
      throw err;
    }
  };
  const check = (clientId: string, password: Buffer, user: AuthUser): Promise<boolean> =>
    queued(clientId, () =>
      checks.run(async () => {
        const startedAt = performance.now();
        const ok = await verifyPassword(password, user.password);
        checkMs += (performance.now() - startedAt - checkMs) * CHECK_TIME_WEIGHT;
        return ok;
      }),
    );
  const imitateCheck = async (clientId: string): Promise<void> => {
    if (users.size > 0) await queued(clientId, () => checks.imitate(checkMs));
  };

  const fromToken = (password: Buffer, clientId: string): Identity => {
    const verifier = jwt as JwtVerifier;
    try {
      const claims = verifyJwt(password.toString('utf8'), verifier);
      const fso = parseFsoClaims(claims);
      return {
        username: claims.sub ?? `token:${fso.role}`,
        role: fso.role,
        agentId: fso.agentId,
        via: 'token',
        expiresAt: claims.exp === undefined ? undefined : claims.exp * 1000,
      };
    } catch (err) {
      if (err instanceof JwtError) throw new AuthenticationError(4, clientId, `token refused: ${err.reason}`, { cause: err });
      throw err;
    }
  };

  return {
    summary: {
      users: options.authFile === undefined ? undefined : { file: options.authFile, count: users.size },
      jwt: jwt ? { alg: jwt.alg, issuer: jwt.issuer } : undefined,
    },
    warnings,
    hasAuthFile: options.authFile !== undefined,
    agentIds: [...users.values()].flatMap((u) => (u.agentId === undefined ? [] : [u.agentId])),
    user: (username) => users.get(username),
    authenticate: async (username, password, clientId) => {
      if (password === undefined || password.length === 0) {
        throw new AuthenticationError(5, clientId, 'no password: anonymous logins are off');
      }
      const user = username === undefined ? undefined : users.get(username);
      if (user) {
        if (!(await check(clientId, password, user))) throw new AuthenticationError(4, clientId, 'wrong password');
        return { username: user.username, role: user.role, agentId: user.agentId, via: 'password' };
      }
      if (jwt && looksLikeJwt(password)) {
        try {
          return fromToken(password, clientId);
        } catch (err) {
          // As slow as the same token refused as an auth-file user's password would be.
          if (err instanceof AuthenticationError) await imitateCheck(clientId);
          throw err;
        }
      }
      await imitateCheck(clientId);
      throw new AuthenticationError(4, clientId, username === undefined || username === '' ? 'no username' : 'unknown user');
    },
  };
}
