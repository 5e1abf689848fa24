import { appendFile, lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSilentLogger, watchSpecSchema } from '@fso/common';
import { createTempDir, waitFor } from '../../../../tests/helpers.js';
import { Baseline, entryFromStats } from './baseline.js';
import { createFileLooker } from './fileLooks.js';
import type { FileLooker } from './fileLooks.js';
import { Reconciler } from './reconciler.js';
import type { Change } from './reconciler.js';
import { startRootWatcher } from './rootWatcher.js';
import type { RootWatcher } from './rootWatcher.js';

// A long pair window: a delete that comes well before it was settled early, and
// a rename still paired shows the early settling does not split renames.
const PAIR_WINDOW_MS = 3000;

describe('reconciler: deletes settle once their partner could have been seen', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let root: string;
  let outside: string;
  let changes: Array<Change & { at: number }>;
  const watchers: RootWatcher[] = [];

  const start = async (): Promise<RootWatcher> => {
    const w = await startRootWatcher({
      spec: watchSpecSchema.parse({ path: root }),
      log: createSilentLogger(),
      stateDir: path.join(tmp.path, 'state'),
      hashMaxBytes: 1024 * 1024,
      pairWindowMs: PAIR_WINDOW_MS,
      sink: { change: (c) => void changes.push({ ...c, at: Date.now() }) },
    });
    watchers.push(w);
    await w.ready();
    return w;
  };
  /** Waits until nothing is pending any more (every window has passed) and returns what was reported. */
  const settled = async (expected: number): Promise<Change[]> => {
    await waitFor(() => changes.length >= expected, `${expected} changes`, PAIR_WINDOW_MS + 15_000);
    let count = -1;
    await waitFor(async () => {
      const stable = count === changes.length;
      count = changes.length;
      await new Promise((r) => setTimeout(r, 250));
      return stable;
    }, 'no more changes', PAIR_WINDOW_MS + 5000, 0);
    return changes;
  };

  beforeEach(async () => {
    tmp = await createTempDir();
    root = path.join(tmp.path, 'root');
    outside = path.join(tmp.path, 'outside');
    await mkdir(root);
    await mkdir(path.join(tmp.path, 'state'));
    await mkdir(outside);
    changes = [];
  });
  afterEach(async () => {
    await Promise.all(watchers.splice(0).map((w) => w.close()));
    await tmp.cleanup();
  });

  it('reports a move out as a delete well before the pair window ends', async () => {
    await writeFile(path.join(root, 'out.txt'), 'out');
    await start();
    const movedAt = Date.now();
    await rename(path.join(root, 'out.txt'), path.join(outside, 'out.txt'));
    const deleted = await waitFor(() => changes.find((c) => c.type === 'delete'), 'the delete', PAIR_WINDOW_MS + 5000);
    expect(deleted.path).toBe(path.join(root, 'out.txt'));
    expect(deleted.at - movedAt).toBeLessThan(PAIR_WINDOW_MS / 2);
  });

  it('still pairs every rename of a burst across directories (no delete + create)', async () => {
    const count = 200;
    for (const dir of ['a', 'b']) await mkdir(path.join(root, dir));
    for (let i = 0; i < count; i += 1) await writeFile(path.join(root, 'a', `f${i}.txt`), `${i}`);
    await start();
    for (let i = 0; i < count; i += 1) await rename(path.join(root, 'a', `f${i}.txt`), path.join(root, 'b', `g${i}.txt`));
    const seen = await settled(count);
    expect(seen.filter((c) => c.type !== 'rename')).toEqual([]);
    expect(seen).toHaveLength(count);
  });

  it('waits out the window for a file moved into a directory that just appeared (only the listing of it finds it)', async () => {
    await writeFile(path.join(root, 'f.txt'), 'content');
    await start();
    await mkdir(path.join(root, 'new', 'deeper'), { recursive: true });
    await rename(path.join(root, 'f.txt'), path.join(root, 'new', 'deeper', 'f.txt'));
    // The directories' creates come after their (long) window: wait for them by name.
    for (const dir of [path.join(root, 'new'), path.join(root, 'new', 'deeper')]) {
      await waitFor(() => changes.find((c) => c.type === 'create' && c.path === dir), `the create of ${dir}`, PAIR_WINDOW_MS + 15_000);
    }
    const seen = await settled(3);
    expect(seen.filter((c) => c.type === 'delete' || (c.type === 'create' && c.kind === 'file'))).toEqual([]);
    expect(seen.find((c) => c.type === 'rename')).toMatchObject({ oldPath: path.join(root, 'f.txt'), path: path.join(root, 'new', 'deeper', 'f.txt') });
  });

  it('reports an rm of a tree with a directory: children first, then the directory, each once', async () => {
    await mkdir(path.join(root, 'd'));
    for (let i = 0; i < 5; i += 1) await writeFile(path.join(root, 'd', `f${i}.txt`), `${i}`);
    const w = await start();
    const removedAt = Date.now();
    await rm(path.join(root, 'd'), { recursive: true });
    const seen = await settled(6);
    expect((seen[seen.length - 1] as Change & { at: number }).at - removedAt).toBeLessThan(PAIR_WINDOW_MS / 2);
    expect(seen.every((c) => c.type === 'delete')).toBe(true);
    expect(seen).toHaveLength(6);
    expect(seen[seen.length - 1]).toMatchObject({ path: path.join(root, 'd'), kind: 'directory' });
    expect(w.baseline.size).toBe(0);
  });
});

describe('reconciler: held deletes (after an inotify overflow)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  afterEach(() => tmp.cleanup());

  /**
   * A reconciler with no watcher in front of it: the test hints paths itself,
   * as the kernel would after a full queue cut a rename in half (the old
   * name notified, the new one dropped until the rescan finds it).
   */
  const halfNotifiedRename = async (hold: boolean): Promise<Change[]> => {
    tmp = await createTempDir();
    const root = tmp.path;
    const from = path.join(root, 'a.txt');
    const to = path.join(root, 'b.txt');
    await writeFile(from, 'content');
    const baseline = new Baseline();
    baseline.set(from, entryFromStats(await lstat(from), null));
    const changes: Change[] = [];
    const reconciler = new Reconciler({
      root, log: createSilentLogger(), baseline, quiet: false, scanning: false, hashMaxBytes: 1024 * 1024, pairWindowMs: 20,
      sink: { change: (c) => void changes.push(c) },
    });
    const release = hold ? reconciler.holdDeletes() : () => undefined;
    await rename(from, to);
    reconciler.touch(from);
    await reconciler.idle();
    // Longer than the window: without the hold the delete is reported by now.
    await new Promise((resolve) => setTimeout(resolve, 200));
    reconciler.touch(to, Date.now(), true);
    await reconciler.idle();
    release();
    await reconciler.close();
    return changes;
  };

  it('pairs the old name kept pending with the new name a rescan finds: one rename', async () => {
    const changes = await halfNotifiedRename(true);
    expect(changes.map((c) => [c.type, path.basename(c.path), c.oldPath && path.basename(c.oldPath)])).toEqual([['rename', 'b.txt', 'a.txt']]);
  });

  it('without the hold, the same half-notified rename reads as a delete and a create', async () => {
    const changes = await halfNotifiedRename(false);
    expect(changes.map((c) => [c.type, path.basename(c.path)])).toEqual([['delete', 'a.txt'], ['create', 'b.txt']]);
  });
});

describe('reconciler: a rescan hints only what differs from the baseline', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  afterEach(() => tmp.cleanup());

  it('looks again only at changed, new and vanished paths; a path moved out and back while its delete was held is not reported', async () => {
    tmp = await createTempDir();
    const root = path.join(tmp.path, 'root');
    await mkdir(path.join(root, 'sub'), { recursive: true });
    const file = (name: string): string => path.join(root, name);
    const names = ['sub', ...Array.from({ length: 40 }, (_, i) => `sub/f${i}.txt`), 'away.txt'];
    for (const n of names.slice(1)) await writeFile(file(n), n);
    const baseline = new Baseline();
    for (const n of names) baseline.set(file(n), entryFromStats(await lstat(file(n)), null));
    const inner = createFileLooker();
    const looked: string[] = [];
    const looker: FileLooker = { ...inner, scan: (r, recursive) => inner.scan(r, recursive), lstat: (p) => (looked.push(p), inner.lstat(p)) };
    const changes: Change[] = [];
    const reconciler = new Reconciler({
      root, log: createSilentLogger(), baseline, quiet: false, scanning: false, hashMaxBytes: 1024 * 1024, pairWindowMs: 20, looker,
      sink: { change: (c) => void changes.push(c) },
    });
    try {
      // away.txt is missed while it is moved out and back (same inode, size and mtime): its delete waits, held.
      const release = reconciler.holdDeletes();
      await rename(file('away.txt'), path.join(tmp.path, 'away.txt'));
      reconciler.touch(file('away.txt'));
      await reconciler.idle();
      await rename(path.join(tmp.path, 'away.txt'), file('away.txt'));
      await writeFile(file('sub/f3.txt'), 'changed, longer');
      await rm(file('sub/f7.txt'));
      await writeFile(file('sub/new.txt'), 'new');
      looked.length = 0;

      expect(await reconciler.touchChanged(true)).toBe(true);
      await reconciler.caughtUp();
      release();
      await reconciler.close();
      // sub's mtime moved with its entries: looked at too, no event.
      expect([...new Set(looked)].sort()).toEqual(['away.txt', 'sub', 'sub/f3.txt', 'sub/f7.txt', 'sub/new.txt'].map(file));
      expect(changes.map((c) => [c.type, path.relative(root, c.path), c.origin]).sort()).toEqual([
        ['create', 'sub/new.txt', 'scan'], ['delete', 'sub/f7.txt', 'scan'], ['modify', 'sub/f3.txt', 'scan'],
      ]);
    } finally {
      await inner.close();
    }
  });
});

describe('rescan on a tree that keeps changing', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  afterEach(() => tmp.cleanup());

  it('returns once what it looked at is decided, though live hints keep coming (an overflow happens on busy trees)', async () => {
    tmp = await createTempDir();
    const root = path.join(tmp.path, 'root');
    await mkdir(root);
    for (let i = 0; i < 200; i += 1) await writeFile(path.join(root, `still-${i}.txt`), `${i}`);
    const w = await startRootWatcher({
      spec: watchSpecSchema.parse({ path: root }), log: createSilentLogger(), stateDir: tmp.path, hashMaxBytes: 1024 * 1024, pairWindowMs: 100,
      sink: { change: () => undefined },
    });
    await w.ready();
    let writing = true;
    // Four writers appending without pause: there is always a fresh live hint.
    const writers = Array.from({ length: 4 }, async (_, n) => {
      const file = path.join(root, `busy-${n}.log`);
      while (writing) await appendFile(file, 'x\n');
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      for (let round = 0; round < 3; round += 1) {
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          w.rescan().then(() => 'done'),
          new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running after 15 s'), 15_000))),
        ]);
        clearTimeout(timer);
        expect(outcome, `round ${round}`).toBe('done');
      }
    } finally {
      writing = false;
      await Promise.all(writers);
      await w.close();
    }
  }, 90_000);
});

describe('reconciler: close()', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  afterEach(() => tmp.cleanup());

  it('a second call returns the first call\'s promise, and what was pending is reported once', async () => {
    tmp = await createTempDir();
    const file = path.join(tmp.path, 'gone.txt');
    await writeFile(file, 'x');
    const baseline = new Baseline();
    baseline.set(file, entryFromStats(await lstat(file), null));
    const changes: Change[] = [];
    const reconciler = new Reconciler({
      root: tmp.path, log: createSilentLogger(), baseline, quiet: false, scanning: false, hashMaxBytes: 1024, pairWindowMs: 60_000,
      sink: { change: (c) => void changes.push(c) },
    });
    // Held: the delete waits for close(), which settles it.
    reconciler.holdDeletes();
    await rm(file);
    reconciler.touch(file);
    await reconciler.idle();
    const first = reconciler.close();
    const second = reconciler.close();
    expect(second).toBe(first);
    await Promise.all([first, second, reconciler.close()]);
    expect(changes.map((c) => [c.type, path.basename(c.path)])).toEqual([['delete', 'gone.txt']]);
  });
});

describe('reconciler: a known file renamed over a new one still in its pair window', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  afterEach(() => tmp.cleanup());

  it('is one rename: the new one was short-lived, like an atomic save\'s temp file', async () => {
    tmp = await createTempDir();
    const p = path.join(tmp.path, 'p');
    const c = path.join(tmp.path, 'c');
    await writeFile(p, 'p');
    const baseline = new Baseline();
    baseline.set(p, entryFromStats(await lstat(p), null));
    const changes: Change[] = [];
    const reconciler = new Reconciler({
      root: tmp.path, log: createSilentLogger(), baseline, quiet: false, scanning: false, hashMaxBytes: 1024, pairWindowMs: 60_000,
      sink: { change: (ch) => void changes.push(ch) },
    });
    await writeFile(c, 'c');
    reconciler.touch(c);
    await reconciler.idle();
    expect(reconciler.pendingCount).toBe(1); // c waits out its window
    await rename(p, c);
    reconciler.touch(p);
    reconciler.touch(c);
    await reconciler.idle();
    await reconciler.close();
    expect(changes.map((ch) => [ch.type, path.basename(ch.path), ch.oldPath && path.basename(ch.oldPath)])).toEqual([['rename', 'c', 'p']]);
    expect(baseline.get(c)?.ino).toBe((await lstat(c)).ino);
  });
});
