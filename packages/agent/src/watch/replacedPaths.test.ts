import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSilentLogger, watchSpecSchema } from '@fso/common';
import { createTempDir, waitFor } from '../../../../tests/helpers.js';
import type { Change } from './reconciler.js';
import { startRootWatcher } from './rootWatcher.js';
import type { RootWatcher } from './rootWatcher.js';

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * A name whose baseline inode is no longer under it: where that inode went
 * decides what happened (issue 12). Each case is made in one turn of the
 * event loop (sync calls), so the watcher gets it as one burst of hints.
 */
describe('a name taken over by another inode (real fs.watch, real temp dirs)', () => {
  let tmp: { path: string; cleanup: () => Promise<void> };
  let root: string;
  let stateDir: string;
  let changes: Change[];
  const watchers: RootWatcher[] = [];
  const file = (name: string): string => path.join(root, name);

  const start = async (): Promise<RootWatcher> => {
    const w = await startRootWatcher({
      spec: watchSpecSchema.parse({ path: root }), log: createSilentLogger(), stateDir, hashMaxBytes: 1024 * 1024, pairWindowMs: 150,
      sink: { change: (c) => void changes.push(c) },
    });
    watchers.push(w);
    await w.ready();
    return w;
  };
  /** Waits for `count` changes, then until no more come for a while; returns them as `type name [from old]`. */
  const settled = async (w: RootWatcher, count: number): Promise<string[]> => {
    await waitFor(() => changes.length >= count, `${count} changes (got ${changes.length})`, 10_000);
    let seen = -1;
    await waitFor(async () => {
      const stable = seen === changes.length;
      seen = changes.length;
      await new Promise((r) => setTimeout(r, 300));
      return stable && w.state().ready;
    }, 'no more changes', 10_000, 0);
    return changes.map((c) => [c.type, path.relative(root, c.path), ...(c.oldPath ? [`from ${path.relative(root, c.oldPath)}`] : []), ...(c.origin === 'scan' ? ['scan'] : [])].join(' '));
  };

  beforeEach(async () => {
    tmp = await createTempDir();
    root = path.join(tmp.path, 'root');
    stateDir = path.join(tmp.path, 'state');
    await mkdir(root);
    await mkdir(stateDir);
    changes = [];
  });
  afterEach(async () => {
    await Promise.all(watchers.splice(0).map((w) => w.close()));
    await tmp.cleanup();
  });

  it('a known file renamed over another known file is one rename (the old name first or last in the burst)', async () => {
    for (const n of ['a.conf', 'b.conf', 'c.conf', 'd.conf']) await writeFile(file(n), `${n}\n`);
    const w = await start();
    renameSync(file('b.conf'), file('a.conf'));
    renameSync(file('c.conf'), file('d.conf'));
    expect((await settled(w, 2)).sort()).toEqual(['rename a.conf from b.conf', 'rename d.conf from c.conf']);
    expect(w.baseline.get(file('a.conf'))?.sha256).toBe(sha('b.conf\n'));
    expect(w.baseline.get(file('b.conf'))).toBeUndefined();
  });

  it('a rotation chain: each old inode is followed down the chain, the new log is a create', async () => {
    for (const [n, text] of [['app.log', 'now\n'], ['app.log.1', 'older\n'], ['app.log.2', 'oldest\n']] as const) await writeFile(file(n), text);
    const w = await start();
    rmSync(file('app.log.2'));
    renameSync(file('app.log.1'), file('app.log.2'));
    renameSync(file('app.log'), file('app.log.1'));
    writeFileSync(file('app.log'), '');
    const seen = await settled(w, 3);
    expect(seen).toEqual(['rename app.log.2 from app.log.1', 'rename app.log.1 from app.log', 'create app.log']);
    expect(w.baseline.get(file('app.log.2'))?.sha256).toBe(sha('older\n'));
    expect(w.baseline.get(file('app.log.1'))?.sha256).toBe(sha('now\n'));
  });

  it('two names swapped through a temp name: each ends with the other content', async () => {
    await writeFile(file('x'), 'x\n');
    await writeFile(file('y'), 'y\n');
    const w = await start();
    renameSync(file('x'), file('t'));
    renameSync(file('y'), file('x'));
    renameSync(file('t'), file('y'));
    await settled(w, 2);
    expect(changes.filter((c) => c.type === 'delete')).toEqual([]);
    expect(w.baseline.get(file('x'))?.sha256).toBe(sha('y\n'));
    expect(w.baseline.get(file('y'))?.sha256).toBe(sha('x\n'));
    expect(w.baseline.get(file('t'))).toBeUndefined();
  });

  it('a directory removed and made anew under its name: deletes of the old tree, then creates of the new', async () => {
    mkdirSync(file('d/sub'), { recursive: true });
    writeFileSync(file('d/a.txt'), 'old a');
    writeFileSync(file('d/sub/b.txt'), 'old b');
    const w = await start();
    rmSync(file('d'), { recursive: true });
    mkdirSync(file('d'));
    writeFileSync(file('d/a.txt'), 'new a');
    const seen = await settled(w, 6);
    const created = seen.indexOf('create d');
    expect(created, seen.join('\n')).toBeGreaterThan(-1);
    expect(seen.slice(0, created).sort()).toEqual(['delete d', 'delete d/a.txt', 'delete d/sub', 'delete d/sub/b.txt']);
    expect(seen.slice(created)).toEqual(['create d', 'create d/a.txt']);
    expect(w.baseline.get(file('d/a.txt'))?.sha256).toBe(sha('new a'));
    expect(w.baseline.get(file('d/sub'))).toBeUndefined();
    // The new d is watched, though ext4 may have given it a freed inode number of the old tree.
    changes.length = 0;
    await writeFile(file('d/later.txt'), 'later');
    expect(await settled(w, 1)).toEqual(['create d/later.txt']);
  });

  it('a directory made anew with a known file moved back into it: the file is in the trail under the new directory', async () => {
    mkdirSync(file('d'));
    writeFileSync(file('d/f'), 'f');
    const w = await start();
    mkdirSync(file('e'));
    renameSync(file('d/f'), file('e/f'));
    rmSync(file('d'), { recursive: true });
    renameSync(file('e'), file('d'));
    expect(await settled(w, 4)).toEqual(['delete d/f', 'delete d', 'create d', 'create d/f']);
    expect(w.baseline.get(file('d/f'))?.sha256).toBe(sha('f'));
  });

  it('a known directory renamed over an empty known one is one rename, and what it holds keeps its names below it', async () => {
    mkdirSync(file('d'));
    mkdirSync(file('d2'));
    writeFileSync(file('d2/x'), 'x');
    const w = await start();
    renameSync(file('d2'), file('d'));
    expect(await settled(w, 1)).toEqual(['rename d from d2']);
    expect(w.baseline.get(file('d/x'))?.sha256).toBe(sha('x'));
    expect(w.baseline.get(file('d2/x'))).toBeUndefined();
  });

  it('a file deleted and a known directory renamed to its name: a delete and a rename', async () => {
    writeFileSync(file('f'), 'f');
    mkdirSync(file('dir'));
    writeFileSync(file('dir/x'), 'x');
    const w = await start();
    rmSync(file('f'));
    renameSync(file('dir'), file('f'));
    expect(await settled(w, 2)).toEqual(['delete f', 'rename f from dir']);
    expect(w.baseline.get(file('f/x'))?.sha256).toBe(sha('x'));
  });

  it('a file renamed away and a directory made under its name: a rename and a create', async () => {
    await writeFile(file('f'), 'f');
    const w = await start();
    renameSync(file('f'), file('g'));
    mkdirSync(file('f'));
    expect(await settled(w, 2)).toEqual(['rename g from f', 'create f']);
    expect(w.baseline.get(file('f'))?.kind).toBe('directory');
  });

  it('a rotation made while the agent was stopped reads the same, with origin scan', async () => {
    await writeFile(file('app.log'), 'before the stop\n');
    await writeFile(file('app.log.1'), 'rotated earlier\n');
    const first = await start();
    await first.close();
    watchers.splice(0);
    await rename(file('app.log.1'), file('app.log.2'));
    await rename(file('app.log'), file('app.log.1'));
    await writeFile(file('app.log'), 'after\n');
    const w = await start();
    expect((await settled(w, 3)).sort()).toEqual(['create app.log scan', 'rename app.log.1 from app.log scan', 'rename app.log.2 from app.log.1 scan']);
  });
});
