import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../tests/helpers.js';
import { writeFileAtomic } from './atomicFile.js';

describe('writeFileAtomic (real files)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  beforeEach(async () => {
    tmp = await createTempDir();
  });
  afterEach(async () => {
    await tmp.cleanup();
  });

  it('replaces the file by a rename (a new inode, mode 0600) and leaves no temp file', async () => {
    const file = path.join(tmp.path, 'config.json');
    await writeFile(file, 'old\n', { mode: 0o644 });
    const before = await stat(file);
    await writeFileAtomic(file, 'new\n');
    const after = await stat(file);
    expect(await readFile(file, 'utf8')).toBe('new\n');
    // A new inode: the old content was never overwritten in place, so a reader saw old or new.
    expect(after.ino).not.toBe(before.ino);
    expect(after.mode & 0o777).toBe(0o600);
    await writeFileAtomic(file, Buffer.from([0, 1, 2]));
    expect(await readFile(file)).toEqual(Buffer.from([0, 1, 2]));
    expect(await readdir(tmp.path)).toEqual(['config.json']);
  });

  it('removes its temp file and throws when the rename fails (the target is a non-empty directory)', async () => {
    const target = path.join(tmp.path, 'taken');
    await mkdir(target);
    await writeFile(path.join(target, 'inside'), 'x');
    await expect(writeFileAtomic(target, 'data')).rejects.toMatchObject({ code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/) });
    expect(await readdir(tmp.path)).toEqual(['taken']);
    expect(await readdir(target)).toEqual(['inside']);
  });

  it('throws and leaves nothing when the temp file cannot be created (no such directory)', async () => {
    await expect(writeFileAtomic(path.join(tmp.path, 'missing', 'file'), 'data')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(tmp.path)).toEqual([]);
  });
});
