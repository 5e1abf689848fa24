import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../tests/helpers.js';
import { createTestBrokers } from './testing/brokers.js';
import { runCli } from './testing/cli.js';
import { createTestClients } from './testing/clients.js';

const brokers = createTestBrokers();
const clients = createTestClients();
let temp: { path: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  temp = await createTempDir('fso-broker-users-');
});
afterAll(async () => temp.cleanup());
afterEach(async () => {
  await clients.endAll();
  await brokers.closeAll();
});

const cli = runCli;

describe('fso-broker user', () => {
  it('adds a user from stdin: a 0600 file without the password, and the login works', async () => {
    const file = path.join(temp.path, 'add.json');
    const added = await cli(['user', 'add', '--auth', file, '--username', 'web-01', '--role', 'agent', '--agent-id', 'web-01'], 'Correct-Horse-17\n');
    expect(added).toMatchObject({ code: 0, stdout: `added user web-01 (agent, agent web-01) in ${file}\n` });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain('Correct-Horse-17');
    expect(JSON.parse(text)).toMatchObject({
      schema: 'fso.auth/1',
      users: [{ username: 'web-01', role: 'agent', agentId: 'web-01', password: { algorithm: 'scrypt', N: 32768, r: 8, p: 1, keyLength: 32 } }],
    });

    const broker = await brokers.start({ auth: { authFile: file } });
    // The final newline of stdin is not part of the password.
    await clients.connect(broker.url, { clientId: 'web-01', username: 'web-01', password: 'Correct-Horse-17' });
  });

  it('takes the password from FSO_PASSWORD, replaces an existing user, and salts each hash', async () => {
    const file = path.join(temp.path, 'env.json');
    expect((await cli(['user', 'add', '--auth', file, '--username', 'ops', '--role', 'controller'], '', { FSO_PASSWORD: 'same-password-1' })).code).toBe(0);
    expect((await cli(['user', 'add', '--auth', file, '--username', 'ops2', '--role', 'controller'], '', { FSO_PASSWORD: 'same-password-1' })).code).toBe(0);
    const replaced = await cli(['user', 'add', '--auth', file, '--username', 'ops', '--role', 'viewer'], '', { FSO_PASSWORD: 'same-password-1' });
    expect(replaced.stdout).toContain('updated user ops (viewer)');
    const users = (JSON.parse(await readFile(file, 'utf8')) as { users: Array<{ username: string; role: string; password: { salt: string; hash: string } }> }).users;
    expect(users.map((u) => [u.username, u.role])).toEqual([
      ['ops2', 'controller'],
      ['ops', 'viewer'],
    ]);
    expect(users[0]?.password.hash).not.toBe(users[1]?.password.hash);
  });

  it('lists users without hashes, and removes one', async () => {
    const file = path.join(temp.path, 'list.json');
    await cli(['user', 'add', '--auth', file, '--username', 'rec', '--role', 'recorder'], 'recorder-pass-9');
    await cli(['user', 'add', '--auth', file, '--username', 'web-02', '--role', 'agent', '--agent-id', 'web-02'], 'agent-pass-99');
    const stored = await readFile(file, 'utf8');
    const hashes = (JSON.parse(stored) as { users: Array<{ password: { hash: string; salt: string } }> }).users.flatMap((u) => [u.password.hash, u.password.salt]);

    const table = await cli(['user', 'list', '--auth', file]);
    expect(table.stdout).toBe('USERNAME  ROLE      AGENT\nrec       recorder  -\nweb-02    agent     web-02\n');
    const json = await cli(['user', 'list', '--auth', file, '--json']);
    expect(JSON.parse(json.stdout)).toEqual([
      { username: 'rec', role: 'recorder', agentId: null },
      { username: 'web-02', role: 'agent', agentId: 'web-02' },
    ]);
    for (const secret of hashes) expect(table.stdout + json.stdout).not.toContain(secret);
    expect(table.stdout + json.stdout).not.toMatch(/scrypt|hash|salt/);

    expect(await cli(['user', 'remove', '--auth', file, '--username', 'rec'])).toMatchObject({ code: 0, stdout: `removed user rec from ${file}\n` });
    expect((await cli(['user', 'list', '--auth', file])).stdout).not.toContain('rec ');
    expect(await cli(['user', 'remove', '--auth', file, '--username', 'rec'])).toMatchObject({ code: 2, stderr: `fso-broker: no user rec in ${file}\n` });
  });

  it('refuses bad input with exit 2 and a clear message, writing nothing', async () => {
    const file = path.join(temp.path, 'bad.json');
    const cases: Array<[string[], string, RegExp]> = [
      [['--username', 'a', '--role', 'agent'], 'long-enough-pw', /an agent needs an agent id/],
      [['--username', 'a', '--role', 'viewer', '--agent-id', 'x'], 'long-enough-pw', /only an agent has an agent id/],
      [['--username', 'a', '--role', 'agent', '--agent-id', '../x'], 'long-enough-pw', /invalid agent id/],
      [['--username', 'a', '--role', 'admin'], 'long-enough-pw', /argument 'admin' is invalid/],
      [['--username', 'has space', '--role', 'viewer'], 'long-enough-pw', /invalid username/],
      [['--username', 'a', '--role', 'viewer'], 'short\n', /at least 8 characters/],
      [['--username', 'a', '--role', 'viewer', '--password', 'x'], '', /unknown option '--password'/],
    ];
    for (const [args, stdin, message] of cases) {
      const result = await cli(['user', 'add', '--auth', file, ...args], stdin);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
    expect(await cli(['user', 'list', '--auth', file])).toMatchObject({ code: 1, stderr: expect.stringContaining('no such file') });
  });
});
