import { lstatSync, watch } from 'node:fs';
import type { Dirent, FSWatcher, Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';
import { sameBirth } from './baseline.js';

/** Options of {@link createDirWatcher}. */
export interface DirWatcherOptions {
  /** Directories never watched nor listed (excluded by the watch's patterns). */
  ignoresDirectory: (dirPath: string) => boolean;
  /**
   * One fs.watch notification: `dir` is the watched directory, `name` the
   * child it names (the directory's own name when the directory itself was
   * deleted or moved: inotify's IN_DELETE_SELF / IN_MOVE_SELF).
   */
  onNotification: (dir: string, name: string | null) => void;
  /** An entry found by listing a directory (a start-up walk, or a directory that just appeared). */
  onListed: (entryPath: string, isDirectory: boolean) => void;
  /** A directory was listed after its watch was set: `names` is everything in it (what is not, is gone). */
  onListedAll?: (dir: string, names: ReadonlySet<string>) => void;
  /** A directory could not be watched or listed (but for it having vanished). */
  onError: (err: unknown, dir: string) => void;
  /** A directory's watch was set (true) or dropped (false): who-data remembers the directories watched. */
  onWatch?: (dir: string, watched: boolean) => void;
}

/**
 * One inotify watch per directory, none per file: a directory's watch names
 * every child that is created, written, attribute-changed, moved or deleted
 * (IN_CREATE, IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM/TO, IN_DELETE), which is
 * all the reconciler needs: it looks at the path itself. chokidar adds a
 * watch on every file and re-reads (and lstats every entry of) a directory
 * on each notification in it; for the agent that was a third of its CPU in
 * a burst, twice the notifications in the kernel's queue (so overflows came
 * sooner) and a hundred times the watches (fs.inotify.max_user_watches).
 */
export interface DirWatcher {
  /**
   * Watches `dir` unless it is watched already, then lists it (each entry to
   * `onListed`), watch first so that nothing made in between is missed.
   * With `walk`, every subdirectory listed is added the same way (a start-up
   * scan). With `ino` (the directory's inode, as just looked at, and its
   * birth time: ext4 gives a freed inode number to the next new directory
   * at once), a watch kept under that name for another directory (moved
   * away, or deleted and made again) is dropped, with the watches below it, and the name watched
   * anew. A directory that cannot be watched (the watch limit) is listed all
   * the same, and tried again by {@link retry}. Resolves when the listing
   * (and walk) is done.
   */
  add(dir: string, options?: { walk?: boolean; ino?: number; birthtimeMs?: number }): Promise<void>;
  has(dir: string): boolean;
  /** Device, inode and birth time (0 where the file system has none) of the directory watched under `dir`. */
  identity(dir: string): DirIdentity | undefined;
  /** Stops watching `dir` and every watched directory below it. */
  remove(dir: string): void;
  /** Like remove, unless `dir` still is the directory its watch was made for (a delete reported late). */
  removeIfGone(dir: string): void;
  /** Adds again the directories whose watch failed; resolves when they are listed. */
  retry(): Promise<void>;
  /** Directories watched now. */
  readonly size: number;
  close(): void;
}

/** Directories listed at once by a walk (one readdir each through libuv's pool). */
const LIST_CONCURRENCY = 8;

const lstatOrNull = (p: string): Stats | null => {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
};

const isKnownType = (d: Dirent): boolean =>
  d.isFile() || d.isDirectory() || d.isSymbolicLink() || d.isFIFO() || d.isSocket() || d.isBlockDevice() || d.isCharacterDevice();

/** Which directory a name holds: device, inode and birth time (0 where the file system has none). */
export interface DirIdentity {
  dev: number;
  ino: number;
  birthtimeMs: number;
}

/** True when two looks are of one directory (a reused inode number has another birth time). */
export function sameDirectory(a: DirIdentity, b: DirIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && sameBirth(a.birthtimeMs, b.birthtimeMs);
}

interface Watched extends DirIdentity {
  watch: FSWatcher;
}

/** Starts an empty set of directory watches; see {@link DirWatcher}. */
export function createDirWatcher(options: DirWatcherOptions): DirWatcher {
  const watchers = new Map<string, Watched>();
  /** dev:ino → the name it is watched under. */
  const names = new Map<string, string>();
  /** Directories whose watch failed (other than by vanishing). */
  const unwatched = new Set<string>();
  let closed = false;

  const remove = (dir: string): void => {
    const below = `${dir}${path.sep}`;
    for (const [p, w] of watchers) {
      if (p !== dir && !p.startsWith(below)) continue;
      watchers.delete(p);
      const key = `${w.dev}:${w.ino}`;
      if (names.get(key) === p) names.delete(key);
      w.watch.close();
      options.onWatch?.(p, false);
    }
    for (const p of unwatched) if (p === dir || p.startsWith(below)) unwatched.delete(p);
  };

  /** 'listed': watched now, or it could not be (it is listed all the same); 'skip': watched already, or gone. */
  const tryWatch = (dir: string): 'listed' | 'skip' => {
    if (watchers.has(dir)) return 'skip';
    const before = lstatOrNull(dir);
    if (!before?.isDirectory()) return 'skip';
    let w: FSWatcher;
    try {
      w = watch(dir, { persistent: true }, (_event, name) => options.onNotification(dir, typeof name === 'string' ? name : null));
    } catch (err) {
      const code = errorCode(err);
      // Gone, or no longer a directory, by the time it was watched: its parent's watch tells.
      if (code === 'ENOENT' || code === 'ENOTDIR') return 'skip';
      unwatched.add(dir);
      options.onError(err, dir);
      return 'listed';
    }
    // fs.watch follows a symbolic link, and the directory may have been replaced in between:
    // the watch counts only if the same directory is there before and after it (else the
    // replacement's own notification brings the new one here again).
    const stats = lstatOrNull(dir);
    if (!stats?.isDirectory() || !sameDirectory(stats, before)) {
      w.close();
      return 'skip';
    }
    w.on('error', (err) => {
      if (watchers.get(dir)?.watch === w) {
        remove(dir);
        unwatched.add(dir);
      }
      w.close();
      options.onError(err, dir);
    });
    const key = `${stats.dev}:${stats.ino}`;
    const oldName = names.get(key);
    // The same directory under the name it had before a rename: that watch would name old paths.
    if (oldName !== undefined && oldName !== dir) remove(oldName);
    watchers.set(dir, { watch: w, dev: stats.dev, ino: stats.ino, birthtimeMs: stats.birthtimeMs });
    names.set(key, dir);
    unwatched.delete(dir);
    options.onWatch?.(dir, true);
    return 'listed';
  };

  /** Lists `dir`; returns its subdirectories (for a walk). */
  const list = async (dir: string): Promise<string[]> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = errorCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') options.onError(err, dir);
      return [];
    }
    const subdirectories: string[] = [];
    const listed = new Set<string>();
    for (const entry of entries) {
      if (closed) return [];
      listed.add(entry.name);
      const p = path.join(dir, entry.name);
      let isDirectory = entry.isDirectory();
      // Some file systems leave the type unknown (DT_UNKNOWN): ask.
      if (!isKnownType(entry)) isDirectory = await lstat(p).then((s) => s.isDirectory(), () => false);
      if (isDirectory && options.ignoresDirectory(p)) continue;
      options.onListed(p, isDirectory);
      if (isDirectory) subdirectories.push(p);
    }
    options.onListedAll?.(dir, listed);
    return subdirectories;
  };

  const add = async (dir: string, { walk = false, ino, birthtimeMs = 0 }: { walk?: boolean; ino?: number; birthtimeMs?: number } = {}): Promise<void> => {
    if (closed || options.ignoresDirectory(dir)) return;
    const known = watchers.get(dir);
    if (known) {
      if (ino === undefined || (known.ino === ino && sameBirth(known.birthtimeMs, birthtimeMs))) return;
      remove(dir);
    }
    if (tryWatch(dir) === 'skip') return;
    const first = await list(dir);
    if (!walk) return;
    const queue = [...first];
    const worker = async (): Promise<void> => {
      for (let next = queue.pop(); next !== undefined && !closed; next = queue.pop()) {
        if (tryWatch(next) === 'listed') queue.push(...(await list(next)));
      }
    };
    // Workers end when the queue is empty even if another's listing refills it: go again.
    while (queue.length > 0 && !closed) await Promise.all(Array.from({ length: LIST_CONCURRENCY }, worker));
  };

  return {
    add,
    has: (dir) => watchers.has(dir),
    identity(dir) {
      const w = watchers.get(dir);
      return w && { dev: w.dev, ino: w.ino, birthtimeMs: w.birthtimeMs };
    },
    remove,
    removeIfGone(dir) {
      const w = watchers.get(dir);
      const now = lstatOrNull(dir);
      // Still the watched directory; or another directory took the name without a watch of its own yet (what is below is its).
      if (now?.isDirectory() && (!w || sameDirectory(now, w))) return;
      remove(dir);
    },
    async retry() {
      const dirs = [...unwatched];
      unwatched.clear();
      for (const dir of dirs) await add(dir);
    },
    get size() {
      return watchers.size;
    },
    close() {
      closed = true;
      for (const [dir, w] of watchers) {
        w.watch.close();
        options.onWatch?.(dir, false);
      }
      watchers.clear();
      names.clear();
      unwatched.clear();
    },
  };
}
