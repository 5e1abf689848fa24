import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { watch } from 'chokidar';
import type { FSWatcher } from 'chokidar';
import { errorCode } from '@fso/common';
import type { Logger, WatchSpec, WatchState } from '@fso/common';
import { Baseline, baselineFileName } from './baseline.js';
import type { Entry } from './baseline.js';
import type { BaselineOp } from './journal.js';
import { createWatchFilter } from './filters.js';
import type { WatchFilter } from './filters.js';
import type { FileLooker } from './fileLooks.js';
import { Reconciler } from './reconciler.js';
import type { Change } from './reconciler.js';

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
  onChange: (change: Change, filter: WatchFilter) => void;
  onMove?: (oldPath: string, newPath: string) => void;
  onRecorded?: (path: string, entry: Entry, filter: WatchFilter) => void;
  /** Baseline changes of changes that are not reported (filtered out): journaled all the same. */
  onUnreported?: (ops: BaselineOp[]) => void;
  /** Ready, error or entry count changed. */
  onState?: () => void;
  /** Every fs.watch notification, before any filtering (the agent's inotify overflow monitor counts them). */
  onNotification?: () => void;
}

/** One watched root: chokidar, the reconciler and the saved baseline. */
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
  /** Settles pending pairs, saves the baseline, releases chokidar and timers. */
  close(): Promise<void>;
}

/**
 * The paths a raw notification of fs.watch hints at. A file's own watch names
 * the file itself; a directory's names a child. The baseline may not know the
 * watched path yet (`known` undefined): a directory made in a burst is decided
 * after the pair window, and what is made in it meanwhile must still be
 * hinted, so an unknown path hints both.
 */
export function hintedPaths(watchedPath: string, name: string, known: Entry['kind'] | undefined): string[] {
  if (known === 'directory') return [path.join(watchedPath, name)];
  if (known !== undefined && name === path.basename(watchedPath)) return [watchedPath];
  return [watchedPath, path.join(watchedPath, name)];
}

const ROOT_POLL_MS = 1000;
const BASELINE_SAVE_MS = 30_000;

/**
 * Starts watching one root. A missing root is waited for (status says so);
 * a root deleted while watched is reported and waited for again.
 *
 * @example
 * const w = await startRootWatcher({ spec, log, stateDir, hashMaxBytes, pairWindowMs: 200, onChange });
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
  const firstStart = saved === null;
  if (firstStart) log.info('first start on this root: recording a baseline without events');

  const reconciler = new Reconciler({
    root, log, baseline, quiet: firstStart || options.quiet === true, scanning: true,
    hashMaxBytes: options.hashMaxBytes, pairWindowMs: options.pairWindowMs, looker: options.looker,
    ignores: (p, isDirectory) => filter.ignores(p, isDirectory),
    onChange: (change) => {
      if (ready && change.origin === 'scan' && change.kind === 'directory' && (change.type === 'create' || change.type === 'rename')) {
        watchFoundDirectory(change.path);
      }
      if (filter.reportsEventType(change.type) && (change.kind !== 'directory' || filter.reportsDirectory(change.path))) {
        options.onChange(change, filter);
      } else if (change.ops.length > 0) {
        options.onUnreported?.(change.ops);
      }
    },
    onMove: options.onMove,
    onRecorded: (p, entry) => options.onRecorded?.(p, entry, filter),
  });

  let watcher: FSWatcher | undefined;
  let ready = false;
  /** Directories a rescan found, to be checked against what chokidar watches. */
  const foundDirectories = new Set<string>();
  let checkScheduled = false;
  /**
   * A directory made while the kernel dropped notifications (an inotify
   * overflow) was never seen by chokidar, so nothing in it would be watched:
   * the rescan reports it, and this makes chokidar watch it from then on.
   */
  const watchFoundDirectory = (p: string): void => {
    if (!options.spec.recursive) return;
    foundDirectories.add(p);
    if (checkScheduled) return;
    checkScheduled = true;
    setImmediate(() => {
      checkScheduled = false;
      const w = watcher;
      const candidates = [...foundDirectories];
      foundDirectories.clear();
      if (!w || closing) return;
      const watched = w.getWatched();
      const missing = candidates.filter((d) => watched[d] === undefined);
      if (missing.length === 0) return;
      log.info({ directories: missing.length, first: missing[0] }, 'watching directories the watcher had missed');
      w.add(missing);
    });
  };
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
    options.onState?.();
  };

  const rootIsDirectory = async (): Promise<boolean> => {
    try {
      return (await lstat(root)).isDirectory();
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return false;
      throw err;
    }
  };

  const waitForRoot = (reason: string): void => {
    setState(false, reason);
    log.warn({ reason }, 'watched directory unavailable; waiting for it');
    resolveReady();
    pollTimer = setInterval(() => {
      rootIsDirectory().then(
        (exists) => {
          if (!exists || closing || watcher) return;
          clearInterval(pollTimer);
          pollTimer = undefined;
          log.info('watched directory appeared');
          reconciler.setScanning(true, false);
          startChokidar();
        },
        (err: unknown) => log.error({ err }, 'cannot check watched directory'),
      );
    }, ROOT_POLL_MS);
    pollTimer.unref();
  };

  const onRootGone = async (): Promise<void> => {
    await reconciler.idle();
    if (closing || (await rootIsDirectory())) return;
    const old = watcher;
    watcher = undefined;
    await old?.close();
    // Everything below it is gone too: report what chokidar did not.
    await reconciler.sweepUnseen(new Set(), false);
    waitForRoot('deleted while watched');
  };

  const startChokidar = (): void => {
    const seen = new Set<string>();
    let scanning = true;
    const w = watch(root, {
      persistent: true,
      ignoreInitial: false,
      followSymlinks: false,
      // chokidar's atomic mode hides editor temp files (*.swp, *~); an audit reports them.
      atomic: false,
      alwaysStat: false,
      // With `false`, chokidar silently drops every file without the owner-read bit
      // (mode 000 files like /etc/gshadow, even for root): the reconciler reports
      // unreadable paths itself.
      ignorePermissionErrors: true,
      depth: options.spec.recursive ? undefined : 0,
      ignored: (p: string, stats?: { isDirectory(): boolean }) => filter.ignores(p, stats ? stats.isDirectory() : undefined),
    });
    watcher = w;
    w.on('all', (event, p) => {
      const now = Date.now();
      if (scanning) seen.add(p);
      if (p === root) {
        if (event === 'unlinkDir') void onRootGone();
        return;
      }
      reconciler.touch(p, now);
    });
    /** A hint from a raw notification: looked at unless outside the watch or left out by its patterns. */
    const touchHinted = (candidate: string): void => {
      if (candidate === root || !candidate.startsWith(`${root}/`)) return;
      if (!options.spec.recursive && path.dirname(candidate) !== root) return;
      if (!filter.ignores(candidate, undefined)) reconciler.touch(candidate);
    };
    w.on('raw', (_event: string, name: unknown, details: unknown) => {
      options.onNotification?.();
      if (typeof name !== 'string' || name === '') return;
      // fs.watch decodes names as UTF-8; a name that is not valid UTF-8 cannot be opened by that string.
      if (name.includes('\uFFFD')) {
        reconciler.warnUnobservable(name);
        return;
      }
      // chokidar learns of a file's changes from a watch on the file itself, which fails
      // (silently) where the agent may not read it; the directory's own watch still
      // names the child, so that hint is used too. Repeated hints of one path coalesce.
      const watchedPath = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
      if (typeof watchedPath !== 'string') return;
      for (const p of hintedPaths(watchedPath, name, watchedPath === root ? 'directory' : baseline.get(watchedPath)?.kind)) touchHinted(p);
    });
    w.on('error', (err: unknown) => {
      const code = errorCode(err);
      if (code === 'ENOSPC') log.error({ err }, 'inotify watch limit reached (fs.inotify.max_user_watches): rescanning; raise the limit');
      else log.warn({ err }, 'watcher error; rescanning');
      void rescan();
    });
    w.on('ready', () => {
      void (async () => {
        await reconciler.idle();
        await reconciler.sweepUnseen(seen, reconciler.baseline.size > 0 && firstStart);
        reconciler.setScanning(false, false);
        scanning = false;
        seen.clear();
        await reconciler.idle();
        await saveSnapshot();
        log.info({ entries: baseline.size }, 'watching');
        setState(true, null);
        resolveReady();
      })();
    });
  };

  const rescan = async (): Promise<void> => {
    if (closing || !watcher) return;
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

  if (await rootIsDirectory()) startChokidar();
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
        const w = watcher;
        watcher = undefined;
        await w?.close();
        await reconciler.close();
        await saveSnapshot();
      })();
      return closing;
    },
  };
}
