import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir } from '../../../../tests/helpers.js';
import { createContentStore } from './contentStore.js';
import { ContentStoreClosedError, ContentStoreError } from '../errors.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ path: dir, cleanup } = await createTempDir('fso-store-'));
});
afterEach(async () => {
  await cleanup();
});

const keyOf = (p: string): string => createHash('sha256').update(p).digest('hex');

describe('createContentStore', () => {
  it('puts, gets, has and deletes content by path', async () => {
    const store = await createContentStore(path.join(dir, 'content'));
    expect(await store.get('/srv/a.conf')).toBeNull();
    expect(await store.has('/srv/a.conf')).toBe(false);
    await store.put('/srv/a.conf', Buffer.from('one\n'));
    expect((await store.get('/srv/a.conf'))?.toString()).toBe('one\n');
    expect(await store.has('/srv/a.conf')).toBe(true);
    await store.put('/srv/a.conf', Buffer.from('two\n'));
    expect((await store.get('/srv/a.conf'))?.toString()).toBe('two\n');
    await store.delete('/srv/a.conf');
    await store.delete('/srv/a.conf');
    expect(await store.get('/srv/a.conf')).toBeNull();
    await store.close();
  });

  it('survives a re-open: content written before close is there after', async () => {
    const storeDir = path.join(dir, 'content');
    const first = await createContentStore(storeDir);
    await first.put('/srv/app.yml', Buffer.from('a: 1\n'));
    await first.put('/srv/empty', Buffer.alloc(0));
    await first.close();
    const second = await createContentStore(storeDir);
    expect((await second.get('/srv/app.yml'))?.toString()).toBe('a: 1\n');
    expect((await second.get('/srv/empty'))?.length).toBe(0);
    await second.close();
  });

  it('names files by the SHA-256 of the path, never by the path itself', async () => {
    const storeDir = path.join(dir, 'content');
    const store = await createContentStore(storeDir);
    const nasty = '/srv/../../etc/passwd\nwith newline and ünïcödé';
    await store.put(nasty, Buffer.from('x'));
    expect(await readdir(storeDir)).toEqual([keyOf(nasty)]);
    await store.close();
  });

  it('keeps the directory 0700 and files 0600, even for a directory that existed with a looser mode', async () => {
    const storeDir = path.join(dir, 'content');
    await mkdir(storeDir, { mode: 0o755 });
    await chmod(storeDir, 0o755);
    const store = await createContentStore(storeDir);
    await store.put('/srv/a', Buffer.from('x'));
    expect((await stat(storeDir)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(storeDir, keyOf('/srv/a')))).mode & 0o777).toBe(0o600);
    await store.close();
  });

  it('removes temp files a crash left behind', async () => {
    const storeDir = path.join(dir, 'content');
    await mkdir(storeDir, { mode: 0o700 });
    await writeFile(path.join(storeDir, `${keyOf('/x')}.123.1.tmp`), 'half');
    const store = await createContentStore(storeDir);
    expect(await readdir(storeDir)).toEqual([]);
    await store.close();
  });

  it('moves content on rename, and clears the target when the source has none', async () => {
    const store = await createContentStore(path.join(dir, 'content'));
    await store.put('/old', Buffer.from('moved'));
    await store.rename('/old', '/new');
    expect(await store.get('/old')).toBeNull();
    expect((await store.get('/new'))?.toString()).toBe('moved');
    await store.put('/stale', Buffer.from('stale'));
    await store.rename('/never-stored', '/stale');
    expect(await store.get('/stale')).toBeNull();
    await store.rename('/new', '/new');
    expect((await store.get('/new'))?.toString()).toBe('moved');
    await store.close();
  });

  it('leaves no temp file after many concurrent puts of one path', async () => {
    const storeDir = path.join(dir, 'content');
    const store = await createContentStore(storeDir);
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.put('/p', Buffer.from(`v${i}`))));
    expect(await readdir(storeDir)).toEqual([keyOf('/p')]);
    expect((await store.get('/p'))?.toString()).toMatch(/^v\d+$/);
    await store.close();
  });

  it('refuses a symlink or a file as its directory', async () => {
    await writeFile(path.join(dir, 'file'), 'x');
    await expect(createContentStore(path.join(dir, 'file'))).rejects.toBeInstanceOf(ContentStoreError);
    await mkdir(path.join(dir, 'real'));
    await symlink(path.join(dir, 'real'), path.join(dir, 'link'));
    await expect(createContentStore(path.join(dir, 'link'))).rejects.toThrow(/not a directory/);
  });

  it('waits for writes in flight on close, then refuses calls; close is idempotent', async () => {
    const storeDir = path.join(dir, 'content');
    const store = await createContentStore(storeDir);
    const put = store.put('/p', Buffer.alloc(1024 * 1024, 'z'));
    const closed = store.close();
    expect(store.close()).toBe(closed);
    await closed;
    await put;
    const header = `fso-content/1 ${createHash('sha256').update(Buffer.alloc(1024 * 1024, 'z')).digest('hex')} ${1024 * 1024}\n`;
    expect((await stat(path.join(storeDir, keyOf('/p')))).size).toBe(header.length + 1024 * 1024);
    await expect(store.get('/p')).rejects.toBeInstanceOf(ContentStoreClosedError);
  });

  it('stores a checksum with the content, and reads a torn, damaged or headerless file as nothing stored', async () => {
    const storeDir = path.join(dir, 'content');
    const store = await createContentStore(storeDir);
    const file = path.join(storeDir, keyOf('/p'));
    const content = Buffer.from('port = 80\nhost = a\n');
    await store.put('/p', content);
    expect((await readFile(file)).toString()).toBe(`fso-content/1 ${createHash('sha256').update(content).digest('hex')} ${content.length}\n${content}`);
    // Torn: a crash before the data reached the disk (no fsync) leaves it short.
    await truncate(file, (await stat(file)).size - 3);
    expect(await store.get('/p')).toBeNull();
    // Damaged: same length, one byte changed.
    await store.put('/p', content);
    const bytes = await readFile(file);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 2) ^ 1, bytes.length - 2);
    await writeFile(file, bytes);
    expect(await store.get('/p')).toBeNull();
    // Empty, or written by an agent before checksums (no header).
    await writeFile(file, '');
    expect(await store.get('/p')).toBeNull();
    await writeFile(file, content);
    expect(await store.get('/p')).toBeNull();
    await store.put('/p', content);
    expect(await store.get('/p')).toEqual(content);
    await store.close();
  });
});
