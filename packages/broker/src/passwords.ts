/** scrypt password hashes: what the auth file keeps instead of a password. */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** scrypt cost parameters (RFC 7914) and the derived key length in bytes. */
export interface ScryptParams {
  N: number;
  r: number;
  p: number;
  keyLength: number;
}

/**
 * N = 2^15, r = 8, p = 1: 32 MiB and about 0.1 s per hash on a small server,
 * so a login costs little but a stolen auth file is expensive to guess at.
 * (OWASP's list goes to 2^17; that is 128 MiB per concurrent login, which a
 * burst of logins on a broker should not be able to claim.)
 */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = { N: 2 ** 15, r: 8, p: 1, keyLength: 32 };

/** A stored hash, as the auth file keeps it (salt and hash in base64). */
export interface PasswordHash extends ScryptParams {
  algorithm: 'scrypt';
  salt: string;
  hash: string;
}

const isInt = (value: unknown, min: number, max: number): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;

const isBase64 = (value: unknown, minBytes: number, maxBytes: number): value is string =>
  typeof value === 'string' &&
  /^[A-Za-z0-9+/]+={0,2}$/.test(value) &&
  Buffer.from(value, 'base64').length >= minBytes &&
  Buffer.from(value, 'base64').length <= maxBytes;

/**
 * Checks a stored hash read from a file; returns what is wrong, or null.
 * The bounds refuse parameters that would make a single login take
 * gigabytes or minutes, should the file be edited by hand.
 */
export function checkPasswordHash(value: unknown): string | null {
  if (typeof value !== 'object' || value === null) return 'must be an object';
  const v = value as Record<string, unknown>;
  const extra = Object.keys(v).filter((k) => !['algorithm', 'N', 'r', 'p', 'keyLength', 'salt', 'hash'].includes(k));
  if (extra.length > 0) return `unknown key ${extra.join(', ')}`;
  if (v.algorithm !== 'scrypt') return 'algorithm must be "scrypt"';
  if (!isInt(v.N, 2 ** 10, 2 ** 20) || (v.N & (v.N - 1)) !== 0) return 'N must be a power of two from 2^10 to 2^20';
  if (!isInt(v.r, 1, 32)) return 'r must be an integer from 1 to 32';
  if (!isInt(v.p, 1, 16)) return 'p must be an integer from 1 to 16';
  if (!isInt(v.keyLength, 16, 64)) return 'keyLength must be an integer from 16 to 64';
  if (!isBase64(v.salt, 16, 64)) return 'salt must be 16 to 64 bytes in base64';
  if (!isBase64(v.hash, v.keyLength, v.keyLength)) return 'hash must be keyLength bytes in base64';
  return null;
}

function derive(password: Buffer, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  // scrypt needs about 128 * N * r bytes; Node's default cap (32 MiB) is just under that for N = 2^15.
  const maxmem = 128 * params.N * params.r + 128 * params.r * params.p + 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, params.keyLength, { N: params.N, r: params.r, p: params.p, maxmem }, (err, key) => {
      if (err) reject(err);
      else resolve(key);
    });
  });
}

/**
 * Hashes `password` with a fresh 16-byte salt (in libuv's thread pool, so
 * the event loop keeps serving).
 *
 * @example
 * const stored = await hashPassword('correct horse battery staple');
 */
export async function hashPassword(password: string | Buffer, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<PasswordHash> {
  const salt = randomBytes(16);
  const hash = await derive(Buffer.from(password), salt, params);
  return { algorithm: 'scrypt', ...params, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

/** True when `password` matches `stored`; compares in constant time. */
export async function verifyPassword(password: string | Buffer, stored: PasswordHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const actual = await derive(Buffer.from(password), Buffer.from(stored.salt, 'base64'), {
    N: stored.N,
    r: stored.r,
    p: stored.p,
    keyLength: expected.length,
  });
  return timingSafeEqual(actual, expected);
}
