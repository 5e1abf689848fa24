import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSilentLogger, watchSpecSchema } from '@fso/common';
import { createTempDir, waitFor } from '../../../../tests/helpers.js';
import type { Change } from './reconciler.js';
import { hintedPaths, startRootWatcher } from './rootWatcher.js';
import type { RootWatcher } from './rootWatcher.js';

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('startRootWatcher (real fs.watch, real temp dirs)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let root: string;
  let stateDir: string;
  let outside: string;
  let changes: Change[];
  const watchers: RootWatcher[] = [];

  const start = async (extra: Record<string, unknown> = {}): Promise<RootWatcher> => {
    const w = await startRootWatcher({
      spec: watchSpecSchema.parse({ path: root, ...extra }),
      log: createSilentLogger(),
      stateDir,
      hashMaxBytes: 1024 * 1024,
      pairWindowMs: 150,
      sink: { change: (c) => void changes.push(c) },
    });
    watchers.push(w);
    await w.ready();
    return w;
  };
  const waitChange = (pred: (c: Change) => boolean, what: string): Promise<Change> =>
    waitFor(() => changes.find(pred), what, 5000);
  /** Waits until the watcher is quiet: the pair window has passed and no change came. */
  const settle = async (w: RootWatcher): Promise<void> => {
    let count = -1;
    await waitFor(async () => {
      const stable = count === changes.length;
      count = changes.length;
      await new Promise((r) => setTimeout(r, 250));
      return stable && w.state().ready;
    }, 'the watcher to settle', 10_000, 0);
  };

  beforeEach(async () => {
    tmp = await createTempDir();
    root = path.join(tmp.path, 'root');
    stateDir = path.join(tmp.path, 'state');
    outside = path.join(tmp.path, 'outside');
    await mkdir(root);
    await mkdir(stateDir);
    await mkdir(outside);
    changes = [];
  });
  afterEach(async () => {
    await Promise.all(watchers.splice(0).map((w) => w.close()));
    await tmp.cleanup();
  });

  it('first start records the existing tree without events', async () => {
    await writeFile(path.join(root, 'old.txt'), 'x');
    const w = await start();
    await settle(w);
    expect(changes).toEqual([]);
    expect(w.state()).toMatchObject({ ready: true, entries: 1, error: null });
  });

  it('reports create, modify and delete with hashes, sizes and observedAt', async () => {
    const w = await start();
    const file = path.join(root, 'a.conf');
    const before = Date.now();
    await writeFile(file, 'one\n');
    const created = await waitChange((c) => c.type === 'create' && c.path === file, 'create of a.conf');
    expect(created).toMatchObject({ kind: 'file', size: 4, sha256: sha('one\n'), hashSkipped: null, origin: 'live' });
    expect(created.observedAtMs).toBeGreaterThanOrEqual(before - 5);
    await writeFile(file, 'two two\n');
    const modified = await waitChange((c) => c.type === 'modify' && c.path === file, 'modify of a.conf');
    expect(modified).toMatchObject({ size: 8, sha256: sha('two two\n') });
    await rm(file);
    await waitChange((c) => c.type === 'delete' && c.path === file, 'delete of a.conf');
    await settle(w);
    expect(changes.map((c) => c.type)).toEqual(['create', 'modify', 'delete']);
  });

  it('pairs a file rename into one rename event', async () => {
    await writeFile(path.join(root, 'old.conf'), 'content');
    const w = await start();
    await rename(path.join(root, 'old.conf'), path.join(root, 'new.conf'));
    const renamed = await waitChange((c) => c.type === 'rename', 'rename event');
    expect(renamed).toMatchObject({ path: path.join(root, 'new.conf'), oldPath: path.join(root, 'old.conf'), sha256: sha('content') });
    await settle(w);
    expect(changes).toHaveLength(1);
  });

  it('reports a directory rename as one rename of the directory, not a storm', async () => {
    await mkdir(path.join(root, 'dir', 'sub'), { recursive: true });
    for (let i = 0; i < 20; i += 1) await writeFile(path.join(root, 'dir', 'sub', `f${i}.txt`), `${i}`);
    const w = await start();
    await rename(path.join(root, 'dir'), path.join(root, 'moved'));
    await waitChange((c) => c.type === 'rename' && c.path === path.join(root, 'moved'), 'rename of the directory');
    await settle(w);
    expect(changes).toEqual([expect.objectContaining({ type: 'rename', kind: 'directory', oldPath: path.join(root, 'dir') })]);
    // The children are known under their new names: a later change is a modify, not a create.
    await writeFile(path.join(root, 'moved', 'sub', 'f1.txt'), 'changed');
    await waitChange((c) => c.type === 'modify' && c.path === path.join(root, 'moved', 'sub', 'f1.txt'), 'modify under the renamed dir');
  });

  it("reports an editor's atomic save (temp file renamed over the target) as one modify", async () => {
    const target = path.join(root, 'app.yml');
    await writeFile(target, 'a: 1\n');
    const w = await start();
    const temp = path.join(root, '.app.yml.swp');
    await writeFile(temp, 'a: 2\n');
    await rename(temp, target);
    const modified = await waitChange((c) => c.path === target, 'the change of app.yml');
    expect(modified).toMatchObject({ type: 'modify', sha256: sha('a: 2\n') });
    await settle(w);
    expect(changes).toHaveLength(1);
  });

  it('watches a directory made where another was just moved away from', async () => {
    const w = await start();
    const d = path.join(root, 'd');
    await mkdir(d);
    await waitChange((c) => c.type === 'create' && c.path === d, 'create of d');
    await rename(d, path.join(root, 'd2'));
    await mkdir(d);
    // (How the swap reads, a rename or a modify of d plus renames below it, is the reconciler's matter.)
    await waitChange((c) => c.path === path.join(root, 'd2') || c.oldPath === d, 'a change naming d2');
    await writeFile(path.join(d, 'f.txt'), 'in the new d');
    await waitChange((c) => c.type === 'create' && c.path === path.join(d, 'f.txt'), 'create of a file in the new d');
    await settle(w);
  });

  it('reports a delete made in a renamed directory right after the rename', async () => {
    await mkdir(path.join(root, 'sub', 'deeper'), { recursive: true });
    await writeFile(path.join(root, 'sub', 'deeper', 'new.txt'), 'x');
    const w = await start();
    // The rename, then at once a delete and a create below it: the watches still have the old names.
    renameSync(path.join(root, 'sub'), path.join(root, 'sub2'));
    rmSync(path.join(root, 'sub2', 'deeper', 'new.txt'));
    writeFileSync(path.join(root, 'sub2', 'deeper', 'later.txt'), 'y');
    await waitChange((c) => c.type === 'delete' && c.path === path.join(root, 'sub2', 'deeper', 'new.txt'), 'delete of new.txt under its new name');
    await waitChange((c) => c.type === 'create' && c.path === path.join(root, 'sub2', 'deeper', 'later.txt'), 'create of later.txt');
    await settle(w);
    expect(changes.map((c) => `${c.type} ${path.relative(root, c.path)}`).sort()).toEqual(['create sub2/deeper/later.txt', 'delete sub2/deeper/new.txt', 'rename sub2']);
  });

  it('watches the root anew when another directory takes its name', async () => {
    await writeFile(path.join(root, 'old.txt'), 'old');
    const w = await start();
    // Both before the agent reads the root's notification, so it finds another directory there.
    renameSync(root, path.join(tmp.path, 'root.old'));
    mkdirSync(root);
    await waitChange((c) => c.type === 'delete' && c.path === path.join(root, 'old.txt'), 'delete of old.txt with the old root');
    await waitFor(() => w.state().ready, 'watching the new root', 5000);
    await writeFile(path.join(root, 'new.txt'), 'new');
    await waitChange((c) => c.type === 'create' && c.path === path.join(root, 'new.txt'), 'create in the new root');
    await writeFile(path.join(tmp.path, 'root.old', 'moved-away.txt'), 'not watched');
    await settle(w);
    expect(changes.filter((c) => c.path.includes('moved-away'))).toEqual([]);
  });

  it('reports editor temp files that stay (chokidar atomic mode would hide them)', async () => {
    const w = await start();
    await writeFile(path.join(root, 'notes.txt~'), 'backup');
    await writeFile(path.join(root, '.notes.txt.swp'), 'swap');
    await waitFor(() => changes.filter((c) => c.type === 'create').length === 2, 'creates of both temp files', 5000);
    await settle(w);
  });

  it('reports a move in from outside as create and a move out as delete', async () => {
    await writeFile(path.join(outside, 'in.txt'), 'in');
    await writeFile(path.join(root, 'out.txt'), 'out');
    const w = await start();
    await rename(path.join(outside, 'in.txt'), path.join(root, 'in.txt'));
    await rename(path.join(root, 'out.txt'), path.join(outside, 'out.txt'));
    await waitChange((c) => c.type === 'create' && c.path === path.join(root, 'in.txt'), 'create of in.txt');
    await waitChange((c) => c.type === 'delete' && c.path === path.join(root, 'out.txt'), 'delete of out.txt');
    await settle(w);
    expect(changes).toHaveLength(2);
  });

  it('reports changes made while it was stopped, with origin scan, and nothing for unchanged files', async () => {
    await writeFile(path.join(root, 'keep.txt'), 'same');
    await writeFile(path.join(root, 'edit.txt'), 'before');
    await writeFile(path.join(root, 'gone.txt'), 'bye');
    await writeFile(path.join(root, 'from.txt'), 'moving');
    const first = await start();
    await first.close();
    watchers.splice(0);
    await writeFile(path.join(root, 'edit.txt'), 'after!!');
    await rm(path.join(root, 'gone.txt'));
    await rename(path.join(root, 'from.txt'), path.join(root, 'to.txt'));
    await writeFile(path.join(root, 'new.txt'), 'new');
    const w = await start();
    await settle(w);
    const summary = changes.map((c) => `${c.type} ${path.basename(c.path)} ${c.origin}`).sort();
    expect(summary).toEqual(['create new.txt scan', 'delete gone.txt scan', 'modify edit.txt scan', 'rename to.txt scan']);
  });

  it('applies include/exclude patterns and the event filter', async () => {
    const w = await start({ include: ['**/*.conf'], exclude: ['**/skip/**'], events: ['create', 'delete'] });
    await mkdir(path.join(root, 'skip'));
    await writeFile(path.join(root, 'skip', 'x.conf'), 'x');
    await writeFile(path.join(root, 'a.txt'), 'ignored');
    await writeFile(path.join(root, 'b.conf'), 'b');
    await waitChange((c) => c.path === path.join(root, 'b.conf'), 'create of b.conf');
    await writeFile(path.join(root, 'b.conf'), 'bb');
    await rm(path.join(root, 'b.conf'));
    await waitChange((c) => c.type === 'delete', 'delete of b.conf');
    await settle(w);
    expect(changes.map((c) => `${c.type} ${path.basename(c.path)}`)).toEqual(['create b.conf', 'delete b.conf']);
  });

  it('reports symlinks without following them out of the tree', async () => {
    const w = await start();
    await symlink('/etc', path.join(root, 'link'));
    const created = await waitChange((c) => c.path === path.join(root, 'link'), 'create of the symlink');
    expect(created).toMatchObject({ kind: 'symlink', sha256: null, hashSkipped: 'not-regular' });
    await settle(w);
    expect(changes.some((c) => c.path.startsWith(path.join(root, 'link') + '/'))).toBe(false);
  });

  it('a rescan reports nothing for an unchanged tree, and a change once even when the watcher saw it too', async () => {
    await mkdir(path.join(root, 'd'));
    await writeFile(path.join(root, 'd', 'a.txt'), 'a');
    const w = await start();
    await w.rescan();
    await settle(w);
    expect(changes).toEqual([]);
    await writeFile(path.join(root, 'd', 'a.txt'), 'changed');
    await w.rescan();
    await waitChange((c) => c.type === 'modify', 'the modify');
    await settle(w);
    expect(changes).toHaveLength(1);
  });

  it('waits for a root that does not exist yet, then reports what appears in it', async () => {
    await rm(root, { recursive: true });
    const w = await start();
    expect(w.state()).toMatchObject({ ready: false, error: expect.stringContaining('does not exist') });
    await mkdir(root);
    await waitFor(() => w.state().ready, 'the root to be watched once it exists', 5000);
    await writeFile(path.join(root, 'late.txt'), 'late');
    await waitChange((c) => c.type === 'create' && c.path === path.join(root, 'late.txt'), 'create in the late root');
  });

  it('reports the deletion of the watched root itself and waits for it to come back', async () => {
    await writeFile(path.join(root, 'f.txt'), 'f');
    const w = await start();
    await rm(root, { recursive: true });
    await waitChange((c) => c.type === 'delete' && c.path === path.join(root, 'f.txt'), 'delete of f.txt');
    await waitFor(() => w.state().error?.includes('deleted'), 'the watcher to say its root was deleted', 5000);
    await mkdir(root);
    await waitFor(() => w.state().ready, 'watching again', 5000);
    await writeFile(path.join(root, 'again.txt'), 'again');
    await waitChange((c) => c.path === path.join(root, 'again.txt'), 'create after the root came back');
  });
});

describe('hintedPaths (what a directory watch notification points at)', () => {
  it('names the child, and the directory too when the name is its own (the watched directory deleted or moved away)', () => {
    expect(hintedPaths('/w/burst', 'f1.txt')).toEqual(['/w/burst/f1.txt']);
    expect(hintedPaths('/w/x', 'x')).toEqual(['/w/x', '/w/x/x']);
  });
});
