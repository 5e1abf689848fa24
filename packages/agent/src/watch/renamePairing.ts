import type { Origin } from '@fso/common';
import { kindOf, sameBirth, sameInode } from './baseline.js';
import type { Baseline, Entry, FileStats } from './baseline.js';
import type { FileLooker } from './fileLooks.js';

/** A new path waiting out the pair window: it may yet be renamed over a known file (an atomic save). */
export interface PendingCreate {
  stats: FileStats;
  observedAtMs: number;
  deadline: number;
  origin: Origin;
  /** The path vanished before it was reported: reported as create + delete unless renamed over a file. */
  gone: boolean;
}

/** A known path whose baseline inode is no longer under its name: waiting to learn where it went. */
export interface PendingDelete {
  entry: Entry;
  observedAtMs: number;
  deadline: number;
  origin: Origin;
  /**
   * The path holds another inode now (lstat when last decided): its old one
   * may have been renamed elsewhere (logrotate's `mv app.log app.log.1` then
   * a new app.log), or be gone (an editor's atomic save).
   */
  replacement?: FileStats;
}

/** Where the inode now at a path was before: a pending new path, or a known path that no longer has it. */
export interface RenameSource {
  path: string;
  pendingCreate?: PendingCreate;
}

const inodeKey = (x: { dev: number; ino: number }): string => `${x.dev}:${x.ino}`;

/**
 * True when `stats` (of the same dev:ino) may be the file `entry` describes,
 * not a new one that got its freed inode number: same kind and birth time,
 * and, where the file system has no birth time, same size and mtime.
 */
function maybeSameFile(entry: Entry, stats: FileStats): boolean {
  if (entry.kind !== kindOf(stats) || !sameBirth(entry.birthtimeMs, stats.birthtimeMs)) return false;
  if (entry.birthtimeMs !== 0 && stats.birthtimeMs !== 0) return true;
  return entry.kind === 'directory' || (entry.size === stats.size && entry.mtimeMs === stats.mtimeMs);
}

/**
 * The pending paths whose window ended by `now`, oldest first. Maps keep
 * insertion order, which is deadline order but for a re-added create (it
 * keeps its first deadline): the walk stops at the first path still waiting
 * rather than copy a whole burst's pending paths on every sweep, so such a
 * path waits for the ones before it (at most one window more).
 */
function expired<T extends { deadline: number }>(pending: ReadonlyMap<string, T>, now: number): Array<[string, T]> {
  const found: Array<[string, T]> = [];
  for (const entry of pending) {
    if (entry[1].deadline > now) break;
    found.push(entry);
  }
  return found;
}

/**
 * Where renames are paired: the paths waiting for their partner, and the
 * questions the reconciler asks of them. Pairing is by device + inode (and
 * birth time, against a reused inode number), never by timing alone:
 * - a new path is a rename when its inode is a pending new path's, or a
 *   known path's that no longer has it ({@link sourceOf});
 * - a known path that lost its inode waits to learn where it went: another
 *   path that holds it now is a rename's new name ({@link holderOf}).
 * It only keeps the state; the reconciler decides and reports.
 */
export class RenamePairing {
  readonly #baseline: Baseline;
  readonly #looker: FileLooker;
  readonly #creates = new Map<string, PendingCreate>();
  readonly #deletes = new Map<string, PendingDelete>();
  /** dev:ino → path of a pending create, to pair a rename without a scan of them all. */
  readonly #createByInode = new Map<string, string>();
  /** dev:ino of a replacement → the path of the pending delete it replaced. */
  readonly #replacedByInode = new Map<string, string>();

  constructor(baseline: Baseline, looker: FileLooker) {
    this.#baseline = baseline;
    this.#looker = looker;
  }

  /** Paths waiting: new and vanished or replaced. */
  get size(): number {
    return this.#creates.size + this.#deletes.size;
  }

  get deleteCount(): number {
    return this.#deletes.size;
  }

  pendingCreate(p: string): PendingCreate | undefined {
    return this.#creates.get(p);
  }

  pendingDelete(p: string): PendingDelete | undefined {
    return this.#deletes.get(p);
  }

  addCreate(p: string, pending: PendingCreate): void {
    this.#creates.set(p, pending);
    this.#createByInode.set(inodeKey(pending.stats), p);
  }

  dropCreate(p: string): void {
    const pending = this.#creates.get(p);
    if (!pending) return;
    this.#creates.delete(p);
    const key = inodeKey(pending.stats);
    if (this.#createByInode.get(key) === p) this.#createByInode.delete(key);
  }

  addDelete(p: string, pending: PendingDelete): void {
    this.#deletes.set(p, pending);
    if (pending.replacement) this.#replacedByInode.set(inodeKey(pending.replacement), p);
  }

  /** Records what `p` holds now in place of its baseline inode (undefined: nothing, it vanished). */
  setReplacement(p: string, pending: PendingDelete, stats: FileStats | undefined): void {
    this.#forgetReplacement(p, pending);
    pending.replacement = stats;
    if (stats) this.#replacedByInode.set(inodeKey(stats), p);
  }

  /** Stops waiting for `p`'s partner; returns what was waiting. */
  dropDelete(p: string): PendingDelete | undefined {
    const pending = this.#deletes.get(p);
    if (!pending) return undefined;
    this.#deletes.delete(p);
    this.#forgetReplacement(p, pending);
    return pending;
  }

  #forgetReplacement(p: string, pending: PendingDelete): void {
    if (pending.replacement && this.#replacedByInode.get(inodeKey(pending.replacement)) === p) this.#replacedByInode.delete(inodeKey(pending.replacement));
  }

  /**
   * The replaced path that holds `entry`'s inode now, if any (`mv a b` over a
   * known b: b holds a's inode): where a pending delete's inode went.
   */
  holderOf(entry: Entry): [string, PendingDelete] | undefined {
    const holder = this.#replacedByInode.get(inodeKey(entry));
    const holding = holder === undefined ? undefined : this.#deletes.get(holder);
    if (holder === undefined || !holding?.replacement || !maybeSameFile(entry, holding.replacement)) return undefined;
    return [holder, holding];
  }

  /** Where the inode now at `p` was before: a pending new path, or a known path that no longer has it. */
  async sourceOf(p: string, stats: FileStats): Promise<RenameSource | undefined> {
    const pendingPath = this.#createByInode.get(inodeKey(stats));
    const pending = pendingPath === undefined ? undefined : this.#creates.get(pendingPath);
    if (pendingPath !== undefined && pendingPath !== p && pending && sameBirth(pending.stats.birthtimeMs, stats.birthtimeMs)) {
      const now = await this.#looker.lstat(pendingPath);
      if (!('stats' in now) || now.stats.ino !== stats.ino) return { path: pendingPath, pendingCreate: pending };
    }
    const q = this.#baseline.pathOfInode(stats.dev, stats.ino);
    if (q === undefined || q === p) return undefined;
    const entry = this.#baseline.get(q);
    if (!entry || entry.kind !== kindOf(stats) || !sameBirth(entry.birthtimeMs, stats.birthtimeMs)) return undefined;
    // Found missing or replaced already (a rename's old name is usually decided just before its new one).
    if (this.#deletes.has(q)) return { path: q };
    // A rename keeps size and mtime; a new file that got a freed inode number does not.
    if (entry.kind === 'file' && (entry.size !== stats.size || entry.mtimeMs !== stats.mtimeMs)) return undefined;
    const now = await this.#looker.lstat(q);
    if ('stats' in now && sameInode(entry, now.stats)) return undefined; // a hard link, not a rename
    return { path: q };
  }

  /** The pending creates whose window ended by `now`, oldest first. */
  expiredCreates(now: number): Array<[string, PendingCreate]> {
    return expired(this.#creates, now);
  }

  /** The pending deletes whose window ended by `now` (all of them with `all`), oldest first. */
  expiredDeletes(now: number, all: boolean): Array<[string, PendingDelete]> {
    return all ? [...this.#deletes] : expired(this.#deletes, now);
  }

  /** When the oldest pending path's window ends (deletes left out while they are held). */
  nextDeadline(withDeletes: boolean): number {
    return Math.min(
      this.#creates.values().next().value?.deadline ?? Number.POSITIVE_INFINITY,
      withDeletes ? (this.#deletes.values().next().value?.deadline ?? Number.POSITIVE_INFINITY) : Number.POSITIVE_INFINITY,
    );
  }
}
