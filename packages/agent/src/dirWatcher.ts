import { watch } from 'node:fs';
import type { Dirent, FSWatcher } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';

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
  /** A directory could not be watched or listed (but for it having vanished). */
  onError: (err: unknown, dir: string) => void;
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
   * scan). Resolves when the listing (and walk) is done.
   */
  add(dir: string, walk?: boolean): Promise<void>;
  has(dir: string): boolean;
  /** Stops watching `dir` and every watched directory below it. */
  remove(dir: string): void;
  /** Directories watched now. */
  readonly size: number;
  close(): void;
}

/** Directories listed at once by a walk (one readdir each through libuv's pool). */
const LIST_CONCURRENCY = 8;

const isKnownType = (d: Dirent): boolean =>
  d.isFile() || d.isDirectory() || d.isSymbolicLink() || d.isFIFO() || d.isSocket() || d.isBlockDevice() || d.isCharacterDevice();

/** Starts an empty set of directory watches; see {@link DirWatcher}. */
export function createDirWatcher(options: DirWatcherOptions): DirWatcher {
  const watchers = new Map<string, FSWatcher>();
  let closed = false;

  const tryWatch = (dir: string): boolean => {
    if (watchers.has(dir)) return false;
    try {
      const w = watch(dir, { persistent: true }, (_event, name) => options.onNotification(dir, typeof name === 'string' ? name : null));
      w.on('error', (err) => {
        if (watchers.get(dir) === w) watchers.delete(dir);
        w.close();
        options.onError(err, dir);
      });
      watchers.set(dir, w);
      return true;
    } catch (err) {
      const code = errorCode(err);
      // Gone, or no longer a directory, by the time it was watched: its parent's watch tells.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') options.onError(err, dir);
      return false;
    }
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
    for (const entry of entries) {
      if (closed) return [];
      const p = path.join(dir, entry.name);
      let isDirectory = entry.isDirectory();
      // Some file systems leave the type unknown (DT_UNKNOWN): ask.
      if (!isKnownType(entry)) isDirectory = await lstat(p).then((s) => s.isDirectory(), () => false);
      if (isDirectory && options.ignoresDirectory(p)) continue;
      options.onListed(p, isDirectory);
      if (isDirectory) subdirectories.push(p);
    }
    return subdirectories;
  };

  const add = async (dir: string, walk = false): Promise<void> => {
    if (closed || options.ignoresDirectory(dir) || !tryWatch(dir)) return;
    const first = await list(dir);
    if (!walk) return;
    const queue = [...first];
    const worker = async (): Promise<void> => {
      for (let next = queue.pop(); next !== undefined && !closed; next = queue.pop()) {
        if (tryWatch(next)) queue.push(...(await list(next)));
      }
    };
    // Workers end when the queue is empty even if another's listing refills it: go again.
    while (queue.length > 0 && !closed) await Promise.all(Array.from({ length: LIST_CONCURRENCY }, worker));
  };

  return {
    add,
    has: (dir) => watchers.has(dir),
    remove(dir) {
      const below = `${dir}${path.sep}`;
      for (const [p, w] of watchers) {
        if (p !== dir && !p.startsWith(below)) continue;
        watchers.delete(p);
        w.close();
      }
    },
    get size() {
      return watchers.size;
    },
    close() {
      closed = true;
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
