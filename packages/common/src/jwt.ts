/**
 * Compact JWS tokens (JWT) for FSO's MQTT logins, on node:crypto only:
 * HS256 (a shared secret), ES256 (P-256) and EdDSA (Ed25519), the last two
 * so agents and brokers can hold a public key and never a signing secret.
 *
 * The verifier takes the algorithm from its caller, never from the token
 * header (RFC 8725 §3.1: `alg: none` and HS256-signed-with-the-public-key
 * confusion both fail), compares HMACs in constant time, and checks `iss`,
 * `exp`, `nbf` and `iat` with a small clock skew.
 */
import {
  KeyObject,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  sign as cryptoSign,
  verify as cryptoVerify,
  timingSafeEqual,
} from 'node:crypto';
import { z } from 'zod';
import { JwtError } from './errors.js';
import type { JwtErrorReason } from './errors.js';
import { agentIdSchema } from './schemas.js';

/** The algorithms FSO signs and verifies. */
export const JWT_ALGORITHMS = ['HS256', 'ES256', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

/** The roles an FSO login can have (see docs/security.md for what each may do). */
export const FSO_ROLES = ['agent', 'controller', 'recorder', 'viewer', 'alerter'] as const;
export type FsoRole = (typeof FSO_ROLES)[number];

/** Shortest HS256 secret accepted: the hash size, as RFC 7518 §3.2 requires. */
export const MIN_HS256_SECRET_BYTES = 32;
/** Longest token verified; anything longer is `malformed` without further work. */
export const MAX_TOKEN_BYTES = 8192;
/** Default tolerance for `exp`, `nbf` and `iat` against the local clock. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 30;

const numericDate = z.number().nonnegative();
/** Registered claims (RFC 7519 §4.1) with their types checked; other claims pass through. */
const registeredClaimsSchema = z.looseObject({
  iss: z.string().optional(),
  sub: z.string().optional(),
  aud: z.union([z.string(), z.array(z.string())]).optional(),
  exp: numericDate.optional(),
  nbf: numericDate.optional(),
  iat: numericDate.optional(),
  jti: z.string().optional(),
});

/** A token's payload: registered claims typed, any other claim as unknown. */
export type JwtClaims = z.infer<typeof registeredClaimsSchema>;

/** The FSO claims a login token carries: its role and, for an agent, its agent id. */
export const fsoTokenClaimsSchema = z
  .looseObject({ role: z.enum(FSO_ROLES), agentId: agentIdSchema.optional() })
  .refine((c) => (c.role === 'agent') === (c.agentId !== undefined), {
    message: 'agentId is required for role agent and not allowed for any other role',
    path: ['agentId'],
  });
export type FsoTokenClaims = z.infer<typeof fsoTokenClaimsSchema>;

/** A key as given: a KeyObject, a PEM (private or public), or an HS256 secret. */
export type JwtKeyInput = KeyObject | string | Buffer;

/**
 * The KeyObject `alg` needs for `use`, checked: HS256 takes a secret of at
 * least {@link MIN_HS256_SECRET_BYTES}; ES256 a P-256 key; EdDSA an Ed25519
 * key. A private key given for `verify` is reduced to its public half.
 *
 * @throws {TypeError} when the key does not fit the algorithm.
 */
export function createJwtKey(input: JwtKeyInput, alg: JwtAlgorithm, use: 'sign' | 'verify'): KeyObject {
  if (alg === 'HS256') {
    if (input instanceof KeyObject && input.type !== 'secret') throw new TypeError('HS256 needs a secret, not an asymmetric key');
    const key = input instanceof KeyObject ? input : createSecretKey(Buffer.from(input));
    if ((key.symmetricKeySize ?? 0) < MIN_HS256_SECRET_BYTES) {
      throw new TypeError(`an HS256 secret must be at least ${MIN_HS256_SECRET_BYTES} bytes`);
    }
    return key;
  }
  let key: KeyObject;
  if (input instanceof KeyObject) {
    if (input.type === 'secret') throw new TypeError(`${alg} needs an asymmetric key, not a secret`);
    key = use === 'verify' && input.type === 'private' ? createPublicKey(input) : input;
  } else {
    try {
      key = use === 'sign' ? createPrivateKey(input) : createPublicKey(input);
    } catch (err) {
      throw new TypeError(`${alg} needs a PEM ${use === 'sign' ? 'private' : 'public'} key: ${(err as Error).message}`, { cause: err });
    }
  }
  if (use === 'sign' && key.type !== 'private') throw new TypeError(`signing with ${alg} needs a private key`);
  const actual = jwtAlgorithmOf(key);
  if (actual !== alg) throw new TypeError(`the key is for ${actual ?? 'no supported algorithm'}, not ${alg}`);
  return key;
}

/**
 * The HS256 secret held in a file's `content`: its bytes, less one final
 * newline (`\n` or `\r\n`), so `openssl rand -base64 48 > secret` and an
 * editor's save give the same secret as the bytes alone.
 */
export function jwtSecretFromFile(content: Buffer): Buffer {
  let end = content.length;
  if (end > 0 && content[end - 1] === 0x0a) end -= 1;
  if (end > 0 && content[end - 1] === 0x0d && end < content.length) end -= 1;
  return content.subarray(0, end);
}

/** The algorithm an asymmetric key is for (ES256 for P-256, EdDSA for Ed25519), or undefined. */
export function jwtAlgorithmOf(key: KeyObject): JwtAlgorithm | undefined {
  if (key.type === 'secret') return 'HS256';
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  return undefined;
}

const encode = (value: unknown): string => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

function signature(alg: JwtAlgorithm, key: KeyObject, data: Buffer): Buffer {
  switch (alg) {
    case 'HS256':
      return createHmac('sha256', key).update(data).digest();
    case 'ES256':
      // JWS wants r || s (RFC 7518 §3.4), not DER.
      return cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
    case 'EdDSA':
      return cryptoSign(null, data, key);
  }
}

/**
 * Signs `claims` as a compact JWS with `alg`.
 *
 * @throws {TypeError} when the key does not fit `alg`.
 * @example
 * const token = signJwt({ iss: 'fso', sub: 'web-01', role: 'agent', agentId: 'web-01', exp: now + 86400 }, secret, 'HS256');
 */
export function signJwt(claims: JwtClaims, key: JwtKeyInput, alg: JwtAlgorithm): string {
  const keyObject = createJwtKey(key, alg, 'sign');
  const signingInput = `${encode({ alg, typ: 'JWT' })}.${encode(claims)}`;
  return `${signingInput}.${signature(alg, keyObject, Buffer.from(signingInput, 'ascii')).toString('base64url')}`;
}

/** Options of {@link verifyJwt}. */
export interface VerifyJwtOptions {
  /** The verification key: the HS256 secret, or the ES256/EdDSA public key. */
  key: JwtKeyInput;
  /** The one algorithm accepted; the token's header must name it. */
  alg: JwtAlgorithm;
  /** Required `iss`, when given. */
  issuer?: string;
  /** The current time (ms since the epoch, or a Date); default now. */
  now?: number | Date;
  /** Tolerance for `exp`/`nbf`/`iat`, in seconds; default {@link DEFAULT_CLOCK_SKEW_SECONDS}. */
  clockSkewSeconds?: number;
  /** Refuse a token without `exp` (default true: a token must expire). */
  requireExpiry?: boolean;
}

/** Strict base64url: the alphabet only, and the canonical encoding (no alternative trailing bits). */
function decodeSegment(segment: string, what: string): Buffer {
  const bytes = Buffer.from(segment, 'base64url');
  if (!/^[A-Za-z0-9_-]*$/.test(segment) || bytes.toString('base64url') !== segment) {
    throw new JwtError('malformed', `the ${what} is not base64url`);
  }
  return bytes;
}

function decodeJsonObject(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decodeSegment(segment, what).toString('utf8'));
  } catch (err) {
    if (err instanceof JwtError) throw err;
    throw new JwtError('malformed', `the ${what} is not JSON`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new JwtError('malformed', `the ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function signatureMatches(alg: JwtAlgorithm, key: KeyObject, data: Buffer, given: Buffer): boolean {
  switch (alg) {
    case 'HS256': {
      const expected = createHmac('sha256', key).update(data).digest();
      // The length of an HMAC is public; only the bytes need a constant-time compare.
      return given.length === expected.length && timingSafeEqual(given, expected);
    }
    case 'ES256':
      return given.length === 64 && cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, given);
    case 'EdDSA':
      return given.length === 64 && cryptoVerify(null, data, key, given);
  }
}

/**
 * Verifies a compact JWS and returns its claims: the header must name
 * `options.alg`, the signature must match, and `iss`, `exp`, `nbf`, `iat`
 * must hold at `options.now` (± the clock skew).
 *
 * @throws {JwtError} with `reason` malformed, bad-signature, expired,
 *   not-yet-valid, wrong-issuer or bad-claims.
 * @throws {TypeError} when the key does not fit `options.alg` (a setup error, not the token's).
 * @example
 * const claims = verifyJwt(password, { key: publicKeyPem, alg: 'EdDSA', issuer: 'fso' });
 */
export function verifyJwt(token: string, options: VerifyJwtOptions): JwtClaims {
  const key = createJwtKey(options.key, options.alg, 'verify');
  if (Buffer.byteLength(token) > MAX_TOKEN_BYTES) throw new JwtError('malformed', `longer than ${MAX_TOKEN_BYTES} bytes`);
  const parts = token.split('.');
  if (parts.length !== 3) throw new JwtError('malformed', 'a token has three dot-separated parts');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];

  const header = decodeJsonObject(headerPart, 'header');
  // RFC 8725 §3.1: the algorithm is the verifier's choice; 'none' and any other never match.
  if (header.alg !== options.alg) {
    throw new JwtError('bad-signature', `algorithm ${JSON.stringify(header.alg)} is not the accepted ${options.alg}`);
  }
  if (header.crit !== undefined) throw new JwtError('malformed', 'critical header parameters are not supported');
  const given = decodeSegment(signaturePart, 'signature');
  if (!signatureMatches(options.alg, key, Buffer.from(`${headerPart}.${payloadPart}`, 'ascii'), given)) {
    throw new JwtError('bad-signature', 'the signature does not match');
  }

  const parsed = registeredClaimsSchema.safeParse(decodeJsonObject(payloadPart, 'payload'));
  if (!parsed.success) throw new JwtError('bad-claims', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const claims = parsed.data;
  checkClaims(claims, options);
  return claims;
}

function checkClaims(claims: JwtClaims, options: VerifyJwtOptions): void {
  if (options.issuer !== undefined && claims.iss !== options.issuer) {
    throw new JwtError('wrong-issuer', `issuer ${JSON.stringify(claims.iss ?? null)} is not ${JSON.stringify(options.issuer)}`);
  }
  const nowMs = options.now === undefined ? Date.now() : Number(options.now);
  const now = nowMs / 1000;
  const skew = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  if (claims.exp === undefined && (options.requireExpiry ?? true)) throw new JwtError('bad-claims', 'the token has no exp');
  if (claims.nbf !== undefined && now + skew < claims.nbf) {
    throw new JwtError('not-yet-valid', `valid from ${new Date(claims.nbf * 1000).toISOString()}`);
  }
  if (claims.iat !== undefined && now + skew < claims.iat) {
    throw new JwtError('not-yet-valid', `issued in the future (${new Date(claims.iat * 1000).toISOString()})`);
  }
  if (claims.exp !== undefined && now - skew >= claims.exp) {
    throw new JwtError('expired', `expired at ${new Date(claims.exp * 1000).toISOString()}`);
  }
}

/**
 * The FSO role and agent id of verified claims.
 *
 * @throws {JwtError} `bad-claims` when `role` is missing or unknown, or when
 *   `agentId` is missing for an agent (or present for another role).
 */
export function parseFsoClaims(claims: JwtClaims): FsoTokenClaims {
  const parsed = fsoTokenClaimsSchema.safeParse(claims);
  if (!parsed.success) throw new JwtError('bad-claims', parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; '));
  return parsed.data;
}
