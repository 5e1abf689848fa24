import { createHash } from 'node:crypto';

/**
 * Fake secrets, shaped like real ones, and realistic files holding them, for
 * the redaction tests. Built from a seeded hash at run time so no
 * token-shaped literal sits in the source for a scanner to flag.
 */

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const UPPER_ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const BASE64 = `${ALNUM}+/`;
const BASE64URL = `${ALNUM}-_`;

/** `length` characters of `alphabet`, the same for the same seed. */
export function fakeToken(seed: string, length: number, alphabet = ALNUM): string {
  let out = '';
  for (let round = 0; out.length < length; round++) {
    for (const byte of createHash('sha256').update(`${seed}/${round}`).digest()) {
      if (out.length < length) out += alphabet[byte % alphabet.length];
    }
  }
  return out;
}

const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** The marker `redactSecrets` writes for `secret` without a key. */
export function expectedMarker(kind: string, secret: string): string {
  return `[REDACTED:${kind}:${createHash('sha256').update(secret).digest('hex').slice(0, 8)}]`;
}

/** A PEM private key body: `lines` lines of 64 base64 characters. */
export function pemBody(seed: string, lines = 8): string[] {
  return Array.from({ length: lines }, (_, i) => fakeToken(`${seed}-${i}`, 64, BASE64));
}

export const SECRETS = {
  dbPassword: 'Tr0ub4dor-3-staple',
  yamlPassword: 'correct horse battery',
  iniPassword: 'ini-pa55-w0rd',
  clientSecret: fakeToken('client-secret', 32),
  apiKey: fakeToken('api-key', 32, '0123456789abcdef'),
  awsKeyId: `AKIA${fakeToken('aws-id', 16, UPPER_ALNUM)}`,
  awsSecret: fakeToken('aws-secret', 40, BASE64),
  githubToken: `ghp_${fakeToken('gh', 36)}`,
  githubPat: `github_pat_${fakeToken('pat-a', 22)}_${fakeToken('pat-b', 59)}`,
  slackToken: `xoxb-${fakeToken('slack-a', 12, '0123456789')}-${fakeToken('slack-b', 13, '0123456789')}-${fakeToken('slack-c', 24)}`,
  slackWebhook: `T${fakeToken('wh-a', 8, UPPER_ALNUM)}/B${fakeToken('wh-b', 8, UPPER_ALNUM)}/${fakeToken('wh-c', 24)}`,
  gcpApiKey: `AIza${fakeToken('gcp-key', 35, BASE64URL)}`,
  jwt: `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: 'deploy', iat: 1_732_273_200 })}.${fakeToken('jwt-sig', 43, BASE64URL)}`,
  bearer: fakeToken('bearer', 40, BASE64URL),
  basicAuth: Buffer.from('admin:basic-pa55').toString('base64'),
  urlPassword: `pg-${fakeToken('url-pw', 12)}`,
  cliPassword: `cli-${fakeToken('cli-pw', 10)}`,
  envToken: fakeToken('env-token', 30),
  visa: '4111 1111 1111 1111',
  mastercard: '5500-0000-0000-0004',
  amex: '378282246310005',
  pem: pemBody('rsa'),
  gcpKeyBody: fakeToken('gcp-pem', 64, BASE64),
} as const;

/** Every secret string above, PEM lines included, for "never appears" checks. */
export const ALL_SECRETS: readonly string[] = Object.values(SECRETS).flatMap((v) => (typeof v === 'string' ? [v] : [...v]));

/** A realistic file, and how many secrets of each kind it holds. */
export interface SecretFile {
  name: string;
  text: string;
  kinds: Record<string, number>;
}

export const SECRET_FILES: readonly SecretFile[] = [
  {
    name: 'app.env (dotenv)',
    text: [
      '# database',
      `DB_PASSWORD=${SECRETS.dbPassword}`,
      `DATABASE_URL=postgres://app:${SECRETS.urlPassword}@db.internal:5432/app`,
      `AWS_ACCESS_KEY_ID=${SECRETS.awsKeyId}`,
      `AWS_SECRET_ACCESS_KEY=${SECRETS.awsSecret}`,
      `export GITHUB_TOKEN="${SECRETS.githubToken}"`,
      `SLACK_BOT_TOKEN=${SECRETS.slackToken}`,
      `SLACK_WEBHOOK_URL=https://hooks.slack.com/services/${SECRETS.slackWebhook}`,
      'LOG_LEVEL=info',
      '',
    ].join('\n'),
    kinds: { password: 1, 'url-password': 1, 'aws-access-key-id': 1, 'aws-secret-key': 1, 'github-token': 1, 'slack-token': 1, 'slack-webhook': 1 },
  },
  {
    name: 'config.yml (YAML)',
    text: [
      'database:',
      '  host: db.internal',
      `  password: ${SECRETS.yamlPassword} # rotated yearly`,
      'oauth:',
      `  client_secret: "${SECRETS.clientSecret}"`,
      `  token_url: https://auth.example.com/token`,
      'services:',
      `  - api_key: '${SECRETS.apiKey}'`,
      '    max_tokens: 4096',
      'ci:',
      `  token: ${SECRETS.githubPat}`,
      '  password_min_length: 12',
      '  admin_password: ${ADMIN_PASSWORD}',
      '',
    ].join('\n'),
    kinds: { password: 1, secret: 1, 'api-key': 1, 'github-token': 1 },
  },
  {
    name: 'service-account.json (GCP, JSON)',
    text: JSON.stringify(
      {
        type: 'service_account',
        project_id: 'fso-demo',
        private_key_id: '3f786850e387550fdab836ed7e6dc881de23001b',
        private_key: `-----BEGIN PRIVATE KEY-----\n${SECRETS.gcpKeyBody}\n-----END PRIVATE KEY-----\n`,
        client_email: 'fso@fso-demo.iam.gserviceaccount.com',
        client_id: '123456789012345678901',
        api_key: SECRETS.gcpApiKey,
        db: { user: 'bob', password: SECRETS.dbPassword },
      },
      null,
      2,
    ).concat('\n'),
    kinds: { 'private-key': 1, 'gcp-api-key': 1, password: 1 },
  },
  {
    name: 'deploy_key.txt (PEM)',
    text: ['Deploy key for the build host:', '-----BEGIN RSA PRIVATE KEY-----', ...SECRETS.pem, '-----END RSA PRIVATE KEY-----', ''].join('\n'),
    kinds: { 'private-key': SECRETS.pem.length },
  },
  {
    name: 'deploy.sh (shell script)',
    text: [
      '#!/bin/sh',
      'set -eu',
      `curl -fsS -H "Authorization: Bearer ${SECRETS.bearer}" https://api.example.com/deploy`,
      `curl -fsS -H 'Authorization: Basic ${SECRETS.basicAuth}' https://legacy.example.com/`,
      `curl -fsS -H "Authorization: Bearer ${SECRETS.jwt}" https://api.example.com/jwt`,
      `curl -fsS -H "Authorization: Bearer $TOKEN" https://api.example.com/from-env`,
      `mysql --user=root --password=${SECRETS.cliPassword} app < dump.sql`,
      `export API_TOKEN=${SECRETS.envToken}`,
      '',
    ].join('\n'),
    kinds: { 'bearer-token': 1, 'basic-auth': 1, jwt: 1, password: 1, token: 1 },
  },
  {
    name: 'billing.ini (INI, card numbers)',
    text: [
      '[db]',
      `password = ${SECRETS.iniPassword}`,
      '[test-cards]',
      `visa = ${SECRETS.visa}`,
      `mastercard = ${SECRETS.mastercard}`,
      `amex = ${SECRETS.amex}`,
      '',
    ].join('\n'),
    kinds: { password: 1, 'card-number': 3 },
  },
];

/** Lines that look a little like secrets and are not: redaction must leave them as they are. */
export const NOT_SECRETS: readonly string[] = [
  'Please change your password regularly; the token service rotates secrets nightly.',
  'The Bearer authentication scheme is described in RFC 6750.',
  'commit 3f786850e387550fdab836ed7e6dc881de23001b (HEAD -> main)',
  'request_id: 123e4567-e89b-12d3-a456-426614174000',
  'order 4111 1111 1111 1112 failed the checksum', // 16 digits, Luhn fails
  'created_at_ms = 1732273200123', // 13 digits, a timestamp
  'invoice 1234567890123452 paid', // passes Luhn, but no card issuer starts with 1
  'max_tokens: 4096',
  'password_min_length: 12',
  'token_url: https://auth.example.com/oauth/token',
  'PWD=/home/deploy',
  'const names = tokens.map(token => token.trim());',
  'password: ${DB_PASSWORD}',
  'aws_access_key_id_file: /run/secrets/aws',
  'sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
];
