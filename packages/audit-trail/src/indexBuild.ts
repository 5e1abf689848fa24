import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { errorCode } from '@fso/common';
import { listAuditFiles } from './auditFiles.js';
import type { AuditFile } from './auditFiles.js';
import { agentOf } from './format.js';
import { DROP_RECORD_INDEXES, KIND_CODES, RECORD_INDEXES, TYPE_CODES } from './indexDb.js';
import type BetterSqlite3 from 'better-sqlite3';
import type { Db } from './indexDb.js';
import { readLines } from './lineReader.js';

/** What one catch-up did. */
export interface CatchUpResult {
  /** Records added to the index. */
  added: number;
  /** Audit files whose entries were dropped and indexed again (shrunk, first or last indexed line changed) or dropped (gone). */
  rebuilt: string[];
}

/** A `files` row: how far one audit file is indexed, and what proves it is still the same file. */
interface FileRow {
  id: number;
  name: string;
  indexedBytes: number;
  indexedLines: number;
  records: number;
  firstLineEnd: number | null;
  firstLineHash: string | null;
  lastLineStart: number | null;
  lastLineHash: string | null;
}

/** One line's searchable fields, before its strings are interned. */
type PendingRecord = [line: number, off: number, len: number, kind: number, type: number | null, agent: string | undefined, path: string | undefined, oldPath: string | undefined, ord: number];

/** Lines per transaction: big enough that commits cost little, small enough that memory stays flat. */
const BATCH_LINES = 20_000;
/** Above this many bytes to index into an empty index, the secondary indexes are created after the rows. */
const BULK_BYTES = 64 * 1024 * 1024;
/** Ids remembered while indexing, per table; past this a memo starts afresh (memory stays bounded). */
const MEMO = 100_000;

const DAY_MS = /^(\d{4})-(\d{2})-(\d{2})$/;
const dayStartMs = (day: string): number => {
  const m = DAY_MS.exec(day);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : 0;
};

async function hashRange(file: string, start: number, end: number): Promise<string | undefined> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(end - start);
    const { bytesRead } = await handle.read(buf, 0, buf.length, start);
    return bytesRead === buf.length ? createHash('sha256').update(buf).digest('hex') : undefined;
  } finally {
    await handle.close();
  }
}

/**
 * Catches the index up with the JSONL of one audit directory: the bytes
 * appended to each events and diffs file since it was last indexed, and new
 * day files. A file that shrank, or whose first or last indexed line is no
 * longer the same, is indexed again from its start. Records are committed
 * in batches, each with its file's new position, so a catch-up cut short
 * (`stop()` true, a crash) leaves a consistent index that the next one
 * continues.
 */
export class IndexBuilder {
  readonly #db: Db;
  readonly #auditDir: string;
  readonly #agents: Interner;
  readonly #dirs: Interner;
  readonly #names: Interner;
  readonly #stmts;

  constructor(db: Db, auditDir: string) {
    this.#db = db;
    this.#auditDir = auditDir;
    this.#stmts = {
      files: db.prepare('SELECT id, name, indexedBytes, indexedLines, records, firstLineEnd, firstLineHash, lastLineStart, lastLineHash FROM files'),
      addFile: db.prepare("INSERT INTO files (name, kind, day, indexedBytes, indexedLines, records) VALUES (?, ?, ?, 0, 0, 0)"),
      moveFile: db.prepare(
        'UPDATE files SET indexedBytes = @indexedBytes, indexedLines = @indexedLines, records = @records, firstLineEnd = @firstLineEnd, firstLineHash = @firstLineHash, lastLineStart = @lastLineStart, lastLineHash = @lastLineHash WHERE id = @id',
      ),
      dropFile: db.prepare('DELETE FROM files WHERE id = ?'),
      dropRecords: db.prepare('DELETE FROM records WHERE file = ?'),
      anyRecord: db.prepare('SELECT 1 FROM records LIMIT 1').pluck(),
      addRecord: db.prepare('INSERT INTO records (file, line, off, len, kind, type, agent, dir, name, oldDir, oldName, ord) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      caughtUp: db.prepare("INSERT INTO meta (key, value) VALUES ('lastCaughtUp', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
    };
    this.#agents = new Interner(db, 'agents', 'agentId');
    this.#dirs = new Interner(db, 'dirs', 'dir');
    this.#names = new Interner(db, 'names', 'name');
  }

  /** Indexes what is new; `stop()` is asked between batches (the index is closing). */
  async catchUp(stop: () => boolean): Promise<CatchUpResult> {
    const files = (await listAuditFiles(this.#auditDir)).filter((f) => f.kind !== 'rejected');
    const rows = new Map((this.#stmts.files.all() as FileRow[]).map((row) => [row.name, row]));
    const rebuilt: string[] = [];
    for (const row of rows.values()) {
      if (files.some((f) => f.name === row.name)) continue;
      this.#db.transaction(() => {
        this.#stmts.dropRecords.run(row.id);
        this.#stmts.dropFile.run(row.id);
      })();
      rebuilt.push(row.name);
    }
    const work: Array<{ file: AuditFile; row: FileRow; size: number }> = [];
    for (const file of files) {
      const size = await stat(file.path).then(
        (s) => s.size,
        (err: unknown) => {
          if (errorCode(err) === 'ENOENT') return undefined; // Gone since the listing: the next catch-up drops it.
          throw err;
        },
      );
      if (size === undefined) continue;
      let row = rows.get(file.name);
      if (row && (await this.#changed(file, row, size))) {
        this.#reset(row);
        rebuilt.push(file.name);
      }
      if (!row) {
        const id = Number(this.#stmts.addFile.run(file.name, file.kind, file.day).lastInsertRowid);
        row = { id, name: file.name, indexedBytes: 0, indexedLines: 0, records: 0, firstLineEnd: null, firstLineHash: null, lastLineStart: null, lastLineHash: null };
      }
      if (size > row.indexedBytes) work.push({ file, row, size });
    }
    const pending = work.reduce((sum, w) => sum + w.size - w.row.indexedBytes, 0);
    // A first build inserts without the secondary indexes and sorts them once at the end.
    const bulk = pending > BULK_BYTES && this.#stmts.anyRecord.get() === undefined;
    if (bulk) this.#db.exec(DROP_RECORD_INDEXES);
    let added = 0;
    try {
      for (const { file, row } of work) {
        if (stop()) break;
        added += await this.#indexFile(file, row, stop);
      }
    } finally {
      if (bulk) this.#db.exec(RECORD_INDEXES);
    }
    // Statistics for the planner, sampled (analysis_limit) so they take seconds, not minutes, on 10M rows.
    if (bulk) this.#db.exec('PRAGMA analysis_limit = 1000; ANALYZE;');
    this.#stmts.caughtUp.run(new Date().toISOString());
    return { added, rebuilt };
  }

  /** True when `file` is no longer the file `row` indexed: it shrank, or its first or last indexed line changed. */
  async #changed(file: AuditFile, row: FileRow, size: number): Promise<boolean> {
    if (size < row.indexedBytes) return true;
    if (row.firstLineEnd !== null && (await hashRange(file.path, 0, row.firstLineEnd)) !== row.firstLineHash) return true;
    if (row.lastLineStart !== null && (await hashRange(file.path, row.lastLineStart, row.indexedBytes)) !== row.lastLineHash) return true;
    return false;
  }

  #reset(row: FileRow): void {
    Object.assign(row, { indexedBytes: 0, indexedLines: 0, records: 0, firstLineEnd: null, firstLineHash: null, lastLineStart: null, lastLineHash: null });
    this.#db.transaction(() => {
      this.#stmts.dropRecords.run(row.id);
      this.#stmts.moveFile.run(row);
    })();
  }

  async #indexFile(file: AuditFile, row: FileRow, stop: () => boolean): Promise<number> {
    const kindRank = file.kind === 'diffs' ? 1 : 0;
    const dayStart = dayStartMs(file.day);
    const baseLines = row.indexedLines;
    const next = { ...row };
    let batch: PendingRecord[] = [];
    let lines = 0;
    let added = 0;
    const flush = async (): Promise<void> => {
      // Hashed from the file's bytes, not the decoded text: a byte that is not UTF-8 must not read as a change.
      if (next.firstLineEnd !== null && next.firstLineHash === null) next.firstLineHash = (await hashRange(file.path, 0, next.firstLineEnd)) ?? null;
      if (next.lastLineStart !== null) next.lastLineHash = (await hashRange(file.path, next.lastLineStart, next.indexedBytes)) ?? null;
      this.#commit(row.id, batch, next);
      Object.assign(row, next);
      added += batch.length;
      batch = [];
      lines = 0;
    };
    for await (const line of readLines(file.path, row.indexedBytes)) {
      if (!line.complete) break; // A write in progress: indexed once its newline is there.
      const number = baseLines + line.number;
      const lineEnd = line.end - 1;
      if (number === 1) next.firstLineEnd = lineEnd;
      next.lastLineStart = line.start;
      next.indexedBytes = line.end;
      next.indexedLines = number;
      lines += 1;
      const r = parseObject(line.text);
      if (r) {
        const at = typeof r.receivedAt === 'string' ? Date.parse(r.receivedAt) : Number.NaN;
        batch.push([
          number, line.start, lineEnd - line.start,
          KIND_CODES[String(r.record)] ?? 0,
          typeof r.type === 'string' ? (TYPE_CODES[r.type] ?? null) : null,
          agentOf(r),
          typeof r.path === 'string' ? r.path : undefined,
          typeof r.oldPath === 'string' ? r.oldPath : undefined,
          // A record without a time sorts at the start of its file's day (the linear merge puts it first too).
          (Number.isNaN(at) ? dayStart : at) * 2 + kindRank,
        ]);
        next.records += 1;
      }
      if (lines >= BATCH_LINES) {
        await flush();
        if (stop()) return added;
      }
    }
    if (lines > 0) await flush();
    return added;
  }

  #commit(fileId: number, batch: readonly PendingRecord[], position: FileRow): void {
    const { addRecord, moveFile } = this.#stmts;
    this.#db.transaction(() => {
      for (const [line, off, len, kind, type, agent, path, oldPath, ord] of batch) {
        const [dir, name] = splitPath(path);
        const [oldDir, oldName] = splitPath(oldPath);
        addRecord.run(fileId, line, off, len, kind, type, this.#agents.id(agent), this.#dirs.id(dir), this.#names.id(name), this.#dirs.id(oldDir), this.#names.id(oldName), ord);
      }
      moveFile.run(position);
    })();
  }
}

/** Ids of the distinct values of one column (agents, directories, names), memoized within bounds. */
class Interner {
  readonly #memo = new Map<string, number>();
  readonly #find: BetterSqlite3.Statement<[string], number>;
  readonly #add: BetterSqlite3.Statement<[string]>;

  constructor(db: Db, table: string, column: string) {
    this.#find = db.prepare<[string], number>(`SELECT id FROM ${table} WHERE ${column} = ?`).pluck();
    this.#add = db.prepare<[string]>(`INSERT INTO ${table} (${column}) VALUES (?)`);
  }

  id(value: string | undefined): number | null {
    if (value === undefined) return null;
    let id = this.#memo.get(value);
    if (id === undefined) {
      id = this.#find.get(value) ?? Number(this.#add.run(value).lastInsertRowid);
      if (this.#memo.size >= MEMO) this.#memo.clear();
      this.#memo.set(value, id);
    }
    return id;
  }
}

/** A path as its directory (up to and with its last `/`; '' when it has none) and its name: `dir + name` is the path. */
export function splitPath(path: string | undefined): [dir: string | undefined, name: string | undefined] {
  if (path === undefined) return [undefined, undefined];
  const cut = path.lastIndexOf('/') + 1;
  return [path.slice(0, cut), path.slice(cut)];
}

/** The line as a JSON object, or undefined (the linear readers skip such lines too). */
function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
