import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../../tests/helpers.js';
import { TargetConfigError } from '../errors.js';
import { captureLog } from '../testing/capturedLog.js';
import { createNotifier, readSecret, targetSchema } from './targets.js';
import type { TargetContext } from './targets.js';
import { rejection } from '../testing/alert.js';

let tmp: { path: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  tmp = await createTempDir('fso-targets-');
});
afterEach(async () => {
  await tmp.cleanup();
});

const context = (env: NodeJS.ProcessEnv = {}): TargetContext => ({ baseDir: tmp.path, env, log: captureLog().log });

const EMAIL = { type: 'email', host: 'smtp.example.com', from: 'fso@example.com', to: ['oncall@example.com'] };

describe('targets: secrets', () => {
  it('reads a secret from a file relative to the rules file (one trailing line break dropped), or absolute, or from the environment', async () => {
    await writeFile(path.join(tmp.path, 'unix.key'), 'k3y-from-file\n');
    await writeFile(path.join(tmp.path, 'dos.key'), 'k3y-from-dos\r\n');
    await writeFile(path.join(tmp.path, 'bare.key'), ' spaces kept ');
    const read = (spec: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => readSecret('ops', spec, 'secretFile', 'secretEnv', context(env));
    await expect(read({ secretFile: 'unix.key' })).resolves.toBe('k3y-from-file');
    await expect(read({ secretFile: 'dos.key' })).resolves.toBe('k3y-from-dos');
    await expect(read({ secretFile: 'bare.key' })).resolves.toBe(' spaces kept ');
    await expect(read({ secretFile: path.join(tmp.path, 'unix.key') })).resolves.toBe('k3y-from-file');
    await expect(read({ secretEnv: 'FSO_KEY' }, { FSO_KEY: 'k3y-from-env' })).resolves.toBe('k3y-from-env');
    await expect(read({})).resolves.toBeUndefined();
  });

  it('a missing or empty secret file, an unset variable, or both sources given: TargetConfigError naming the target and field', async () => {
    await writeFile(path.join(tmp.path, 'empty.key'), '\n');
    const cases: Array<[Record<string, unknown>, NodeJS.ProcessEnv, string, RegExp]> = [
      [{ type: 'webhook', url: 'https://hooks.example/', secretFile: 'missing.key' }, {}, 'secretFile', /^target ops: secretFile: cannot read .*missing\.key: ENOENT$/],
      [{ type: 'webhook', url: 'https://hooks.example/', secretFile: 'empty.key' }, {}, 'secretFile', /empty\.key is empty/],
      [{ type: 'webhook', url: 'https://hooks.example/', secretEnv: 'FSO_UNSET' }, {}, 'secretEnv', /environment variable FSO_UNSET is unset or empty/],
      [{ type: 'webhook', url: 'https://hooks.example/', secretEnv: 'FSO_EMPTY' }, { FSO_EMPTY: '' }, 'secretEnv', /FSO_EMPTY is unset or empty/],
      [{ type: 'webhook', url: 'https://hooks.example/', secretFile: 'empty.key', secretEnv: 'FSO_KEY' }, { FSO_KEY: 'x' }, 'secretFile', /give secretFile or secretEnv, not both/],
      [{ ...EMAIL, username: 'fso', passwordFile: 'missing.password' }, {}, 'passwordFile', /^target ops: passwordFile: cannot read .*missing\.password: ENOENT$/],
      [{ ...EMAIL, username: 'fso', passwordEnv: 'FSO_UNSET' }, {}, 'passwordEnv', /FSO_UNSET is unset or empty/],
      [{ ...EMAIL, usernameEnv: 'FSO_USER', passwordEnv: 'FSO_PASS' }, { FSO_PASS: 'p' }, 'usernameEnv', /FSO_USER is unset or empty/],
      [{ ...EMAIL, username: 'fso' }, {}, 'passwordFile', /a login needs both a username and a password/],
      [{ ...EMAIL, passwordEnv: 'FSO_PASS' }, { FSO_PASS: 'p' }, 'username', /a login needs both a username and a password/],
      [{ type: 'syslog', transport: 'tls', host: 'siem.example', caFile: 'missing-ca.pem' }, {}, 'caFile', /missing-ca\.pem: ENOENT/],
    ];
    for (const [raw, env, field, message] of cases) {
      const err = await rejection(createNotifier('ops', targetSchema.parse(raw), context(env)));
      expect(err, JSON.stringify(raw)).toBeInstanceOf(TargetConfigError);
      expect(err, JSON.stringify(raw)).toMatchObject({ name: 'TargetConfigError', target: 'ops', field, message: expect.stringMatching(message) });
    }
  });

  it('builds a notifier of each type from valid secrets, and closes it', async () => {
    await writeFile(path.join(tmp.path, 'smtp.password'), 'pw\n');
    const env = { FSO_USER: 'fso', FSO_KEY: 'k' };
    for (const raw of [
      { type: 'webhook', url: 'https://hooks.example/', secretEnv: 'FSO_KEY' },
      { type: 'syslog', host: '127.0.0.1' },
      { ...EMAIL, usernameEnv: 'FSO_USER', passwordFile: 'smtp.password' },
      { ...EMAIL },
    ]) {
      const notifier = await createNotifier('ops', targetSchema.parse(raw), context(env));
      expect(notifier).toMatchObject({ name: 'ops', type: raw.type });
      const closing = notifier.close();
      expect(notifier.close()).toBe(closing);
      await closing;
    }
  });
});

describe('targets: the schema', () => {
  it('refuses a plain secret, naming the field to use instead, without echoing the value', () => {
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ ...EMAIL, username: 'fso', password: 'hunter2-plain' }, 'password', 'use passwordFile or passwordEnv'],
      [{ type: 'webhook', url: 'https://hooks.example/', secret: 'hunter2-plain' }, 'secret', 'use secretFile or secretEnv'],
      [{ type: 'webhook', url: 'https://hooks.example/', token: 'hunter2-plain' }, 'token', 'use secretFile or secretEnv'],
      // Refused whatever the type: the key is the problem, wherever it is written.
      [{ type: 'syslog', host: 'siem.example', password: 'hunter2-plain' }, 'password', 'use passwordFile or passwordEnv'],
    ];
    for (const [raw, key, instead] of cases) {
      const result = targetSchema.safeParse(raw);
      expect(result.success, key).toBe(false);
      expect(result.error?.issues).toEqual([expect.objectContaining({ path: [key], message: `a secret never sits in the rules file: ${instead}` })]);
      expect(JSON.stringify(result.error?.issues)).not.toContain('hunter2-plain');
    }
  });

  it('fills the defaults and refuses what a target cannot use', () => {
    expect(targetSchema.parse({ type: 'webhook', url: 'https://hooks.example/' })).toEqual({ type: 'webhook', url: 'https://hooks.example/', headers: {}, timeout: 5000 });
    expect(targetSchema.parse({ type: 'syslog', host: 'siem.example' })).toEqual({
      type: 'syslog', transport: 'udp', host: 'siem.example', format: 'rfc5424', facility: 'local0', appName: 'fso-alert', timeout: 5000,
    });
    expect(targetSchema.parse({ ...EMAIL, timeout: '30s' })).toMatchObject({ security: 'starttls', timeout: 30_000, subjectPrefix: '[FSO]' });
    for (const bad of [
      { type: 'pager', url: 'https://x/' },
      { type: 'webhook', url: 'https://hooks.example/', timeout: '0s' },
      { type: 'webhook', url: 'https://hooks.example/', timeout: 'soon' },
      { type: 'webhook', url: 'https://hooks.example/', secretEnv: 'not a name' },
      { type: 'webhook', url: 'https://hooks.example/', unknown: true },
      { type: 'syslog', host: 'siem.example', appName: 'has space' },
      { type: 'syslog', host: 'siem.example', facility: 'local9' },
      { ...EMAIL, to: [] },
      { ...EMAIL, security: 'ssl' },
    ]) {
      expect(targetSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});
