import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { errorCode, writeFileAtomic } from '@fso/common';
import type { EntryKind, Logger } from '@fso/common';

/** What the agent last knew of one path. */
export interface Entry {
  kind: EntryKind;
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
  /** 0 where the file system does not say. */
  birthtimeMs: number;
  sha256: string | null;
}

/** What the agent reads of an lstat: fs.Stats, or the worker's copy of it (fileLooks.ts). */
export type FileStats = Pick<Stats, 'dev' | 'ino' | 'mode' | 'size' | 'mtimeMs' | 'birthtimeMs' | 'isFile' | 'isDirectory' | 'isSymbolicLink'>;

/** The kind DESIGN.md knows for an lstat result (FIFOs, sockets and devices count as files). */
export function kindOf(stats: FileStats): EntryKind {
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  return 'file';
}

export function entryFromStats(stats: FileStats, sha256: string | null): Entry {
  return {
    kind: kindOf(stats),
    size: stats.size,
    mtimeMs: stats.mtimeMs,
    dev: stats.dev,
    ino: stats.ino,
    birthtimeMs: stats.birthtimeMs,
    sha256,
  };
}

/**
 * True when two birth times may be of one file: inode numbers are reused at
 * once on ext4, and a birth time, where the file system has one (not 0),
 * tells a reuse apart.
 */
export const sameBirth = (a: number, b: number): boolean => a === 0 || b === 0 || a === b;

/** True when `stats` is the inode the entry describes, not a new file that got its freed number. */
export function sameInode(entry: Entry, stats: FileStats): boolean {
  return entry.dev === stats.dev && entry.ino === stats.ino && sameBirth(entry.birthtimeMs, stats.birthtimeMs);
}

const inodeKey = (dev: number, ino: number): string => `${dev}:${ino}`;

/**
 * path → entry of one watched root, with an inode index to pair renames,
 * persisted in the state dir so a restart compares the disk with it.
 */
export class Baseline {
  readonly #entries = new Map<string, Entry>();
  readonly #byInode = new Map<string, string>();
  #dirty = false;

  get size(): number {
    return this.#entries.size;
  }

  get dirty(): boolean {
    return this.#dirty;
  }

  get(path: string): Entry | undefined {
    return this.#entries.get(path);
  }

  set(path: string, entry: Entry): void {
    const old = this.#entries.get(path);
    if (old && this.#byInode.get(inodeKey(old.dev, old.ino)) === path) this.#byInode.delete(inodeKey(old.dev, old.ino));
    this.#entries.set(path, entry);
    this.#byInode.set(inodeKey(entry.dev, entry.ino), path);
    this.#dirty = true;
  }

  delete(path: string): void {
    const old = this.#entries.get(path);
    if (!old) return;
    this.#entries.delete(path);
    if (this.#byInode.get(inodeKey(old.dev, old.ino)) === path) this.#byInode.delete(inodeKey(old.dev, old.ino));
    this.#dirty = true;
  }

  /** The path last seen with this inode, if any. */
  pathOfInode(dev: number, ino: number): string | undefined {
    return this.#byInode.get(inodeKey(dev, ino));
  }

  /** Every path at or below `dir`, deepest first. */
  subtree(dir: string): string[] {
    // Only a directory has paths below it: a file's rename or delete must not
    // scan every path (a burst of N renames or deletes was O(N²)).
    const entry = this.#entries.get(dir);
    if (entry !== undefined && entry.kind !== 'directory') return [dir];
    const prefix = `${dir}/`;
    const found = [...this.#entries.keys()].filter((p) => p === dir || p.startsWith(prefix));
    return found.sort((a, b) => b.length - a.length);
  }

  /** Moves `from` and everything below it to `to` (a directory rename). Returns the [old, new] pairs. */
  move(from: string, to: string): Array<[string, string]> {
    const moved: Array<[string, string]> = [];
    for (const oldPath of this.subtree(from)) {
      const entry = this.#entries.get(oldPath);
      if (!entry) continue;
      const newPath = to + oldPath.slice(from.length);
      this.delete(oldPath);
      this.set(newPath, entry);
      moved.push([oldPath, newPath]);
    }
    return moved;
  }

  paths(): IterableIterator<string> {
    return this.#entries.keys();
  }

  /** Keeps only the paths `keep` says yes to (after a pattern change). */
  retain(keep: (path: string) => boolean): void {
    for (const p of [...this.#entries.keys()]) if (!keep(p)) this.delete(p);
  }

  /** Saves as JSON lines, atomically. */
  async save(file: string): Promise<void> {
    const lines: string[] = [];
    for (const [p, e] of this.#entries) lines.push(JSON.stringify([p, e.kind, e.size, e.mtimeMs, e.dev, e.ino, e.birthtimeMs, e.sha256]));
    await writeFileAtomic(file, lines.length > 0 ? `${lines.join('\n')}\n` : '');
    this.#dirty = false;
  }

  /** Loads a saved baseline; null when there is none (a first start). */
  static async load(file: string, log: Logger): Promise<Baseline | null> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return null;
      throw err;
    }
    const baseline = new Baseline();
    let bad = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        const [p, kind, size, mtimeMs, dev, ino, birthtimeMs, sha256] = JSON.parse(line) as [string, EntryKind, number, number, number, number, number, string | null];
        baseline.set(p, { kind, size, mtimeMs, dev, ino, birthtimeMs, sha256 });
      } catch {
        bad += 1;
      }
    }
    if (bad > 0) log.warn({ file, bad }, 'baseline had unreadable lines; those paths will be reported as new');
    baseline.#dirty = false;
    return baseline;
  }
}

/** The baseline file of a root inside the state dir (named by a hash: never by the path itself). */
export function baselineFileName(root: string): string {
  return `baseline-${createHash('sha256').update(root).digest('hex').slice(0, 24)}.jsonl`;
}
