import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { errorCode } from '@fso/common';
import { TrailIndexError } from './errors.js';

/** An open SQLite connection (better-sqlite3). */
export type Db = BetterSqlite3.Database;

/** The index file inside the caller's index directory. */
export const INDEX_FILE = 'trail.sqlite';

/** Bumped whenever the tables below change: an index of another version is rebuilt. */
const SCHEMA_VERSION = 2;

/**
 * The index's tables. `records` holds no record content, only where each
 * line is (file, line, byte offset and length) and the fields searched by:
 * small integer codes for the kind, event type and agent, and each path
 * split in two ids: its directory (up to and with its last `/`) and its
 * name. A trail of millions of distinct paths has only thousands of
 * directories and names, so a glob or a text is matched against those
 * (milliseconds), never against every path (see pathBlocks.ts).
 * `ord` is `receivedAt` in ms × 2 + 0 for the events file, 1 for the diffs
 * file: ordering by (ord, rowid) is the linear readers' order (day by day,
 * both kinds merged by receivedAt, events first on a tie, line order within
 * a file), and every index below ends in ord (then rowid, implicitly), so a
 * page comes out of an index already in order.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, day TEXT NOT NULL,
  indexedBytes INTEGER NOT NULL, indexedLines INTEGER NOT NULL, records INTEGER NOT NULL,
  firstLineEnd INTEGER, firstLineHash TEXT, lastLineStart INTEGER, lastLineHash TEXT
);
CREATE TABLE IF NOT EXISTS agents (id INTEGER PRIMARY KEY, agentId TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS dirs (id INTEGER PRIMARY KEY, dir TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS records (
  file INTEGER NOT NULL, line INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,
  kind INTEGER NOT NULL, type INTEGER, agent INTEGER, dir INTEGER, name INTEGER, oldDir INTEGER, oldName INTEGER, ord INTEGER NOT NULL
);
`;

/**
 * The secondary indexes, apart so that a first build can insert without
 * them and create them once at the end (a sort instead of millions of
 * random b-tree inserts). Each one ends in `ord` (then the rowid, which
 * every SQLite index holds last), so rows come out of it already in the
 * trail's order: a page needs no sort, and a count over a range visits no
 * table row. Paths are indexed by directory then name, and by name then
 * directory, each as `path` and as `oldPath` (renames only).
 */
export const RECORD_INDEXES = `
CREATE INDEX IF NOT EXISTS records_ord ON records (ord);
CREATE INDEX IF NOT EXISTS records_agent ON records (agent, ord) WHERE agent IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_type ON records (kind, type, ord);
CREATE INDEX IF NOT EXISTS records_dir ON records (dir, name, ord) WHERE dir IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_name ON records (name, dir, ord) WHERE name IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_oldDir ON records (oldDir, oldName, ord) WHERE oldDir IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_oldName ON records (oldName, oldDir, ord) WHERE oldName IS NOT NULL;
`;

/** Drops the indexes {@link RECORD_INDEXES} creates. */
export const DROP_RECORD_INDEXES = `
DROP INDEX IF EXISTS records_ord; DROP INDEX IF EXISTS records_agent; DROP INDEX IF EXISTS records_type;
DROP INDEX IF EXISTS records_dir; DROP INDEX IF EXISTS records_name;
DROP INDEX IF EXISTS records_oldDir; DROP INDEX IF EXISTS records_oldName;
`;

/** Codes of the `record` field (0: any other value). */
export const KIND_CODES: Readonly<Record<string, number>> = { event: 1, diff: 2, status: 3, config: 4, gap: 5, alert: 6 };
/** Codes of an event's `type` (null: any other value). */
export const TYPE_CODES: Readonly<Record<string, number>> = { create: 1, modify: 2, delete: 3, rename: 4 };

/** What {@link openIndexDb} opened, and why it started afresh if it did. */
export interface OpenedDb {
  db: Db;
  file: string;
  /** Set when an existing index was thrown away: corrupt, of another version, or of another audit directory. */
  discarded?: string;
}

type Driver = typeof BetterSqlite3;

/**
 * better-sqlite3 is a native addon loaded only when an index is opened, so
 * `tail` and `verify` keep working where it could not build.
 */
async function loadDriver(indexDir: string): Promise<Driver> {
  try {
    return (await import('better-sqlite3')).default;
  } catch (err) {
    throw new TrailIndexError(indexDir, `its engine, better-sqlite3, cannot be loaded (${(err as Error).message}); run pnpm install so its native addon builds, or search without the index`, { cause: err });
  }
}

/** Errors that mean the file is not a usable index; anything else (EACCES…) is reported, not papered over. */
const CORRUPT_CODES = new Set(['SQLITE_NOTADB', 'SQLITE_CORRUPT']);

/**
 * Opens (creating if need be) the index of `auditDir` in `indexDir`. A
 * writable open throws away and recreates an index that is corrupt, of
 * another schema version or of another audit directory; a read-only open
 * refuses those. Throws {@link TrailIndexError}.
 */
export async function openIndexDb(auditDir: string, indexDir: string, readOnly: boolean): Promise<OpenedDb> {
  const Database = await loadDriver(indexDir);
  const file = path.join(indexDir, INDEX_FILE);
  const audit = path.resolve(auditDir);
  const open = (): Db => {
    try {
      return new Database(file, { readonly: readOnly, fileMustExist: readOnly });
    } catch (err) {
      if (errorCode(err) === 'SQLITE_CANTOPEN') throw new TrailIndexError(file, readOnly ? 'no index there yet (build it with a writable open first)' : 'cannot create the index file', { cause: err });
      throw new TrailIndexError(file, `cannot open: ${(err as Error).message}`, { cause: err });
    }
  };
  if (!readOnly) {
    await mkdir(indexDir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw new TrailIndexError(indexDir, `cannot create the index directory: ${(err as Error).message}`, { cause: err });
    });
  }
  let db = open();
  let discarded: string | undefined;
  try {
    discarded = check(db, audit);
  } catch (err) {
    db.close();
    if (!CORRUPT_CODES.has(errorCode(err) ?? '')) throw new TrailIndexError(file, `cannot read: ${(err as Error).message}`, { cause: err });
    discarded = `corrupt (${(err as Error).message})`;
  }
  if (discarded !== undefined && readOnly) {
    if (db.open) db.close();
    throw new TrailIndexError(file, `unusable read-only: ${discarded}; open it writable to rebuild it`);
  }
  if (discarded !== undefined) {
    if (db.open) db.close();
    await removeIndexFiles(file);
    db = open();
  }
  try {
    setUp(db, audit, readOnly);
  } catch (err) {
    db.close();
    throw new TrailIndexError(file, `cannot set up: ${(err as Error).message}`, { cause: err });
  }
  return discarded === undefined ? { db, file } : { db, file, discarded };
}

/** Why an existing index cannot be kept, or undefined when it can (or is new). Throws SQLite's error for a corrupt file. */
function check(db: Db, audit: string): string | undefined {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === 0) return db.prepare("SELECT count(*) FROM sqlite_schema").pluck().get() === 0 ? undefined : 'not an index of this kind';
  if (version !== SCHEMA_VERSION) return `schema version ${version}, this code needs ${SCHEMA_VERSION}`;
  const built = db.prepare("SELECT value FROM meta WHERE key = 'auditDir'").pluck().get() as string | undefined;
  if (built !== undefined && built !== audit) return `built for another audit directory (${built})`;
  return undefined;
}

function setUp(db: Db, audit: string, readOnly: boolean): void {
  db.pragma('busy_timeout = 5000');
  // A page cache of 32 MB: the serving process stays far below its 300 MB, the OS cache does the rest.
  db.pragma('cache_size = -32768');
  if (readOnly) return;
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(SCHEMA);
  db.exec(RECORD_INDEXES);
  db.prepare("INSERT INTO meta (key, value) VALUES ('auditDir', ?) ON CONFLICT (key) DO NOTHING").run(audit);
  db.pragma(`user_version = ${SCHEMA_VERSION}`);
}

/** Removes an index file and its WAL companions. */
export async function removeIndexFiles(file: string): Promise<void> {
  await Promise.all(['', '-wal', '-shm'].map((suffix) => rm(`${file}${suffix}`, { force: true })));
}
