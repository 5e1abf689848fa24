import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { JwtError } from './errors.js';
import type { JwtErrorReason } from './errors.js';
import { createJwtKey, jwtAlgorithmOf, jwtSecretFromFile, parseFsoClaims, signJwt, verifyJwt } from './jwt.js';
import type { JwtAlgorithm, JwtClaims } from './jwt.js';

const secret = randomBytes(32);
const es256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const ed25519 = generateKeyPairSync('ed25519');
const NOW = Date.UTC(2026, 10, 22, 10, 0, 0);
const nowS = NOW / 1000;
const claims: JwtClaims = { iss: 'fso-test', sub: 'web-01', role: 'agent', agentId: 'web-01', iat: nowS, nbf: nowS, exp: nowS + 3600 };

/** The reason verifyJwt refuses `token` with, or a failure when it accepts it. */
function refusal(token: string, options: Partial<Parameters<typeof verifyJwt>[1]> = {}): JwtErrorReason {
  try {
    verifyJwt(token, { key: secret, alg: 'HS256', issuer: 'fso-test', now: NOW, ...options });
  } catch (err) {
    expect(err).toBeInstanceOf(JwtError);
    return (err as JwtError).reason;
  }
  throw new Error('the token was accepted');
}

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('signJwt / verifyJwt', () => {
  it.each<[JwtAlgorithm, () => { sign: Parameters<typeof signJwt>[1]; verify: Parameters<typeof signJwt>[1] }]>([
    ['HS256', () => ({ sign: secret, verify: secret })],
    ['ES256', () => ({ sign: es256.privateKey, verify: es256.publicKey.export({ type: 'spki', format: 'pem' }) })],
    ['EdDSA', () => ({ sign: ed25519.privateKey.export({ type: 'pkcs8', format: 'pem' }), verify: ed25519.publicKey })],
  ])('round-trips %s claims, verifying with the public key only', (alg, keys) => {
    const { sign, verify } = keys();
    const token = signJwt(claims, sign, alg);
    expect(JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString())).toEqual({ alg, typ: 'JWT' });
    expect(verifyJwt(token, { key: verify, alg, issuer: 'fso-test', now: NOW })).toEqual(claims);
  });

  it('refuses expired, not-yet-valid and wrong-issuer tokens, with 30 s of clock skew', () => {
    const token = signJwt(claims, secret, 'HS256');
    expect(refusal(token, { now: NOW + 3600_000 + 30_000 })).toBe('expired');
    expect(verifyJwt(token, { key: secret, alg: 'HS256', now: NOW + 3600_000 + 29_000 }).sub).toBe('web-01');
    expect(refusal(token, { now: NOW - 31_000 })).toBe('not-yet-valid');
    expect(verifyJwt(token, { key: secret, alg: 'HS256', now: NOW - 29_000 }).sub).toBe('web-01');
    expect(refusal(signJwt({ ...claims, nbf: undefined, iat: nowS + 600 }, secret, 'HS256'))).toBe('not-yet-valid');
    expect(refusal(token, { issuer: 'someone-else' })).toBe('wrong-issuer');
    expect(refusal(signJwt({ ...claims, iss: undefined }, secret, 'HS256'))).toBe('wrong-issuer');
  });

  it('refuses a token without exp unless told otherwise, and claims of the wrong type', () => {
    const eternal = signJwt({ ...claims, exp: undefined }, secret, 'HS256');
    expect(refusal(eternal)).toBe('bad-claims');
    expect(verifyJwt(eternal, { key: secret, alg: 'HS256', now: NOW, requireExpiry: false }).sub).toBe('web-01');
    const stringExp = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ ...claims, exp: 'never' })}`;
    const signed = `${stringExp}.${createHmac('sha256', secret).update(stringExp).digest('base64url')}`;
    expect(refusal(signed)).toBe('bad-claims');
  });

  it('refuses a forged signature, another secret, alg none and a changed payload', () => {
    const token = signJwt(claims, secret, 'HS256');
    const [header, payload, sig] = token.split('.') as [string, string, string];
    expect(refusal(signJwt(claims, randomBytes(32), 'HS256'))).toBe('bad-signature');
    const flipped = Buffer.from(sig, 'base64url');
    flipped[0] = (flipped[0] as number) ^ 1;
    expect(refusal(`${header}.${payload}.${flipped.toString('base64url')}`)).toBe('bad-signature');
    expect(refusal(`${header}.${b64({ ...claims, role: 'controller' })}.${sig}`)).toBe('bad-signature');
    expect(refusal(`${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`)).toBe('bad-signature');
    expect(refusal(`${b64({ alg: 'none' })}.${payload}.${sig}`)).toBe('bad-signature');
    expect(refusal(`${header}.${payload}.`)).toBe('bad-signature');
  });

  it('refuses alg confusion: an HS256 token keyed with the public key is not accepted where ES256 is configured', () => {
    const publicPem = es256.publicKey.export({ type: 'spki', format: 'pem' });
    const signingInput = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
    const forged = `${signingInput}.${createHmac('sha256', publicPem).update(signingInput).digest('base64url')}`;
    expect(refusal(forged, { key: publicPem, alg: 'ES256' })).toBe('bad-signature');
    // and an ES256 token where HS256 is configured
    expect(refusal(signJwt(claims, es256.privateKey, 'ES256'))).toBe('bad-signature');
    // and an EdDSA signature presented as ES256 with the Ed25519 key: the key itself is refused
    expect(() => verifyJwt(signJwt(claims, ed25519.privateKey, 'EdDSA'), { key: ed25519.publicKey, alg: 'ES256', now: NOW })).toThrow(TypeError);
  });

  it('says malformed for garbage, wrong part counts, bad base64url, non-JSON and oversized tokens', () => {
    const token = signJwt(claims, secret, 'HS256');
    expect(refusal('not a token')).toBe('malformed');
    expect(refusal(`${token}.extra`)).toBe('malformed');
    expect(refusal(`${token.slice(0, 5)}*${token.slice(6)}`)).toBe('malformed');
    expect(refusal(`${Buffer.from('{nope').toString('base64url')}.${b64(claims)}.x`)).toBe('malformed');
    expect(refusal(`${b64([1, 2])}.${b64(claims)}.x`)).toBe('malformed');
    expect(refusal(`${b64({ alg: 'HS256', crit: ['exp'] })}.${b64(claims)}.x`)).toBe('malformed');
    expect(refusal('a'.repeat(9000))).toBe('malformed');
  });
});

describe('keys', () => {
  it('refuses an HS256 secret shorter than 32 bytes and a key of the wrong kind', () => {
    expect(() => signJwt(claims, 'short', 'HS256')).toThrow(/at least 32 bytes/);
    expect(() => signJwt(claims, es256.publicKey, 'ES256')).toThrow(/private key/);
    expect(() => createJwtKey(secret, 'EdDSA', 'verify')).toThrow(TypeError);
    expect(() => createJwtKey(es256.privateKey, 'HS256', 'sign')).toThrow(/secret/);
  });

  it('reads a secret file less one final newline', () => {
    expect(jwtSecretFromFile(Buffer.from('abc\n')).toString()).toBe('abc');
    expect(jwtSecretFromFile(Buffer.from('abc\r\n')).toString()).toBe('abc');
    expect(jwtSecretFromFile(Buffer.from('abc\n\n')).toString()).toBe('abc\n');
    expect(jwtSecretFromFile(Buffer.from('abc\r')).toString()).toBe('abc\r');
  });

  it('names the algorithm of a key', () => {
    expect(jwtAlgorithmOf(es256.publicKey)).toBe('ES256');
    expect(jwtAlgorithmOf(ed25519.privateKey)).toBe('EdDSA');
    expect(jwtAlgorithmOf(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey)).toBeUndefined();
  });
});

describe('parseFsoClaims', () => {
  it('needs a known role, and an agent id exactly for agents', () => {
    expect(parseFsoClaims(claims)).toMatchObject({ role: 'agent', agentId: 'web-01' });
    expect(parseFsoClaims({ role: 'viewer' })).toMatchObject({ role: 'viewer' });
    for (const bad of [{}, { role: 'admin' }, { role: 'agent' }, { role: 'agent', agentId: '../etc' }, { role: 'recorder', agentId: 'web-01' }]) {
      expect(() => parseFsoClaims(bad)).toThrow(JwtError);
    }
  });
});
