import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';
import type { Logger, WatchSpec, WatchState } from '@fso/common';
import { Baseline, baselineFileName } from './baseline.js';
import type { Entry } from './baseline.js';
import type { BaselineOp } from '../delivery/journal.js';
import { createDirWatcher, sameDirectory } from './dirWatcher.js';
import type { DirIdentity, DirWatcher } from './dirWatcher.js';
import { createWatchFilter } from './filters.js';
import type { WatchFilter } from './filters.js';
import type { FileLooker } from './fileLooks.js';
import { Reconciler } from './reconciler.js';
import type { Change } from './reconciler.js';

/**
 * Where one root's watcher reports: one typed object handed in with the
 * options, not an EventEmitter, because the watcher reports during its own
 * async factory (a missing root's state, the start-up scan under way) before
 * a caller holding the returned watcher could attach a listener.
 */
export interface WatchSink {
  /** A change the watch reports (its event types and directory patterns allow it), with the filter that decided so. */
  change(change: Change, filter: WatchFilter): void | Promise<void>;
  /** A path was renamed (files below a renamed directory too): what is kept for the old path now belongs to the new one. */
  move?(oldPath: string, newPath: string): void;
  /** A path was recorded in the baseline without an event (a quiet scan: a first start, a pattern change), with the root's filter. */
  recorded?(path: string, entry: Entry, filter: WatchFilter): void;
  /** Baseline changes of changes that are not reported (filtered out): journaled all the same. */
  unreported?(ops: BaselineOp[]): void;
  /** Ready, error or entry count changed. */
  state?(): void;
  /** Every fs.watch notification, before any filtering (the agent's inotify overflow monitor counts them). */
  notification?(): void;
  /** A directory's watch was set or dropped (who-data remembers the watched directories). */
  directory?(dir: string, watched: boolean): void;
}

/** Options of {@link startRootWatcher}. */
export interface RootWatcherOptions {
  spec: WatchSpec;
  log: Logger;
  /** Folder where this root's baseline is kept. */
  stateDir: string;
  hashMaxBytes: number;
  pairWindowMs: number;
  /** Looks at paths and hashes files (see fileLooks.ts); default: the process's shared one. */
  looker?: FileLooker;
  /** Record what is there without events even if a baseline exists (a pattern change of a running watch). */
  quiet?: boolean;
  /** A baseline handed over from the previous watcher of the same root. */
  baseline?: Baseline;
  /**
   * Save the baseline snapshot itself (at ready, every 30 s, at close). The
   * agent says no: it journals every baseline change with its event instead,
   * so the snapshot is never ahead of what was published. Default true.
   */
  saveSnapshots?: boolean;
  /** Where the watcher reports what it sees (see {@link WatchSink}). */
  sink: WatchSink;
}

/** One watched root: its directory watches, the reconciler and the saved baseline. */
export interface RootWatcher {
  readonly root: string;
  readonly spec: WatchSpec;
  readonly filter: WatchFilter;
  readonly baseline: Baseline;
  state(): WatchState;
  /** Resolves when the initial scan is done and compared with the baseline. */
  ready(): Promise<void>;
  /** Walks the tree and checks every path: catches what the OS dropped. */
  rescan(): Promise<void>;
  /** Keeps vanished paths pending until the release is called (see Reconciler.holdDeletes): around an overflow's rescan. */
  holdDeletes(): () => void;
  /** Settles pending pairs, saves the baseline, releases the watches and timers; a second call returns the same promise. */
  close(): Promise<void>;
}

/**
 * The paths a notification of a directory's watch hints at: the child it
 * names, and the directory itself when the name is its own (inotify names a
 * watched directory that was deleted or moved away, IN_DELETE_SELF and
 * IN_MOVE_SELF, by its own name; a child may have that name too).
 */
export function hintedPaths(dir: string, name: string): string[] {
  const child = path.join(dir, name);
  return name === path.basename(dir) ? [dir, child] : [child];
}

const ROOT_POLL_MS = 1000;
const BASELINE_SAVE_MS = 30_000;

/**
 * Starts watching one root. A missing root is waited for (status says so);
 * a root deleted while watched is reported and waited for again.
 *
 * @example
 * const w = await startRootWatcher({ spec, log, stateDir, hashMaxBytes, pairWindowMs: 200, sink: { change: (change) => log.info({ change }, 'changed') } });
 * await w.ready();
 */
export async function startRootWatcher(options: RootWatcherOptions): Promise<RootWatcher> {
  const root = path.resolve(options.spec.path);
  const log = options.log.child({ component: 'watcher', root });
  const filter = createWatchFilter(options.spec);
  const baselineFile = path.join(options.stateDir, baselineFileName(root));
  const saved = options.baseline ?? (await Baseline.load(baselineFile, log));
  const baseline = saved ?? new Baseline();
  // Drop what the (new) patterns no longer cover, silently: it is a config change, not a file change.
  baseline.retain((p) => p.startsWith(`${root}/`) && !filter.ignores(p, baseline.get(p)?.kind === 'directory'));
  /** No baseline was saved: the first walk records one without events (false after it, so a root replaced later is reported). */
  let firstStart = saved === null;
  if (firstStart) log.info('first start on this root: recording a baseline without events');

  const reconciler = new Reconciler({
    root, log, baseline, quiet: firstStart || options.quiet === true, scanning: true,
    hashMaxBytes: options.hashMaxBytes, pairWindowMs: options.pairWindowMs, looker: options.looker,
    ignores: (p, isDirectory) => filter.ignores(p, isDirectory),
    sink: {
      change(change) {
        if (change.kind === 'directory' && change.type === 'delete') dirs?.removeIfGone(change.path);
        if (filter.reportsEventType(change.type) && (change.kind !== 'directory' || filter.reportsDirectory(change.path))) {
          return options.sink.change(change, filter);
        } else if (change.ops.length > 0) {
          options.sink.unreported?.(change.ops);
        }
      },
      move(oldPath, newPath) {
        // The new name is watched by now (directory(), when it was looked at); the old one's watch would name the old paths.
        if (dirs?.has(oldPath)) dirs.removeIfGone(oldPath);
        options.sink.move?.(oldPath, newPath);
      },
      recorded: (p, entry) => options.sink.recorded?.(p, entry, filter),
      directory(p, stats) {
        if (options.spec.recursive) void dirs?.add(p, { ino: stats.ino, birthtimeMs: stats.birthtimeMs });
      },
    },
  });

  let dirs: DirWatcher | undefined;
  let ready = false;
  let error: string | null = null;
  let closing: Promise<void> | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let resolveReady!: () => void;
  const readyPromise = new Promise<void>((resolve) => (resolveReady = resolve));
  const saveSnapshot = async (): Promise<void> => {
    if (options.saveSnapshots === false) return;
    await baseline.save(baselineFile).catch((err: unknown) => log.error({ err }, 'cannot save baseline'));
  };
  const saveTimer = setInterval(() => {
    if (baseline.dirty) void saveSnapshot();
  }, BASELINE_SAVE_MS);
  saveTimer.unref();

  const setState = (nextReady: boolean, nextError: string | null): void => {
    ready = nextReady;
    error = nextError;
    options.sink.state?.();
  };

  /** Device and inode of the directory at the root's path; null when there is none. */
  const rootDirectory = async (): Promise<DirIdentity | null> => {
    try {
      const stats = await lstat(root);
      return stats.isDirectory() ? { dev: stats.dev, ino: stats.ino, birthtimeMs: stats.birthtimeMs } : null;
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return null;
      throw err;
    }
  };

  const waitForRoot = (reason: string): void => {
    setState(false, reason);
    log.warn({ reason }, 'watched directory unavailable; waiting for it');
    resolveReady();
    pollTimer = setInterval(() => {
      rootDirectory().then(
        (found) => {
          if (!found || closing || dirs) return;
          clearInterval(pollTimer);
          pollTimer = undefined;
          log.info('watched directory appeared');
          reconciler.setScanning(true, false);
          startWatching();
        },
        (err: unknown) => log.error({ err }, 'cannot check watched directory'),
      );
    }, ROOT_POLL_MS);
    pollTimer.unref();
  };

  /**
   * The root's own watch named the root: it may be gone (reported, then
   * waited for), or another directory may have taken its name (watched
   * anew: a walk compared with the baseline reports what differs).
   */
  const onRootGone = async (): Promise<void> => {
    // Not idle(): on a tree that keeps changing it may never come.
    await reconciler.caughtUp();
    const watched = dirs?.identity(root);
    if (closing || !dirs) return;
    const now = await rootDirectory();
    if (now && watched && sameDirectory(now, watched)) return;
    const old = dirs;
    dirs = undefined;
    old.close();
    if (now) {
      log.warn('watched directory was replaced by another: watching the new one');
      setState(false, null);
      reconciler.setScanning(true, false);
      startWatching();
      return;
    }
    // Everything below it is gone too.
    await reconciler.sweepUnseen(new Set(), false);
    waitForRoot('deleted while watched');
  };

  /** Directories whose watch failed, said once each (bounded). */
  const unwatchable = new Set<string>();
  /**
   * A directory that cannot be watched is listed all the same, and its watch
   * is tried again by each rescan (an overflow's, or --rescan-interval's); a
   * rescan per failure would storm when every watch fails (EMFILE, ENOSPC).
   */
  const onWatchError = (err: unknown, dir: string): void => {
    const code = errorCode(err);
    if (unwatchable.has(dir)) return;
    if (unwatchable.size > 10_000) unwatchable.clear();
    unwatchable.add(dir);
    if (code === 'ENOSPC') {
      log.error({ err, dir }, 'inotify watch limit reached (fs.inotify.max_user_watches): the directory is listed, but changes in it are seen only by a rescan (--rescan-interval), which tries the watch again; raise the limit');
    } else if (code === 'EACCES' || code === 'EPERM') log.warn({ code, dir }, 'cannot watch directory; changes inside it are not seen');
    else log.warn({ err, dir }, 'cannot watch directory: changes in it are seen only by a rescan (--rescan-interval), which tries the watch again');
  };

  let checkingRoot = false;
  /** The root's own watch named the root (IN_DELETE_SELF, IN_MOVE_SELF, or a child of the same name). */
  const checkRoot = (): void => {
    if (checkingRoot) return;
    checkingRoot = true;
    onRootGone()
      .catch((err: unknown) => log.error({ err }, 'cannot check the watched directory'))
      .finally(() => (checkingRoot = false));
  };

  const startWatching = (): void => {
    const seen = new Set<string>();
    let scanning = true;
    /** A hint: looked at unless outside the watch or left out by its patterns. */
    const touchHinted = (candidate: string, isDirectory?: boolean): void => {
      if (candidate === root || !candidate.startsWith(`${root}/`)) return;
      if (!options.spec.recursive && path.dirname(candidate) !== root) return;
      if (!filter.ignores(candidate, isDirectory)) reconciler.touch(candidate);
    };
    const d = createDirWatcher({
      ignoresDirectory: (p) => p !== root && filter.ignores(p, true),
      onWatch: options.sink.directory,
      onNotification: (dir, name) => {
        options.sink.notification?.();
        if (name === null || name === '') {
          touchHinted(dir);
          return;
        }
        // fs.watch decodes names as UTF-8; a name that is not valid UTF-8 cannot be opened by that string.
        if (name.includes('\uFFFD')) {
          reconciler.warnUnobservable(name);
          return;
        }
        if (dir === root && name === path.basename(root)) checkRoot();
        for (const p of hintedPaths(dir, name)) touchHinted(p);
      },
      onListed: (p, isDirectory) => {
        if (scanning) seen.add(p);
        touchHinted(p, isDirectory);
      },
      // A directory watched anew while live (renamed, replaced, its watch retried): what was
      // deleted from it while no watch named it under this path is missing from the listing.
      onListedAll: (dir, names) => {
        if (scanning || baseline.get(dir)?.kind !== 'directory') return;
        for (const p of baseline.subtree(dir)) if (path.dirname(p) === dir && !names.has(path.basename(p))) touchHinted(p);
      },
      onError: onWatchError,
    });
    dirs = d;
    void (async () => {
      await d.add(root, { walk: options.spec.recursive === true });
      if (dirs !== d) return;
      await reconciler.idle();
      await reconciler.sweepUnseen(seen, reconciler.baseline.size > 0 && firstStart);
      firstStart = false;
      reconciler.setScanning(false, false);
      scanning = false;
      seen.clear();
      await reconciler.idle();
      await saveSnapshot();
      log.info({ entries: baseline.size, directories: d.size }, 'watching');
      setState(true, null);
      resolveReady();
    })().catch((err: unknown) => log.error({ err }, 'start-up scan failed'));
  };

  const rescan = async (): Promise<void> => {
    if (closing || !dirs) return;
    await dirs.retry();
    if (await reconciler.touchChanged(options.spec.recursive === true)) {
      // Not idle(): on a tree that keeps changing (when overflows happen) it may never come.
      await reconciler.caughtUp();
      return;
    }
    const found = new Set<string>();
    try {
      const names = await readdir(root, { recursive: options.spec.recursive });
      for (const name of names) {
        const p = path.join(root, name);
        if (!filter.ignores(p, undefined)) found.add(p);
      }
    } catch (err) {
      log.warn({ err }, 'rescan could not read the tree');
    }
    const now = Date.now();
    for (const p of found) reconciler.touch(p, now, true);
    for (const p of baseline.paths()) if (!found.has(p)) reconciler.touch(p, now, true);
    // Not idle(): on a tree that keeps changing (when overflows happen) it may never come.
    await reconciler.caughtUp();
  };

  if (await rootDirectory()) startWatching();
  else waitForRoot('does not exist or is not a directory');

  return {
    root,
    spec: options.spec,
    filter,
    baseline,
    state: () => ({ path: root, ready, entries: baseline.size, error }),
    ready: () => readyPromise,
    rescan,
    holdDeletes: () => reconciler.holdDeletes(),
    close() {
      closing ??= (async () => {
        clearInterval(saveTimer);
        if (pollTimer) clearInterval(pollTimer);
        dirs?.close();
        dirs = undefined;
        await reconciler.close();
        await saveSnapshot();
      })();
      return closing;
    },
  };
}
