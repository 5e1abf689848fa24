import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUserNames } from './users.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'fso-users-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('user names: the passwd file, then NSS', () => {
  it('names from the file; an id the file lacks is asked of NSS (the real getent), once; an id nobody knows is null', async () => {
    // A passwd file without root: root is known only to NSS here (its files source reads the host's /etc/passwd).
    const file = path.join(dir, 'passwd');
    await writeFile(file, 'alice:x:1000:1000::/home/alice:/bin/sh\n');
    // A getent that counts its calls, then runs the real one.
    const calls = path.join(dir, 'calls');
    const getent = path.join(dir, 'getent');
    await writeFile(getent, `#!/bin/sh\necho "$@" >> ${calls}\nexec /usr/bin/getent "$@"\n`);
    await chmod(getent, 0o755);
    const users = createUserNames({ file, getent });
    expect(users.name(1000)).toBe('alice');
    expect(users.name(0)).toBe('root');
    expect(users.name(0)).toBe('root');
    expect(users.name(4_000_000_001)).toBeNull();
    expect(users.name(4_000_000_001)).toBeNull();
    expect(users.name(null)).toBeNull();
    // alice from the file, never asked; root and the unknown id asked once each.
    expect((await readFile(calls, 'utf8')).trim().split('\n')).toEqual(['passwd 0', 'passwd 4000000001']);
  });

  it('without NSS (getent null, or missing): the file only', () => {
    expect(createUserNames({ file: '/nonexistent', getent: null }).name(0)).toBeNull();
    expect(createUserNames({ file: '/nonexistent', getent: '/nonexistent/getent' }).name(0)).toBeNull();
  });
});
