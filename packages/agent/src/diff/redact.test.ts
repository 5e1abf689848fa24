import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { diffOptionsSchema, diffSchema, formatIssues } from '@fso/common';
import { findPrivateKeyLines, redactSecrets, redactSecretsAsync } from './redact.js';
import { RedactPatternError } from '../errors.js';
import { passesLuhn, secretKindOfKey } from './secretPatterns.js';
import { ALL_SECRETS, NOT_SECRETS, SECRETS, SECRET_FILES, expectedMarker, pemBody } from '../testing/secretFixtures.js';

const MARKER = /\[REDACTED:([a-z0-9_-]+):([0-9a-f]{8})\]/g;
const markersIn = (text: string): string[] => [...text.matchAll(MARKER)].map((m) => m[0]);
/** A unified diff of one hunk, as jsdiff writes it. */
const patchOf = (header: string, lines: string[]): string => `--- a/f\n+++ b/f\n${header}\n${lines.join('\n')}\n`;

describe('redactSecrets: each kind in a realistic file', () => {
  it.each(SECRET_FILES)('$name', ({ text, kinds }) => {
    const result = redactSecrets(text);
    expect(Object.fromEntries(result.redactions.map((r) => [r.kind, r.count]))).toEqual(kinds);
    for (const secret of ALL_SECRETS) expect(result.text).not.toContain(secret);
    // Only the secrets go: the line count and everything around them stay.
    expect(result.text.split('\n')).toHaveLength(text.split('\n').length);
    expect(markersIn(result.text)).toHaveLength(Object.values(kinds).reduce((a, b) => a + b, 0));
  });

  it('writes [REDACTED:<kind>:<first 8 hex of sha256(secret)>] in place of the secret only', () => {
    const [env, yaml, , pem, shell, ini] = SECRET_FILES.map((f) => redactSecrets(f.text).text);
    expect(env).toContain(`DB_PASSWORD=${expectedMarker('password', SECRETS.dbPassword)}\n`);
    expect(env).toContain(`postgres://app:${expectedMarker('url-password', SECRETS.urlPassword)}@db.internal:5432/app`);
    expect(env).toContain(`export GITHUB_TOKEN="${expectedMarker('github-token', SECRETS.githubToken)}"`);
    expect(env).toContain(`https://hooks.slack.com/services/${expectedMarker('slack-webhook', SECRETS.slackWebhook)}`);
    expect(env).toContain('LOG_LEVEL=info\n');
    expect(yaml).toContain(`  password: ${expectedMarker('password', SECRETS.yamlPassword)} # rotated yearly\n`);
    expect(yaml).toContain(`  - api_key: '${expectedMarker('api-key', SECRETS.apiKey)}'\n`);
    expect(yaml).toContain('  admin_password: ${ADMIN_PASSWORD}\n');
    expect(pem).toContain(`-----BEGIN RSA PRIVATE KEY-----\n${expectedMarker('private-key', SECRETS.pem[0]!)}\n`);
    expect(shell).toContain(`"Authorization: Bearer ${expectedMarker('bearer-token', SECRETS.bearer)}"`);
    expect(shell).toContain(`'Authorization: Basic ${expectedMarker('basic-auth', SECRETS.basicAuth)}'`);
    expect(shell).toContain('"Authorization: Bearer $TOKEN"');
    expect(ini).toContain(`visa = ${expectedMarker('card-number', SECRETS.visa)}\n`);
  });

  it('leaves lines that only look like secrets as they are', () => {
    const text = NOT_SECRETS.join('\n');
    expect(redactSecrets(text)).toEqual({ text, redactions: [] });
  });

  it('classifies keys by whole words, not substrings', () => {
    expect(['db_password', 'dbPassword', 'PASSWD', 'passphrase', '--password', 'db.pass'].map(secretKindOfKey)).toEqual(Array(6).fill('password'));
    expect(['client_secret', 'SECRET_KEY', 'credentials', 'encryption_key'].map(secretKindOfKey)).toEqual(Array(4).fill('secret'));
    expect(['x-api-key', 'apiKey', 'GOOGLE_API_KEY'].map(secretKindOfKey)).toEqual(Array(3).fill('api-key'));
    expect(secretKindOfKey('aws_secret_access_key')).toBe('aws-secret-key');
    expect(secretKindOfKey('_authToken')).toBe('token');
    for (const key of ['max_tokens', 'tokenizer', 'password_file', 'token_url', 'pwd', 'pass', 'bypass', 'private_key_id', 'monkey', 'key']) {
      expect(secretKindOfKey(key), key).toBeNull();
    }
  });

  it('finds secrets in XML elements, PHP define() and connection strings; not in a plain authorization setting', () => {
    const text = [
      '<server><id>repo</id><username>ci</username><password>xml-pa55</password></server>',
      "define( 'DB_PASSWORD', 'wp-pa55' );",
      'Server=db;Database=app;User Id=sa;Password=conn-pa55;Encrypt=true',
      'authorization: required',
    ].join('\n');
    expect(redactSecrets(text).text).toBe(
      [
        `<server><id>repo</id><username>ci</username><password>${expectedMarker('password', 'xml-pa55')}</password></server>`,
        `define( 'DB_PASSWORD', '${expectedMarker('password', 'wp-pa55')}' );`,
        `Server=db;Database=app;User Id=sa;Password=${expectedMarker('password', 'conn-pa55')};Encrypt=true`,
        'authorization: required',
      ].join('\n'),
    );
  });

  it('checks card numbers with Luhn and a known issuer prefix', () => {
    expect(passesLuhn('4111111111111111')).toBe(true);
    expect(passesLuhn('4111111111111112')).toBe(false);
    const { text } = redactSecrets('paid with 4111-1111-1111-1111, refund 4111111111111112, id 41111111111111111111111');
    expect(text).toBe(`paid with ${expectedMarker('card-number', '4111-1111-1111-1111')}, refund 4111111111111112, id 41111111111111111111111`);
  });
});

describe('redactSecrets: unified diffs', () => {
  it('gives the same secret the same marker on both sides, and a changed secret a new one', () => {
    const patch = patchOf('@@ -1,3 +1,3 @@', [
      `-DB_PASSWORD=${SECRETS.dbPassword} # old comment`,
      `+DB_PASSWORD=${SECRETS.dbPassword} # new comment`,
      '-API_TOKEN=first-token-value-1',
      '+API_TOKEN=second-token-value-2',
      ` GITHUB=${SECRETS.githubToken}`,
    ]);
    const { text, redactions } = redactSecrets(patch);
    const lines = text.split('\n');
    const same = expectedMarker('password', SECRETS.dbPassword);
    expect(lines[3]).toBe(`-DB_PASSWORD=${same} # old comment`);
    expect(lines[4]).toBe(`+DB_PASSWORD=${same} # new comment`);
    expect(lines[5]).toBe(`-API_TOKEN=${expectedMarker('token', 'first-token-value-1')}`);
    expect(lines[6]).toBe(`+API_TOKEN=${expectedMarker('token', 'second-token-value-2')}`);
    expect(lines[5]!.slice(1)).not.toBe(lines[6]!.slice(1));
    expect(lines[7]).toBe(` GITHUB=${expectedMarker('github-token', SECRETS.githubToken)}`);
    expect(redactions).toEqual([
      { kind: 'github-token', count: 1 },
      { kind: 'password', count: 2 },
      { kind: 'token', count: 2 },
    ]);
  });

  it('keeps file headers, hunk headers and "\\ No newline" lines', () => {
    const patch = '--- a/srv/token=x/app.conf\n+++ b/srv/token=x/app.conf\n@@ -1 +1 @@\n-password=a1\n\\ No newline at end of file\n+password=b2\n\\ No newline at end of file\n';
    const lines = redactSecrets(patch).text.split('\n');
    expect(lines.slice(0, 3)).toEqual(patch.split('\n').slice(0, 3));
    expect(lines[4]).toBe('\\ No newline at end of file');
    expect(lines[3]).toBe(`-password=${expectedMarker('password', 'a1')}`);
  });

  it('follows a private key block on the old and the new side (prefixed lines, context BEGIN/END)', () => {
    const [old1, old2] = pemBody('old', 2);
    const [new1, same] = pemBody('new', 2);
    const patch = patchOf('@@ -1,4 +1,4 @@', [
      ' -----BEGIN OPENSSH PRIVATE KEY-----',
      `-${old1}`,
      `-${old2}`,
      `+${new1}`,
      `+${same}`,
      ' -----END OPENSSH PRIVATE KEY-----',
      ' after=the key',
    ]);
    const { text, redactions } = redactSecrets(patch);
    for (const secret of [old1, old2, new1, same]) expect(text).not.toContain(secret);
    expect(text).toContain(`-${expectedMarker('private-key', old1!)}\n`);
    expect(text).toContain(`+${expectedMarker('private-key', new1!)}\n`);
    expect(text).toContain(' -----END OPENSSH PRIVATE KEY-----\n after=the key\n');
    expect(redactions).toEqual([{ kind: 'private-key', count: 4 }]);
  });

  it('with the source texts, redacts key lines of a hunk that starts inside the block', () => {
    const body = pemBody('mid', 20);
    const oldText = ['-----BEGIN PRIVATE KEY-----', ...body, '-----END PRIVATE KEY-----', ''].join('\n');
    const changed = [...body];
    changed[10] = pemBody('changed', 1)[0]!;
    const newText = ['-----BEGIN PRIVATE KEY-----', ...changed, '-----END PRIVATE KEY-----', ''].join('\n');
    // Lines 9-15 of both files: the key's 10th line changed, BEGIN and END are out of the hunk.
    const patch = patchOf('@@ -9,7 +9,7 @@', [...body.slice(7, 10).map((l) => ` ${l}`), `-${body[10]}`, `+${changed[10]}`, ...body.slice(11, 14).map((l) => ` ${l}`)]);
    expect(findPrivateKeyLines(oldText)).toEqual(new Set(Array.from({ length: 20 }, (_, i) => i + 2)));
    const blind = redactSecrets(patch);
    expect(blind.redactions).toEqual([]);
    const seeing = redactSecrets(patch, [], { sources: { old: oldText, new: newText } });
    for (const secret of [...body, ...changed]) expect(seeing.text).not.toContain(secret);
    expect(seeing.redactions).toEqual([{ kind: 'private-key', count: 8 }]);
  });
});

describe('redactSecrets: options', () => {
  it('uses an HMAC for the markers when given a key: same secret same marker, not the plain SHA-256', () => {
    const key = Buffer.from('agent-local-redaction-key');
    const a = redactSecrets('password=hunter2\n', [], { key }).text;
    expect(a).toBe(`password=[REDACTED:password:${createHmac('sha256', key).update('hunter2').digest('hex').slice(0, 8)}]\n`);
    expect(a).not.toBe(redactSecrets('password=hunter2\n').text);
    // The hash is of the secret alone: the same value under another key name gets the same hex.
    expect(redactSecrets('secret: hunter2', [], { key }).text.slice(-9)).toBe(a.slice(-10, -1));
  });

  it('redacts configured extra patterns: the whole match, or its `secret` group', () => {
    const patterns = diffOptionsSchema.parse({
      redact: [
        { name: 'employee-id', pattern: 'EMP-[0-9]{6}' },
        { name: 'internal-host-key', pattern: 'hostkey\\s+(?<secret>[a-f0-9]{16})', flags: 'i' },
      ],
    }).redact;
    const { text, redactions } = redactSecrets('owner EMP-123456\nHOSTKEY 0123456789abcdef in use\n', patterns);
    expect(text).toBe(`owner ${expectedMarker('employee-id', 'EMP-123456')}\nHOSTKEY ${expectedMarker('internal-host-key', '0123456789abcdef')} in use\n`);
    expect(redactions).toEqual([
      { kind: 'employee-id', count: 1 },
      { kind: 'internal-host-key', count: 1 },
    ]);
    expect(() => redactSecrets('x', [{ name: 'broken', pattern: '(' }])).toThrow(RedactPatternError);
  });

  it('config schema: refuses extra patterns that do not compile, match empty or may backtrack exponentially, and relative nodiff globs', () => {
    const issues = (diff: unknown): string[] => {
      const result = diffOptionsSchema.safeParse(diff);
      return result.success ? [] : formatIssues(result.error);
    };
    expect(issues({ redact: [{ name: 'a', pattern: '(' }] })).toEqual([expect.stringMatching(/^redact\.0\.pattern: not a valid regex/)]);
    expect(issues({ redact: [{ name: 'a', pattern: 'x*' }] })).toEqual([expect.stringMatching(/empty string/)]);
    for (const pattern of ['(a+)+$', '(?:a|ab)*c', '([a-z]{2,})+!', '(\\w)\\1']) {
      expect(issues({ redact: [{ name: 'a', pattern }] }), pattern).toEqual([expect.stringMatching(/backtrack/)]);
    }
    expect(issues({ redact: [{ name: 'Bad Name', pattern: 'x', flags: 'g' }] })).toHaveLength(2);
    expect(issues({ redact: [{ name: 'ok', pattern: '(?:ab)?c[0-9]{4,}', flags: 'i' }], nodiff: ['*.secret', '/etc/app/**', '**/keys/*'] })).toEqual([]);
    expect(issues({ nodiff: ['secrets/*.yml'] })).toEqual([expect.stringMatching(/^nodiff\.0: .*start it with \/ or \*\*\//)]);
    expect(diffOptionsSchema.parse({})).toMatchObject({ nodiff: [], redact: [] });
  });

  it('diff schema: redactions is an optional list of kinds and counts', () => {
    const diff = {
      schema: 'fso.diff/1', id: 'e-2', agentId: 'web-01', epoch: 'e', seq: 2, eventId: 'e-1', path: '/srv/a', format: 'unified',
      patch: '', added: 0, removed: 0, skipped: null, observedAt: '2026-11-22T10:00:00.120Z', emittedAt: '2026-11-22T10:00:00.131Z',
    };
    expect(diffSchema.safeParse(diff).success).toBe(true);
    expect(diffSchema.safeParse({ ...diff, redactions: [{ kind: 'password', count: 2 }] }).success).toBe(true);
    expect(diffSchema.safeParse({ ...diff, redactions: [{ kind: 'password', count: 0 }] }).success).toBe(false);
    expect(diffSchema.safeParse({ ...diff, redactions: [{ kind: 'a:b]', count: 1 }] }).success).toBe(false);
  });
});

describe('redactSecrets: bounded cost', () => {
  const MB = 1024 * 1024;
  const repeat = (unit: string): string => unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);
  // Each shape targets one rule: a quadratic scan would take minutes on a 1 MB line, a linear one milliseconds.
  const HOSTILE: Record<string, string> = {
    'a=': repeat('a='),
    'key=': repeat('key='),
    'password=': repeat('password='),
    '"password":"': repeat('"password":"'),
    'token: "\\': `token: "${repeat('\\')}`,
    'password + spaces': `password${' '.repeat(MB)}`,
    'eyJ': repeat('eyJ'),
    'eyJa.': repeat('eyJa.'),
    'BEGIN PRIVATE KEY': repeat('-----BEGIN PRIVATE KEY-----'),
    'digits': repeat('4'),
    'digits and spaces': repeat('4 '),
    'Authorization: ': repeat('Authorization: '),
    'Bearer ': repeat('Bearer '),
    'https://a:': repeat('https://a:'),
    'ghp_': repeat('ghp_'),
    'xoxb-': repeat('xoxb-'),
    'AKIA': repeat('AKIA'),
    'a-': repeat('a-'),
    'quotes': repeat('"\''),
    '<password>x': repeat('<password>x'),
    '<a></': repeat('<a></'),
    "'password', ": repeat("'password', "),
  };

  it.each(Object.keys(HOSTILE))('a 1 MB line of %s is redacted in bounded time', (name) => {
    const line = HOSTILE[name]!;
    const started = performance.now();
    const { text } = redactSecrets(patchOf('@@ -1 +1 @@', ['-x', `+${line}`]));
    const elapsed = performance.now() - started;
    expect(text.length).toBeGreaterThan(0);
    // Measured 5-500 ms on a shared 2-core machine; quadratic would be > 100 s.
    expect(elapsed).toBeLessThan(5000);
  });

  it('a configured pattern that can match empty text does not loop, and an empty match replaces nothing', () => {
    const patterns = diffOptionsSchema.parse({ redact: [{ name: 'xs', pattern: '\\b(?<secret>x{0,4})' }] }).redact;
    const { text, redactions } = redactSecrets('xxxxxx yy\n', patterns);
    expect(text).toBe(`${expectedMarker('xs', 'xxxx')}xx yy\n`);
    expect(redactions).toEqual([{ kind: 'xs', count: 1 }]);
  });
});

describe('redactSecretsAsync', () => {
  it('gives what redactSecrets gives, letting the event loop run between slices', async () => {
    const hunk = Array.from({ length: 20_000 }, (_, i) => `+password=secret${i % 50} line ${i}`).join('\n');
    const patch = `--- a/f\n+++ b/f\n@@ -0,0 +1,20000 @@\n${hunk}\n`;
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    try {
      const result = await redactSecretsAsync(patch, [], { key: Buffer.from('k'), sliceMs: 1 });
      expect(result).toEqual(redactSecrets(patch, [], { key: Buffer.from('k') }));
      expect(result.redactions).toEqual([{ kind: 'password', count: 20_000 }]);
    } finally {
      clearInterval(ticker);
    }
    expect(turns).toBeGreaterThan(0);
  });
});
