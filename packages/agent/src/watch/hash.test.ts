import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../../tests/helpers.js';
import { hashFile, readRegularFile } from './hash.js';

const isRoot = process.getuid?.() === 0;
const MAX = 1024 * 1024;
const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ path: dir, cleanup } = await createTempDir('fso-hash-'));
});
afterEach(async () => {
  await cleanup();
});

describe('hashFile', () => {
  it('hashes known content like crypto does', async () => {
    const file = path.join(dir, 'a b\nc.conf');
    const content = 'port = 80\nhost = "ünïcödé"\n';
    await writeFile(file, content);
    expect(await hashFile(file, { maxBytes: MAX })).toEqual({
      sha256: sha256(content),
      size: Buffer.byteLength(content),
      skipped: null,
      mtimeMs: expect.any(Number),
    });
  });

  it('hashes a 0-byte file to the SHA-256 of nothing', async () => {
    const file = path.join(dir, 'empty');
    await writeFile(file, '');
    expect(await hashFile(file, { maxBytes: MAX })).toEqual({
      sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      size: 0,
      skipped: null,
      mtimeMs: expect.any(Number),
    });
  });

  it('hashes a 50 MB file in chunks without holding it in memory', async () => {
    const file = path.join(dir, 'big.bin');
    const block = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < block.length; i++) block[i] = (i * 31) % 251;
    const expected = createHash('sha256');
    for (let i = 0; i < 50; i++) expected.update(block);
    await writeFile(file, Buffer.concat(Array.from({ length: 50 }, () => block)));
    global.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    const result = await hashFile(file, { maxBytes: 64 * 1024 * 1024 });
    expect(result).toEqual({ sha256: expected.digest('hex'), size: 50 * 1024 * 1024, skipped: null, mtimeMs: expect.any(Number) });
    // One reused 1 MiB read buffer, not a 50 MB one.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(20 * 1024 * 1024);
  });

  it('does not read a file over maxBytes: too-large, with its size', async () => {
    const file = path.join(dir, 'large');
    await writeFile(file, 'x'.repeat(101));
    expect(await hashFile(file, { maxBytes: 100 })).toEqual({ sha256: null, size: 101, skipped: 'too-large' });
    expect((await hashFile(file, { maxBytes: 101 })).sha256).toBe(sha256('x'.repeat(101)));
  });

  it('never follows a symlink: not-regular, even when it points to a readable file', async () => {
    const target = path.join(dir, 'target');
    await writeFile(target, 'secret');
    const link = path.join(dir, 'link');
    await symlink(target, link);
    expect(await hashFile(link, { maxBytes: MAX })).toEqual({ sha256: null, size: null, skipped: 'not-regular' });
  });

  it('reports a FIFO as not-regular without blocking on it', async () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await hashFile(fifo, { maxBytes: MAX })).toEqual({ sha256: null, size: null, skipped: 'not-regular' });
  });

  it('reports a directory and a device as not-regular', async () => {
    expect((await hashFile(dir, { maxBytes: MAX })).skipped).toBe('not-regular');
    expect((await hashFile('/dev/null', { maxBytes: MAX })).skipped).toBe('not-regular');
  });

  it('reports a missing file, or one under a parent that became a file, as vanished', async () => {
    expect(await hashFile(path.join(dir, 'gone'), { maxBytes: MAX })).toEqual({ sha256: null, size: null, skipped: 'vanished' });
    await writeFile(path.join(dir, 'plain'), 'x');
    expect((await hashFile(path.join(dir, 'plain', 'child'), { maxBytes: MAX })).skipped).toBe('vanished');
  });

  it('reports a path through a symlink loop as unreadable (ELOOP)', async () => {
    await symlink(path.join(dir, 'loop'), path.join(dir, 'loop'));
    expect((await hashFile(path.join(dir, 'loop', 'file'), { maxBytes: MAX })).skipped).toBe('unreadable');
  });

  it.skipIf(isRoot)('reports a chmod 000 file as unreadable (EACCES; skipped as root, where chmod 000 does not stop reads)', async () => {
    const file = path.join(dir, 'locked');
    await writeFile(file, 'x');
    await chmod(file, 0o000);
    expect(await hashFile(file, { maxBytes: MAX })).toEqual({ sha256: null, size: null, skipped: 'unreadable' });
  });

  it.skipIf(isRoot)('reports a file in a chmod 000 directory as unreadable (EACCES; skipped as root)', async () => {
    const locked = path.join(dir, 'locked-dir');
    await mkdir(locked);
    await writeFile(path.join(locked, 'f'), 'x');
    await chmod(locked, 0o000);
    try {
      expect((await hashFile(path.join(locked, 'f'), { maxBytes: MAX })).skipped).toBe('unreadable');
    } finally {
      await chmod(locked, 0o700);
    }
  });

  it('rethrows an unexpected error instead of hiding it', async () => {
    // A NUL byte in a path is ERR_INVALID_ARG_VALUE: a caller bug, not a file state.
    await expect(hashFile(path.join(dir, 'bad\0name'), { maxBytes: MAX })).rejects.toThrow(/null bytes|\\0/);
  });
});

describe('readRegularFile', () => {
  it('returns the content up to maxBytes, and too-large beyond', async () => {
    const file = path.join(dir, 'f');
    await writeFile(file, 'hello\n');
    expect(await readRegularFile(file, 6)).toEqual({ content: Buffer.from('hello\n'), skipped: null });
    expect(await readRegularFile(file, 5)).toEqual({ content: null, skipped: 'too-large' });
  });

  it('reads a file larger than one chunk whole', async () => {
    const file = path.join(dir, 'f');
    const content = Buffer.alloc(3 * 1024 * 1024 + 7, 'ab');
    await writeFile(file, content);
    const read = await readRegularFile(file, content.length);
    expect(read.content?.equals(content)).toBe(true);
  });

  it('skips symlinks and missing files like hashFile', async () => {
    await symlink('/etc/hostname', path.join(dir, 'link'));
    expect((await readRegularFile(path.join(dir, 'link'), MAX)).skipped).toBe('not-regular');
    expect((await readRegularFile(path.join(dir, 'none'), MAX)).skipped).toBe('vanished');
  });
});
