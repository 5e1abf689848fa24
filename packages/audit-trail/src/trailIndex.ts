import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import path from 'node:path';
import { IndexBuilder } from './indexBuild.js';
import type { CatchUpResult } from './indexBuild.js';
import { openIndexDb } from './indexDb.js';
import type { Db } from './indexDb.js';
import { IndexQueries } from './indexQuery.js';
import { TrailIndexError } from './errors.js';
import { replayTree } from './query.js';
import type { AuditQuery, AuditQueryResult, TrailEntry, TreeOptions } from './query.js';
import type { AuditRecordLine } from './tail.js';

/** Options of {@link openTrailIndex}. */
export interface TrailIndexOptions {
  /** The audit directory (read only, never written). */
  auditDir: string;
  /** Where the index lives (`trail.sqlite` in it); created if need be. Never the audit directory. */
  indexDir: string;
  /** Open an existing index to search only (no catch-up); for a second process beside the one that keeps it current. */
  readOnly?: boolean;
}

/** What {@link TrailIndex.stats} tells. */
export interface TrailIndexStats {
  /** Records indexed. */
  records: number;
  /** Audit files (events and diffs) indexed. */
  files: number;
  /** Bytes of JSONL indexed. */
  bytes: number;
  /** When a catch-up last finished (ISO), if ever. */
  lastCaughtUp: string | undefined;
  /** Size of the index file itself (bytes, without its WAL). */
  indexBytes: number;
}

/**
 * An index of an audit directory kept in a directory of its own: the same
 * searches as {@link queryAuditRecords}, {@link pathHistory} and
 * {@link treeFromTrail}, answered from SQLite rows instead of a scan of the
 * whole trail. The JSONL stays the source of truth: every record returned
 * is read back from its line (a positioned read) and returned as it parses.
 */
export class TrailIndex {
  /** The audit directory indexed. */
  readonly auditDir: string;
  readonly #db: Db;
  readonly #builder: IndexBuilder | undefined;
  readonly #queries: IndexQueries;
  readonly #file: string;
  #running: Promise<CatchUpResult> | undefined;
  #queued: Promise<CatchUpResult> | undefined;
  #closing = false;
  #closed: Promise<void> | undefined;

  /** Use {@link openTrailIndex}. */
  constructor(db: Db, file: string, options: TrailIndexOptions) {
    this.auditDir = options.auditDir;
    this.#db = db;
    this.#file = file;
    this.#builder = options.readOnly ? undefined : new IndexBuilder(db, options.auditDir);
    this.#queries = new IndexQueries(db, options.auditDir);
  }

  /**
   * Indexes what the JSONL has that the index has not: appended lines, new
   * day files; re-indexes a file that shrank or whose first or last indexed
   * line changed. Calls are serialized: one made while another runs waits
   * for it, then runs once for every caller that came meanwhile.
   */
  catchUp(): Promise<CatchUpResult> {
    if (!this.#builder) return Promise.reject(new TrailIndexError(this.#file, 'opened read-only: it cannot catch up'));
    if (this.#closing) return Promise.reject(new TrailIndexError(this.#file, 'closed'));
    if (this.#queued) return this.#queued;
    const builder = this.#builder;
    const run = (): Promise<CatchUpResult> => {
      this.#queued = undefined;
      this.#running = builder.catchUp(() => this.#closing).finally(() => {
        this.#running = undefined;
      });
      return this.#running;
    };
    if (!this.#running) return run();
    this.#queued = this.#running.then(run, run);
    return this.#queued;
  }

  /** One page of matching records and the count of all; see {@link queryAuditRecords} (same order, same answer). */
  async query(query: AuditQuery = {}): Promise<AuditQueryResult> {
    this.#assertOpen();
    return this.#queries.query(query);
  }

  /** Every event and diff of `target` through its renames, oldest first; see {@link pathHistory}. */
  async history(target: string, options: { agent?: string } = {}): Promise<AuditRecordLine[]> {
    this.#assertOpen();
    return this.#queries.history(target, options.agent);
  }

  /** What one agent's trail says is under a directory; see {@link treeFromTrail}. Replays that agent's events, found through the index. */
  async tree(options: TreeOptions): Promise<Map<string, TrailEntry>> {
    this.#assertOpen();
    return replayTree(this.#queries.agentEvents(options.agent, options.until), options);
  }

  /** How much is indexed. */
  stats(): TrailIndexStats {
    this.#assertOpen();
    const sums = this.#db.prepare('SELECT count(*) AS files, coalesce(sum(records), 0) AS records, coalesce(sum(indexedBytes), 0) AS bytes FROM files').get() as {
      files: number;
      records: number;
      bytes: number;
    };
    const lastCaughtUp = this.#db.prepare("SELECT value FROM meta WHERE key = 'lastCaughtUp'").pluck().get() as string | undefined;
    const pages = (this.#db.pragma('page_count', { simple: true }) as number) * (this.#db.pragma('page_size', { simple: true }) as number);
    return { ...sums, lastCaughtUp, indexBytes: pages };
  }

  /** Stops a catch-up at its next batch (what it committed stays), then closes the database. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      await Promise.allSettled([this.#running, this.#queued]);
      if (!this.#db.readonly) this.#db.pragma('optimize');
      this.#db.close();
    })();
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closing) throw new TrailIndexError(this.#file, 'closed');
  }
}

/**
 * Opens the index of `auditDir` kept in `indexDir`, creating it if need be
 * (and rebuilding it, from the JSONL, when it is corrupt or of another
 * version). It does not catch up by itself: call {@link TrailIndex.catchUp}
 * (or {@link followTrailIndex}). Throws {@link TrailIndexError} when the
 * index cannot be opened, e.g. better-sqlite3 did not build.
 *
 * @example
 * const index = await openTrailIndex({ auditDir: './audit', indexDir: './audit-index' });
 * await index.catchUp();
 * const { total, records } = await index.query({ agent: 'web-01', since: Date.now() - 86_400_000, limit: 100 });
 * await index.close();
 */
export async function openTrailIndex(options: TrailIndexOptions): Promise<TrailIndex> {
  if (path.resolve(options.indexDir) === path.resolve(options.auditDir)) {
    throw new TrailIndexError(options.indexDir, 'the index must live in a directory of its own, not in the audit directory');
  }
  const { db, file } = await openIndexDb(options.auditDir, options.indexDir, options.readOnly ?? false);
  return new TrailIndex(db, file, options);
}

/** Options of {@link followTrailIndex}. */
export interface FollowIndexOptions {
  /** Stops following when aborted. */
  signal: AbortSignal;
  /** Catch-up period beside fs.watch (which can miss events); default 1000 ms. */
  intervalMs?: number;
  /** Told of a catch-up that failed; following goes on. */
  onError?: (error: unknown) => void;
}

/**
 * Keeps `index` caught up with its audit directory until the signal aborts:
 * a catch-up when the directory changes (fs.watch) and every `intervalMs`.
 * Resolves once stopped and the last catch-up is done.
 *
 * @example
 * const ac = new AbortController();
 * const following = followTrailIndex(index, { signal: ac.signal });
 * // … serve queries …
 * ac.abort();
 * await following;
 */
export async function followTrailIndex(index: TrailIndex, options: FollowIndexOptions): Promise<void> {
  const { signal, intervalMs = 1000, onError } = options;
  let wake: (() => void) | undefined;
  const poke = (): void => wake?.();
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(index.auditDir, poke);
    watcher.on('error', () => watcher?.close()); // The timer carries on alone.
  } catch {
    // No directory yet, or no inotify: the timer finds the files.
  }
  signal.addEventListener('abort', poke);
  try {
    while (!signal.aborted) {
      await index.catchUp().catch((err: unknown) => onError?.(err));
      if (signal.aborted) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    signal.removeEventListener('abort', poke);
    watcher?.close();
  }
}
