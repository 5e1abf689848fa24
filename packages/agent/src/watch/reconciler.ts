import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';
import type { Logger, Origin } from '@fso/common';
import { entryFromStats, kindOf, sameInode } from './baseline.js';
import type { Baseline, Entry, FileStats } from './baseline.js';
import { defaultFileLooker } from './fileLooks.js';
import type { FileLooker, Look } from './fileLooks.js';
import { ChangeEmitter } from './changeEmitter.js';
import { RenamePairing } from './renamePairing.js';
import type { PendingDelete } from './renamePairing.js';
import type { Change, ChangeSink } from './changeEmitter.js';

export type { Change } from './changeEmitter.js';

/** Options of {@link Reconciler}. */
export interface ReconcilerOptions {
  root: string;
  log: Logger;
  baseline: Baseline;
  /** Record what is found without reporting it (an agent's first start, a pattern change). */
  quiet: boolean;
  /** True while the initial scan runs: changes found are `origin: "scan"`. */
  scanning: boolean;
  hashMaxBytes: number;
  /**
   * How long a new path waits for being renamed over an existing file (an
   * editor's atomic save), and at most a vanished path for its rename partner
   * (it is settled as soon as the hints around it are decided, but while
   * directories appear), in ms.
   */
  pairWindowMs: number;
  /** How long live hints collect before they are looked at (ms); default 30. */
  settleMs?: number;
  /** Paths the watch's patterns leave out (hints may name them). */
  ignores?: (path: string, isDirectory: boolean) => boolean;
  /** Looks at paths and hashes files (default: a worker shared by the process's reconcilers). */
  looker?: FileLooker;
  /** Where the changes go. */
  sink: ReconcilerSink;
}

/** Where the reconciler reports: one typed sink (the root watcher's, which filters and passes on). */
export interface ReconcilerSink extends ChangeSink {
  /** A path was renamed (files below a renamed directory too): the differ moves its saved content. */
  move?(oldPath: string, newPath: string): void;
  /**
   * A path was looked at and is a directory the watch covers (new, moved,
   * or as it was): the watcher makes sure it watches it. Called as soon as
   * the directory is seen, before its create is reported (that waits for the
   * pair window), so what is made in it meanwhile is not missed.
   */
  directory?(path: string, stats: FileStats): void;
}

/** Paths looked at in parallel by one drain or sweep step. */
const PROBE_BATCH = 256;
/** Decided changes waiting for their hash before the reconciler decides more. */
const EMIT_BACKLOG = 4 * PROBE_BATCH;
/** Shortest wait between two sweeps (a burst's pending paths are swept together). */
const MIN_SWEEP_MS = 5;

/**
 * Turns the watcher's hints ("something happened at this path") into
 * create / modify / delete / rename changes by comparing the disk with the
 * baseline. Renames are paired by device + inode, never by timing alone
 * (renamePairing.ts keeps the paths waiting for their partner);
 * every decision runs in one serial lane, so the state is never raced.
 */
export class Reconciler {
  readonly #o: ReconcilerOptions;
  /** path → when it was first hinted, and whether a rescan (not the watcher) hinted it. */
  readonly #dirty = new Map<string, { observedAtMs: number; byScan: boolean }>();
  /** The hints of the batch being decided now (see {@link caughtUp}). */
  readonly #deciding = new Map<string, { observedAtMs: number; byScan: boolean }>();
  /** The paths waiting for their rename partner. */
  readonly #pairs: RenamePairing;
  #lane: Promise<void> = Promise.resolve();
  #drainScheduled = false;
  #sweepTimer: NodeJS.Timeout | undefined;
  #warnedPaths = new Set<string>();
  #closed = false;
  #closing: Promise<void> | undefined;
  /** When a directory last appeared (created, moved in, renamed): see {@link #drain}. */
  #directoryAppearedAt = Number.NEGATIVE_INFINITY;
  /** Holders of {@link holdDeletes}: while any, vanished paths wait for their rename partner. */
  #deleteHolds = 0;

  readonly #emitter: ChangeEmitter;
  readonly #looker: FileLooker;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
    this.#looker = options.looker ?? defaultFileLooker();
    this.#pairs = new RenamePairing(options.baseline, this.#looker);
    this.#emitter = new ChangeEmitter({
      baseline: options.baseline, hashMaxBytes: options.hashMaxBytes, looker: this.#looker, log: options.log,
      sink: options.sink,
    });
  }

  get baseline(): Baseline {
    return this.#o.baseline;
  }

  /** Switches from the initial scan to live watching. */
  setScanning(scanning: boolean, quiet: boolean): void {
    this.#o.scanning = scanning;
    this.#o.quiet = quiet;
  }

  /**
   * The watcher saw something at `p` (any event type): look at it soon.
   * `byScan`: a rescan, not the watcher, asks (what it finds is `origin: "scan"`).
   */
  touch(p: string, observedAtMs = Date.now(), byScan = false): void {
    if (this.#closed || p === this.#o.root) return;
    const known = this.#dirty.get(p);
    if (!known) this.#dirty.set(p, { observedAtMs, byScan });
    else if (!byScan) known.byScan = false;
    if (!this.#drainScheduled) {
      this.#drainScheduled = true;
      const drain = (): void => {
        this.#drainScheduled = false;
        void this.#enqueue(() => this.#drain());
      };
      // Live hints wait a moment so one write (truncate, then write) reads as one modify.
      if (this.#o.scanning) setImmediate(drain);
      else setTimeout(drain, this.#o.settleMs ?? 30);
    }
  }

  /**
   * A rescan: compares the tree under the root with the baseline and hints
   * (as the rescan's) every path that differs from it, every path it has
   * that the tree has not, and every path waiting for its pair. A path whose
   * lstat matches its baseline entry (same inode, kind, mtime, and size for a
   * file) would be decided to nothing, so it is not hinted: a rescan of an
   * unchanged tree costs the event loop one message from the looker's
   * worker instead of one decision per path. False when the looker cannot
   * walk the tree (the caller then hints every path itself).
   */
  async touchChanged(recursive: boolean, observedAtMs = Date.now()): Promise<boolean> {
    const tree = await this.#looker.scan(this.#o.root, recursive);
    if (!tree) return false;
    const found = new Set<string>();
    for (const [p, stats] of tree.found) {
      if (this.#o.ignores?.(p, stats.isDirectory())) continue;
      found.add(p);
      if (!this.#unchanged(p, stats)) this.touch(p, observedAtMs, true);
    }
    // Looked at again one by one: the decision reports why they cannot be seen.
    for (const [p] of tree.unreadable) {
      found.add(p);
      this.touch(p, observedAtMs, true);
    }
    for (const p of this.#o.baseline.paths()) if (!found.has(p)) this.touch(p, observedAtMs, true);
    return true;
  }

  /** True when `stats` of `p` would be decided to nothing: as its baseline entry, and no pair waits for it. */
  #unchanged(p: string, stats: FileStats): boolean {
    const prev = this.#o.baseline.get(p);
    if (!prev || prev.kind !== kindOf(stats) || !sameInode(prev, stats) || prev.mtimeMs !== stats.mtimeMs) return false;
    if (prev.kind !== 'directory' && prev.size !== stats.size) return false;
    return this.#pairs.pendingDelete(p) === undefined && this.#pairs.pendingCreate(p) === undefined;
  }

  /** Resolves once every hint so far is decided and every decided change emitted. */
  async idle(): Promise<void> {
    for (;;) {
      const lane = this.#lane;
      await lane;
      await this.#emitter.drained();
      if (lane === this.#lane && this.#dirty.size === 0 && !this.#drainScheduled) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Resolves once every hint given so far is decided and its change emitted,
   * whatever arrives after: unlike {@link idle}, it returns on a tree that
   * keeps changing (a rescan waits with it; idle() may never come there).
   */
  async caughtUp(): Promise<void> {
    // Hints are decided in insertion order; a re-hinted path is a new entry object. Not
    // `await this.#lane`: one drain runs as long as hints keep coming.
    const hints = [...this.#dirty];
    const undecided = ([p, hint]: [string, object]): boolean => this.#dirty.get(p) === hint || this.#deciding.get(p) === hint;
    let i = 0;
    for (;;) {
      while (i < hints.length && !undecided(hints[i] as [string, object])) i += 1;
      if (i === hints.length) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await this.#emitter.drained();
  }

  /** Reports every baseline path that is not in `seen` as deleted (the end of a start-up scan). */
  async sweepUnseen(seen: ReadonlySet<string>, quiet: boolean): Promise<void> {
    await this.#enqueue(async () => {
      for (const p of [...this.#o.baseline.paths()]) {
        if (seen.has(p) || this.#pairs.pendingDelete(p) !== undefined) continue;
        if (quiet) {
          this.#o.baseline.delete(p);
          continue;
        }
        const entry = this.#o.baseline.get(p);
        if (entry) this.#pairs.addDelete(p, { entry, observedAtMs: Date.now(), deadline: 0, origin: 'scan' });
      }
      this.#scheduleSweep();
    });
  }

  /**
   * Keeps vanished paths pending (not reported as deleted) until the returned
   * release is called. After an inotify overflow, a rename's two halves may
   * have been split by the full queue (the old name notified, the new one
   * dropped): the rescan that follows finds the new name, and a held delete
   * still pairs with it as one rename instead of a delete and a create.
   */
  holdDeletes(): () => void {
    this.#deleteHolds += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#deleteHolds -= 1;
      if (this.#deleteHolds === 0 && this.#pairs.deleteCount > 0 && !this.#closed) void this.#enqueue(() => this.#sweep(Date.now(), true));
    };
  }

  /** Number of pairs still waiting for their window (tests, status). */
  get pendingCount(): number {
    return this.#pairs.size + this.#dirty.size;
  }

  /** Finishes what is pending at once (shutdown) and stops. A second call returns the first call's promise. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Settling a replaced path may hint it (or what was below it) again: settle those too.
      for (let round = 0; round < 4; round += 1) {
        await this.idle();
        await this.#enqueue(() => this.#sweep(Number.POSITIVE_INFINITY));
        if (this.#dirty.size === 0 && this.#pairs.size === 0) break;
      }
      await this.#emitter.drained();
      this.#closed = true;
      if (this.#sweepTimer) clearTimeout(this.#sweepTimer);
    })();
    return this.#closing;
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.#lane.then(task).catch((err: unknown) => {
      this.#o.log.error({ err }, 'reconciler task failed');
    });
    this.#lane = next;
    return next;
  }

  async #drain(): Promise<void> {
    while (this.#dirty.size > 0) {
      // The first PROBE_BATCH hints (copying all of them per batch was quadratic at a first start).
      const batch: Array<[string, { observedAtMs: number; byScan: boolean }]> = [];
      for (const entry of this.#dirty) {
        batch.push(entry);
        if (batch.length === PROBE_BATCH) break;
      }
      for (const [p, hint] of batch) {
        this.#dirty.delete(p);
        this.#deciding.set(p, hint);
      }
      try {
        // Look at the whole batch in parallel, decide one path at a time.
        const probes = await Promise.all(batch.map(([p]) => this.#looker.lstat(p)));
        for (let i = 0; i < batch.length; i += 1) {
          const [p, hint] = batch[i] as [string, { observedAtMs: number; byScan: boolean }];
          await this.#decide(p, probes[i] as Look, hint.observedAtMs, hint.byScan);
        }
      } finally {
        for (const [p, hint] of batch) if (this.#deciding.get(p) === hint) this.#deciding.delete(p);
      }
      // Hashing is slower than deciding: wait rather than queue a whole tree's hashes at once.
      await this.#emitter.below(EMIT_BACKLOG);
    }
    // The kernel queues a rename's MOVED_FROM and MOVED_TO together, and the loop above ran
    // until no hint was left (its lstats let the event loop read inotify in between): a
    // vanished path's partner has been decided by now, so its delete need not wait out the
    // window. Except while directories appear: what is already in a directory that appeared
    // lately is seen only by the watcher's listing of it, a little later.
    if (this.#pairs.deleteCount > 0 && this.#deleteHolds === 0 && Date.now() - this.#directoryAppearedAt >= this.#o.pairWindowMs) {
      await this.#sweep(Date.now(), true);
    }
  }

  async #decide(p: string, found: Look, observedAtMs: number, byScan: boolean): Promise<void> {
    const origin = this.#o.scanning || byScan ? 'scan' : 'live';
    if ('error' in found) {
      this.#warnOnce(p, { code: found.error }, 'cannot look at path; no event for it');
      return;
    }
    await this.#settleReplacedAbove(p);
    const prev = this.#o.baseline.get(p);
    const pendingCreate = this.#pairs.pendingCreate(p);
    if ('missing' in found) {
      const pendingDelete = this.#pairs.pendingDelete(p);
      if (pendingCreate) {
        pendingCreate.gone = true;
      } else if (pendingDelete) {
        this.#pairs.setReplacement(p, pendingDelete, undefined);
      } else if (prev) {
        this.#pairs.addDelete(p, { entry: prev, observedAtMs, deadline: Date.now() + this.#o.pairWindowMs, origin });
        this.#scheduleSweep();
      } else if (!prev && p.includes('\uFFFD')) {
        this.#warnOnce(p, {}, 'a name that is not valid UTF-8 cannot be observed by path; no event for it');
      }
      return;
    }
    const { stats } = found;
    const kind = kindOf(stats);
    if (!prev && this.#o.ignores?.(p, kind === 'directory')) return;
    if (kind === 'directory') this.#o.sink.directory?.(p, stats);
    if (prev && sameInode(prev, stats) && prev.kind === kind) {
      this.#pairs.dropDelete(p);
      if (pendingCreate) pendingCreate.gone = false;
      if (kind === 'directory' || (prev.size === stats.size && prev.mtimeMs === stats.mtimeMs)) {
        if (kind === 'directory') this.#o.baseline.set(p, { ...prev, mtimeMs: stats.mtimeMs });
        return;
      }
      // The last change of p may still be hashing a newer state than it was decided on (a
      // create swept mid-write): once reported, that state may be this very one, not a modify.
      const settling = this.#emitter.settling(p);
      if (settling) {
        await settling;
        const settled = this.#o.baseline.get(p);
        if (settled && sameInode(settled, stats) && settled.size === stats.size && settled.mtimeMs === stats.mtimeMs) return;
      }
      this.#emitter.emit({ type: 'modify', path: p, stats, observedAtMs, origin });
      return;
    }
    // (The start-up scan's directories are watched by the time it is ready.)
    if (kind === 'directory' && !this.#o.scanning) this.#directoryAppearedAt = Date.now();
    if (prev) {
      // The name holds another inode than the one the baseline knows under it. Identity first:
      // where that inode went decides what happened, so it waits, like a vanished path, for
      // the hints around it (see #settle).
      const pendingDelete = this.#pairs.pendingDelete(p);
      if (pendingDelete) this.#pairs.setReplacement(p, pendingDelete, stats);
      else {
        this.#pairs.addDelete(p, { entry: prev, observedAtMs, deadline: Date.now() + this.#o.pairWindowMs, origin, replacement: stats });
        this.#scheduleSweep();
      }
      return;
    }
    if (kind === 'directory') await this.#checkDirectoryReadable(p);
    const source = await this.#pairs.sourceOf(p, stats);
    if (source?.pendingCreate) {
      // A new path renamed before its window ended: report it once, under its final name.
      this.#pairs.dropCreate(source.path);
      this.#pairs.addCreate(p, { ...source.pendingCreate, stats, gone: false });
      return;
    }
    if (source) {
      // A known path renamed over a new one still in its window: that one was short-lived, like an atomic save's temp file.
      if (pendingCreate) this.#pairs.dropCreate(p);
      await this.#rename(source.path, p, stats, observedAtMs, origin);
      return;
    }
    if (this.#o.quiet) {
      this.#emitter.emit({ type: 'create', path: p, stats, observedAtMs, origin, quiet: true });
      return;
    }
    if (pendingCreate) {
      this.#pairs.dropCreate(p);
      this.#pairs.addCreate(p, { ...pendingCreate, stats, gone: false });
      return;
    }
    this.#pairs.addCreate(p, { stats, observedAtMs, deadline: Date.now() + this.#o.pairWindowMs, origin, gone: false });
    this.#scheduleSweep();
  }


  async #rename(from: string, to: string, stats: FileStats, observedAtMs: number, origin: Origin): Promise<void> {
    const entry = this.#o.baseline.get(from);
    const replaced: string[] = [];
    if (this.#pairs.dropDelete(from)?.replacement) replaced.push(from);
    const moved = this.#o.baseline.move(from, to);
    for (const [oldPath, newPath] of moved) {
      // A path below that holds another inode moved with its directory: decided again under its new name.
      if (this.#pairs.dropDelete(oldPath)?.replacement && oldPath !== from) replaced.push(newPath);
      this.#o.sink.move?.(oldPath, newPath);
    }
    const changed = entry !== undefined && entry.kind === 'file' && (entry.size !== stats.size || entry.mtimeMs !== stats.mtimeMs);
    this.#emitter.emit({ type: 'rename', path: to, oldPath: from, stats, observedAtMs, origin, rehash: changed });
    // The old name holds another inode (logrotate's new app.log): decided anew, after the rename
    // and before anything else, for it may be the next link of a chain (app.log → app.log.1 → …).
    await this.#decideAgain(replaced, observedAtMs, origin);
  }

  /**
   * Settles a directory above `p` that another directory (or a file) took the
   * name of, before `p` is decided: what is under the name now is in the new
   * directory, not a change of what the old one held (`mv d2 d` over an empty
   * d: d/x is d2/x renamed with its directory, not a rename of its own).
   * A directory above that vanished is left pending: its rename partner may
   * still come.
   */
  async #settleReplacedAbove(p: string): Promise<void> {
    for (let dir = path.dirname(p); dir.length > this.#o.root.length; dir = path.dirname(dir)) {
      const above = this.#pairs.pendingDelete(dir);
      if (above?.replacement) await this.#settle(dir, above, undefined, new Set());
    }
  }

  /** Decides `paths` now (their baseline entries were moved or removed). */
  async #decideAgain(paths: readonly string[], observedAtMs: number, origin: Origin): Promise<void> {
    if (paths.length === 0) return;
    const looks = await Promise.all(paths.map((p) => this.#looker.lstat(p)));
    for (let i = 0; i < paths.length; i += 1) await this.#decide(paths[i] as string, looks[i] as Look, observedAtMs, origin === 'scan');
  }



  /**
   * Decides a path whose baseline inode is no longer under its name, once
   * nothing around it is undecided: renamed away by a path decided since, it
   * is no longer pending. Before the old inode is taken as gone, a replaced
   * path that holds it now is settled first: it is where that inode went
   * (`mv a b` over a known b reads as one rename, whatever order the two
   * were hinted in). `look` is a fresh lstat of `p` if the caller has one.
   */
  async #settle(p: string, pending: PendingDelete, look: Look | undefined, visiting: Set<string>): Promise<void> {
    visiting.add(p);
    // A directory above it that vanished or was replaced is settled first: what is under
    // its name now is in another directory, not a change of what was there.
    for (let dir = path.dirname(p); dir.length > this.#o.root.length; dir = path.dirname(dir)) {
      const above = visiting.has(dir) ? undefined : this.#pairs.pendingDelete(dir);
      if (!above) continue;
      await this.#settle(dir, above, undefined, visiting);
      if (this.#pairs.pendingDelete(p) !== pending) return;
      look = undefined;
    }
    const [holder, holding] = this.#pairs.holderOf(pending.entry) ?? [];
    if (holder !== undefined && holding && !visiting.has(holder)) {
      await this.#settle(holder, holding, undefined, visiting);
      if (this.#pairs.pendingDelete(p) !== pending) return;
      look = undefined;
    }
    const found = look ?? (await this.#looker.lstat(p));
    if (this.#pairs.pendingDelete(p) !== pending) return;
    this.#pairs.dropDelete(p);
    if ('stats' in found) {
      if (sameInode(pending.entry, found.stats) && pending.entry.kind === kindOf(found.stats)) this.touch(p); // it came back
      else await this.#replace(p, pending, found.stats);
      return;
    }
    this.#emitRemoved(p, pending.entry, pending.observedAtMs, pending.origin);
  }

  /** `p`'s baseline inode went nowhere the agent sees: what is there now took its place. */
  async #replace(p: string, pending: PendingDelete, stats: FileStats): Promise<void> {
    const { entry: prev, observedAtMs, origin } = pending;
    const kind = kindOf(stats);
    const source = await this.#pairs.sourceOf(p, stats);
    if (source?.pendingCreate) this.#pairs.dropCreate(source.path);
    if (prev.kind === kind && kind !== 'directory') {
      // A known path renamed over it, or an editor's atomic save (a temp file renamed over it): one modify.
      if (source && !source.pendingCreate) await this.#rename(source.path, p, stats, observedAtMs, origin);
      else this.#emitter.emit({ type: 'modify', path: p, stats, observedAtMs, origin });
      return;
    }
    const known = source && !source.pendingCreate ? source.path : undefined;
    // A known directory renamed over an empty one (rename(2) allows no other): one rename.
    if (known !== undefined && prev.kind === 'directory' && kind === 'directory' && this.#o.baseline.subtree(p).length === 1) {
      await this.#rename(known, p, stats, observedAtMs, origin);
      return;
    }
    // Another kind, or another directory: what was under the name is gone, and what is there is new.
    const removed = this.#emitRemoved(p, prev, observedAtMs, origin);
    if (known !== undefined) await this.#rename(known, p, stats, observedAtMs, origin);
    else this.#emitter.emit({ type: 'create', path: p, stats, observedAtMs, origin });
    // What the new directory holds was decided against the old one's entries (a file moved out
    // and back in, into the new one, kept its inode): each is decided again, as new.
    await this.#decideAgain(removed, observedAtMs, origin);
  }

  /**
   * Reports `p` and everything the baseline has below it as deleted, children
   * first, deepest first: a removed tree reads bottom-up, like `rm -r`.
   * Returns the children, shallowest first.
   */
  #emitRemoved(p: string, entry: Entry, observedAtMs: number, origin: Origin): string[] {
    const children: string[] = [];
    for (const child of this.#o.baseline.subtree(p)) {
      if (child === p) continue;
      const childEntry = this.#o.baseline.get(child);
      const childPending = this.#pairs.dropDelete(child);
      children.push(child);
      if (childEntry) this.#emitter.emitDelete(child, childEntry, childPending?.observedAtMs ?? observedAtMs, origin);
    }
    this.#emitter.emitDelete(p, entry, observedAtMs, origin);
    return children.reverse();
  }



  #scheduleSweep(): void {
    if (this.#sweepTimer || this.#closed) return;
    // Wake when the oldest pending path's window ends (maps keep insertion
    // order, which is deadline order but for a re-added create), not on a
    // window/4 tick: every create and delete waited up to a quarter window more.
    const next = this.#pairs.nextDeadline(this.#deleteHolds === 0);
    const delay = Number.isFinite(next) ? Math.max(MIN_SWEEP_MS, next - Date.now()) : Math.max(10, Math.floor(this.#o.pairWindowMs / 4));
    this.#sweepTimer = setTimeout(() => {
      this.#sweepTimer = undefined;
      void this.#enqueue(() => this.#sweep(Date.now()));
    }, delay);
    this.#sweepTimer.unref();
  }

  /** Reports every pending path whose window has ended (and every pending delete with `allDeletes`). */
  async #sweep(now: number, allDeletes = false): Promise<void> {
    // Expired paths are looked at in parallel batches (like #drain), decided one at a time:
    // one awaited lstat after another made a burst's sweep as slow as the disk's round trips.
    const creates = this.#pairs.expiredCreates(now);
    for (let i = 0; i < creates.length; i += PROBE_BATCH) {
      const batch = creates.slice(i, i + PROBE_BATCH);
      // A path with no undecided hint is as its last decision saw it (a later change is a
      // later hint, decided then): only the others are looked at again.
      const probes = await Promise.all(batch.map(([p, pending]): Promise<Look> | Look => (pending.gone || this.#dirty.has(p) ? this.#looker.lstat(p) : { stats: pending.stats })));
      batch.forEach(([p, pending], j) => {
        if (this.#pairs.pendingCreate(p) !== pending) return;
        this.#pairs.dropCreate(p);
        const found = probes[j] as Look;
        if ('stats' in found) {
          this.#emitter.emit({ type: 'create', path: p, stats: found.stats, observedAtMs: pending.observedAtMs, origin: pending.origin });
        } else {
          // It existed, briefly: the trail says so rather than nothing.
          this.#emitter.emit({ type: 'create', path: p, stats: pending.stats, observedAtMs: pending.observedAtMs, origin: pending.origin, vanished: true });
          this.#emitter.emitDelete(p, entryFromStats(pending.stats, null), pending.observedAtMs, pending.origin);
        }
      });
    }
    const deletes = this.#deleteHolds > 0 && now !== Number.POSITIVE_INFINITY ? [] : this.#pairs.expiredDeletes(now, allDeletes);
    for (let i = 0; i < deletes.length; i += PROBE_BATCH) {
      const batch = deletes.slice(i, i + PROBE_BATCH);
      const probes = await Promise.all(batch.map(([p]) => this.#looker.lstat(p)));
      for (let j = 0; j < batch.length; j += 1) {
        const [p, pending] = batch[j] as [string, PendingDelete];
        // Already settled: below a removed directory, or as a rename's old name.
        if (this.#pairs.pendingDelete(p) !== pending) continue;
        await this.#settle(p, pending, probes[j] as Look, new Set());
      }
    }
    if (this.#pairs.nextDeadline(this.#deleteHolds === 0) !== Number.POSITIVE_INFINITY) this.#scheduleSweep();
  }

  /** Logs (once per name) a path that can never be observed: a name that is not valid UTF-8. */
  warnUnobservable(name: string): void {
    this.#warnOnce(name, {}, 'a name that is not valid UTF-8 cannot be observed by path; no event for it');
  }

  /** A directory the agent cannot list is a blind spot: say so. */
  async #checkDirectoryReadable(p: string): Promise<void> {
    try {
      await access(p, constants.R_OK | constants.X_OK);
    } catch (err) {
      this.#warnOnce(p, { code: errorCode(err) }, 'cannot read directory; changes inside it are not seen');
    }
  }

  #warnOnce(p: string, fields: Record<string, unknown>, message: string): void {
    if (this.#warnedPaths.has(p)) return;
    if (this.#warnedPaths.size > 10_000) this.#warnedPaths.clear();
    this.#warnedPaths.add(p);
    this.#o.log.warn({ ...fields, path: p, root: this.#o.root }, message);
  }
}
