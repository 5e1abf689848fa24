import { lstat, mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTempDir, waitFor, waitForProgress } from '../../../../tests/helpers.js';
import { createDirWatcher } from './dirWatcher.js';
import type { DirWatcher } from './dirWatcher.js';

describe('createDirWatcher (real fs.watch, real temp dirs)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let root: string;
  let notified: string[];
  let listed: Array<[string, boolean]>;
  let errors: Array<[string, string]>;
  let watcher: DirWatcher;

  const create = (ignored: string[] = []): DirWatcher =>
    createDirWatcher({
      ignoresDirectory: (p) => ignored.includes(path.basename(p)),
      onNotification: (dir, name) => notified.push(name === null ? dir : path.join(dir, name)),
      onListed: (p, isDirectory) => listed.push([p, isDirectory]),
      onError: (err, dir) => errors.push([dir, String((err as NodeJS.ErrnoException).code)]),
    });

  beforeEach(async () => {
    tmp = await createTempDir();
    root = path.join(tmp.path, 'root');
    await mkdir(path.join(root, 'a', 'b'), { recursive: true });
    await mkdir(path.join(root, 'skip', 'deep'), { recursive: true });
    await writeFile(path.join(root, 'top.txt'), 'x');
    await writeFile(path.join(root, 'a', 'b', 'leaf.txt'), 'x');
    await writeFile(path.join(root, 'skip', 'deep', 'hidden.txt'), 'x');
    notified = [];
    listed = [];
    errors = [];
  });
  afterEach(async () => {
    watcher.close();
    await tmp.cleanup();
  });

  it('walks the tree: lists every entry, watches every directory once, never enters a left-out one nor a symlink', async () => {
    await symlink(path.join(root, 'a'), path.join(root, 'link'));
    watcher = create(['skip']);
    await watcher.add(root, { walk: true });
    expect(listed.sort()).toEqual(
      [
        [path.join(root, 'a'), true],
        [path.join(root, 'a', 'b'), true],
        [path.join(root, 'a', 'b', 'leaf.txt'), false],
        [path.join(root, 'link'), false],
        [path.join(root, 'top.txt'), false],
      ].sort(),
    );
    expect([watcher.size, watcher.has(root), watcher.has(path.join(root, 'a', 'b')), watcher.has(path.join(root, 'skip'))]).toEqual([3, true, true, false]);
    // Added again: already watched, so not listed again.
    await watcher.add(path.join(root, 'a'));
    expect(listed).toHaveLength(5);
    expect(errors).toEqual([]);
  });

  it("names what happens to a watched directory's children, and the directory by its own name when it is deleted", async () => {
    watcher = create();
    await watcher.add(root, { walk: true });
    const b = path.join(root, 'a', 'b');
    await writeFile(path.join(b, 'new.txt'), 'new');
    await waitFor(() => notified.includes(path.join(b, 'new.txt')), 'a notification naming the new file');
    await writeFile(path.join(b, 'leaf.txt'), 'changed');
    await waitFor(() => notified.includes(path.join(b, 'leaf.txt')), 'a notification naming the written file');
    await rm(b, { recursive: true });
    // The parent's watch names b (IN_DELETE); b's own watch names itself (IN_DELETE_SELF).
    await waitFor(() => notified.filter((p) => p === b).length > 0 && notified.includes(path.join(b, 'b')), 'both notifications of the deleted directory');
  });

  it('stops watching a directory and everything below it on remove; close is safe twice', async () => {
    watcher = create();
    await watcher.add(root, { walk: true });
    expect(watcher.size).toBe(5);
    watcher.remove(path.join(root, 'a'));
    expect([watcher.size, watcher.has(path.join(root, 'a')), watcher.has(path.join(root, 'a', 'b'))]).toEqual([3, false, false]);
    await writeFile(path.join(root, 'a', 'b', 'quiet.txt'), 'x');
    await writeFile(path.join(root, 'after.txt'), 'x');
    await waitFor(() => notified.includes(path.join(root, 'after.txt')), 'a notification from the root, still watched');
    expect(notified.filter((p) => p.startsWith(path.join(root, 'a', 'b')))).toEqual([]);
    watcher.close();
    watcher.close();
    expect(watcher.size).toBe(0);
  });

  it('lists a directory after watching it: what a burst puts in a new directory is either listed or notified', async () => {
    watcher = create();
    await watcher.add(root, { walk: true });
    const burst = path.join(root, 'burst');
    await mkdir(burst);
    const writing = (async () => {
      for (let i = 0; i < 300; i += 1) await writeFile(path.join(burst, `f${i}`), 'x');
    })();
    await waitFor(() => notified.includes(burst), 'the new directory');
    await watcher.add(burst);
    await writing;
    const names = new Set([...listed.map(([p]) => p), ...notified]);
    const missing = Array.from({ length: 300 }, (_, i) => path.join(burst, `f${i}`)).filter((p) => !names.has(p));
    await waitForProgress(
      () => missing.every((p) => notified.includes(p)) || null,
      () => notified.length,
      `every file of the burst (${missing.length} not yet seen)`,
      { stallMs: 10_000 },
    );
  });

  it('a directory that vanished before it was watched is no error; a moved one keeps no stale watch after remove', async () => {
    watcher = create();
    await watcher.add(path.join(root, 'nope'), { walk: true });
    expect([watcher.size, errors]).toEqual([0, []]);
    await watcher.add(root, { walk: true });
    await rename(path.join(root, 'a'), path.join(root, 'moved'));
    await watcher.add(path.join(root, 'moved'));
    watcher.remove(path.join(root, 'a'));
    expect([watcher.has(path.join(root, 'moved')), watcher.has(path.join(root, 'a', 'b'))]).toEqual([true, false]);
    await writeFile(path.join(root, 'moved', 'in.txt'), 'x');
    await waitFor(() => notified.includes(path.join(root, 'moved', 'in.txt')), 'a notification under the new name');
  });

  it('watches a name anew when another directory took it (the watch it had follows the moved one)', async () => {
    watcher = create();
    await watcher.add(root, { walk: true });
    const a = path.join(root, 'a');
    await watcher.add(a, { ino: (await lstat(a)).ino });
    await rename(a, path.join(root, 'away'));
    await mkdir(a);
    await watcher.add(a, { ino: (await lstat(a)).ino });
    await writeFile(path.join(a, 'fresh.txt'), 'x');
    await waitFor(() => notified.includes(path.join(a, 'fresh.txt')), 'a notification from the new directory under the old name');
    expect(watcher.has(path.join(root, 'a', 'b'))).toBe(false);
  });

  it('drops the old name of a directory watched under a new one, and keeps a watch whose directory is still there', async () => {
    watcher = create();
    await watcher.add(root, { walk: true });
    const a = path.join(root, 'a');
    const renamed = path.join(root, 'renamed');
    await rename(a, renamed);
    await watcher.add(renamed);
    // One handle per name: the old one would name every change in it a second time, under old paths.
    expect([watcher.has(a), watcher.has(path.join(a, 'b')), watcher.has(renamed)]).toEqual([false, false, true]);
    watcher.removeIfGone(renamed);
    expect(watcher.has(renamed)).toBe(true);
    await rm(renamed, { recursive: true });
    watcher.removeIfGone(renamed);
    expect(watcher.has(renamed)).toBe(false);
  });

  it('never follows a symbolic link, even one that took the place of a directory', async () => {
    watcher = create();
    const outside = path.join(tmp.path, 'outside');
    await mkdir(outside);
    await writeFile(path.join(outside, 'secret.txt'), 'x');
    await symlink(outside, path.join(root, 'was-dir'));
    await watcher.add(path.join(root, 'was-dir'));
    expect([watcher.has(path.join(root, 'was-dir')), listed]).toEqual([false, []]);
  });
});
