import { execFileSync } from 'node:child_process';
import { lstat, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createTempDir, waitFor } from '../../../../tests/helpers.js';
import { SYNC_HASH_MAX_BYTES, createFileLooker } from './fileLooks.js';
import type { FileLooker, TreeScan } from './fileLooks.js';
import { hashFile } from './hash.js';

const MAX = 16 * 1024 * 1024;
const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

let dir: string;
let cleanup: () => Promise<void>;
let looker: FileLooker;
beforeEach(async () => {
  ({ path: dir, cleanup } = await createTempDir('fso-looks-'));
  // Every look through the worker (by default a few at a time are made on the main thread).
  looker = createFileLooker({ burstLooks: 1 });
});
afterEach(async () => {
  await looker.close();
  await cleanup();
});

/** One path of each kind the agent meets, with what the worker must agree with fs on. */
async function makeTree(): Promise<Record<string, string>> {
  const p = (name: string): string => path.join(dir, name);
  await writeFile(p('small.conf'), 'port = 80\n');
  await writeFile(p('empty'), '');
  // Just under and just over what the worker hashes itself, and over the cap.
  await writeFile(p('at-limit.bin'), Buffer.alloc(SYNC_HASH_MAX_BYTES, 7));
  await writeFile(p('big.bin'), Buffer.alloc(SYNC_HASH_MAX_BYTES + 1, 9));
  await mkdir(p('sub'));
  await symlink('small.conf', p('link'));
  execFileSync('mkfifo', [p('fifo')]);
  await writeFile(p('not-a-dir'), 'x');
  return {
    small: p('small.conf'), empty: p('empty'), atLimit: p('at-limit.bin'), big: p('big.bin'), directory: p('sub'), symlink: p('link'),
    fifo: p('fifo'), missing: p('missing'), underAFile: p('not-a-dir/child'),
  };
}

describe('createFileLooker', () => {
  it("times each file it hashes (onHashed, for the agent's metrics), in the worker and streamed, and nothing it did not hash", async () => {
    const tree = await makeTree();
    const timed: number[] = [];
    for (const burstLooks of [1, 1000]) {
      // burstLooks 1: through the worker; 1000: a few looks, made on the main thread.
      const timing = createFileLooker({ burstLooks, onHashed: (seconds) => timed.push(seconds) });
      try {
        timed.length = 0;
        expect((await timing.hash(tree.small as string, MAX)).sha256).toBe(sha256('port = 80\n'));
        expect(await timing.hash(tree.big as string, MAX)).toMatchObject({ skipped: null });
        for (const skipped of [tree.fifo, tree.missing, tree.directory, tree.symlink]) expect((await timing.hash(skipped as string, MAX)).sha256).toBeNull();
        expect(await timing.hash(tree.big as string, 100)).toMatchObject({ skipped: 'too-large' });
        expect({ burstLooks, hashes: timed.length }).toEqual({ burstLooks, hashes: 2 });
        for (const seconds of timed) expect(seconds > 0 && seconds < 30, `${seconds} s`).toBe(true);
      } finally {
        await timing.close();
      }
    }
  });

  it('hashes every kind of path as hashFile does, within and over the cap', async () => {
    const tree = await makeTree();
    for (const maxBytes of [MAX, 100]) {
      for (const [name, p] of Object.entries(tree)) {
        expect({ name, maxBytes, result: await looker.hash(p, maxBytes) }).toEqual({ name, maxBytes, result: await hashFile(p, { maxBytes }) });
      }
    }
    expect(looker.answered).toEqual({ worker: 18, mainThread: 0 });
  });

  it('gives what lstat gives, and missing or an error code where lstat fails', async () => {
    const tree = await makeTree();
    for (const [name, p] of Object.entries(tree)) {
      const look = await looker.lstat(p);
      if (name === 'missing' || name === 'underAFile') {
        expect({ name, look }).toEqual({ name, look: { missing: true } });
        continue;
      }
      const real = await lstat(p);
      expect('stats' in look, name).toBe(true);
      if (!('stats' in look)) continue;
      const { stats } = look;
      expect({ name, dev: stats.dev, ino: stats.ino, mode: stats.mode, size: stats.size, mtimeMs: stats.mtimeMs, birthtimeMs: stats.birthtimeMs }).toEqual({
        name, dev: real.dev, ino: real.ino, mode: real.mode, size: real.size, mtimeMs: real.mtimeMs, birthtimeMs: real.birthtimeMs,
      });
      expect([stats.isFile(), stats.isDirectory(), stats.isSymbolicLink()], name).toEqual([real.isFile(), real.isDirectory(), real.isSymbolicLink()]);
    }
    expect(await looker.lstat(`${dir}/${'n'.repeat(300)}`)).toEqual({ error: 'ENAMETOOLONG' });
    expect(looker.answered).toEqual({ worker: 10, mainThread: 0 });
  });

  it('walks a tree in the worker with an lstat of every entry, as readdir and lstat do, not following links', async () => {
    await makeTree();
    await mkdir(path.join(dir, 'sub', 'deeper'), { recursive: true });
    await writeFile(path.join(dir, 'sub', 'deeper', 'leaf.txt'), 'leaf');
    await symlink('sub', path.join(dir, 'dir-link'));
    const fieldsOf = async (paths: string[]): Promise<Array<[string, number[]]>> =>
      Promise.all(paths.map(async (p): Promise<[string, number[]]> => {
        const s = await lstat(p);
        return [p, [s.dev, s.ino, s.mode, s.size, s.mtimeMs, s.birthtimeMs]];
      }));
    const scanned = (tree: TreeScan | null): Array<[string, number[]]> =>
      (tree?.found ?? []).map(([p, s]) => [p, [s.dev, s.ino, s.mode, s.size, s.mtimeMs, s.birthtimeMs]]);
    const byPath = (a: [string, unknown], b: [string, unknown]): number => a[0].localeCompare(b[0]);

    // Node's recursive readdir goes into the linked directory; the watcher (followSymlinks: false) and the scan do not.
    const all = (await readdir(dir, { recursive: true })).filter((n) => !n.startsWith('dir-link/')).map((n) => path.join(dir, n));
    expect(all).toContain(path.join(dir, 'sub', 'deeper', 'leaf.txt'));
    const tree = await looker.scan(dir, true);
    expect(scanned(tree).sort(byPath)).toEqual((await fieldsOf(all)).sort(byPath));
    expect(tree?.unreadable).toEqual([]);
    expect(tree?.found.find(([p]) => p.endsWith('dir-link'))?.[1].isSymbolicLink()).toBe(true);

    const top = (await readdir(dir)).map((n) => path.join(dir, n));
    expect(scanned(await looker.scan(dir, false)).sort(byPath)).toEqual((await fieldsOf(top)).sort(byPath));
    // A root that is gone has nothing in it; a looker that cannot walk says so.
    expect(await looker.scan(path.join(dir, 'missing'), true)).toEqual({ found: [], unreadable: [] });
    await looker.close();
    expect(await looker.scan(dir, true)).toBeNull();
  });

  it('answers each of a burst of looks made together with its own path', async () => {
    const names = Array.from({ length: 600 }, (_, i) => `f${i}`);
    await Promise.all(names.filter((_, i) => i % 3 !== 0).map((n) => writeFile(path.join(dir, n), n)));
    const [looks, hashes] = await Promise.all([
      Promise.all(names.map((n) => looker.lstat(path.join(dir, n)))),
      Promise.all(names.map((n) => looker.hash(path.join(dir, n), MAX))),
    ]);
    names.forEach((n, i) => {
      const exists = i % 3 !== 0;
      expect('stats' in looks[i]! ? looks[i]!.stats.size : 'missing').toBe(exists ? n.length : 'missing');
      // Each file holds its own name: an answer given to the wrong path shows here.
      expect(hashes[i]).toEqual(exists ? { sha256: sha256(n), size: n.length, skipped: null, mtimeMs: expect.any(Number) } : { sha256: null, size: null, skipped: 'vanished' });
    });
  });

  it('answers looks still in the worker at close, and looks after it, on the main thread', async () => {
    const file = path.join(dir, 'a');
    await writeFile(file, 'abc');
    const expected = await hashFile(file, { maxBytes: MAX });
    const inFlight = looker.hash(file, MAX);
    const lookInFlight = looker.lstat(file);
    // Queued for the next turn of the event loop; close before the worker answers.
    await new Promise((resolve) => setImmediate(resolve));
    expect(looker.workerRunning).toBe(true);
    const closed = looker.close();
    // A second call waits for the same termination (chokidar's habit), not for nothing.
    expect(looker.close()).toBe(closed);
    await closed;
    expect(looker.workerRunning).toBe(false);
    expect(await inFlight).toEqual(expected);
    expect('stats' in (await lookInFlight)).toBe(true);
    expect(await looker.hash(file, MAX)).toEqual(expected);
    expect(await looker.lstat(path.join(dir, 'nothing'))).toEqual({ missing: true });
    expect(looker.answered.worker + looker.answered.mainThread).toBe(4);
    expect(looker.answered.mainThread).toBeGreaterThanOrEqual(2);
  });

  it('answers looks asked and not yet sent to the worker when it closes', async () => {
    const file = path.join(dir, 'a');
    await writeFile(file, 'abc');
    // Queued for the next turn; close before that turn hands them to the worker.
    const queued = [looker.lstat(file), looker.hash(file, MAX)];
    const closing = looker.close();
    const [look, hash] = await Promise.all(queued);
    await closing;
    expect(look && 'stats' in look ? look.stats.size : look).toBe(3);
    expect(hash).toEqual(await hashFile(file, { maxBytes: MAX }));
    expect(looker.answered).toEqual({ worker: 0, mainThread: 2 });
  });

  it('makes a few looks at a time on the main thread, starts the worker for a burst, and ends it when idle', async () => {
    await looker.close();
    looker = createFileLooker({ burstLooks: 32, idleMs: 100 });
    const file = path.join(dir, 'a');
    await writeFile(file, 'abc');
    expect('stats' in (await looker.lstat(file))).toBe(true);
    expect(looker.answered).toEqual({ worker: 0, mainThread: 1 });
    expect(looker.workerRunning).toBe(false);
    const burst = async (): Promise<void> => {
      const looks = await Promise.all(Array.from({ length: 40 }, () => looker.lstat(file)));
      expect(looks.every((l) => 'stats' in l && l.stats.size === 3)).toBe(true);
    };
    await burst();
    expect(looker.answered).toEqual({ worker: 40, mainThread: 1 });
    expect(looker.workerRunning).toBe(true);
    await waitFor(() => !looker.workerRunning || undefined, 'the idle worker to end');
    // A later burst starts a new one.
    await burst();
    expect(looker.answered).toEqual({ worker: 80, mainThread: 1 });
  });

  it('gives up a worker that does not answer in time and makes its looks on the main thread', async () => {
    await looker.close();
    // 1 ms: hashing 20 files of 1 MiB takes longer, as a stuck file system would.
    looker = createFileLooker({ burstLooks: 1, stallMs: 1 });
    const files = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const p = path.join(dir, `big${i}`);
        const content = Buffer.alloc(SYNC_HASH_MAX_BYTES, i);
        await writeFile(p, content);
        return { p, expected: sha256(content) };
      }),
    );
    const hashes = await Promise.all(files.map(({ p }) => looker.hash(p, MAX)));
    expect(hashes.map((h) => h.sha256)).toEqual(files.map((f) => f.expected));
    expect(looker.answered.mainThread).toBe(20);
    expect(looker.answered.worker).toBe(0);
  });
});
