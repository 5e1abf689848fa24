import { splitPath } from './indexBuild.js';
import { KIND_CODES, TYPE_CODES } from './indexDb.js';
import type { Db } from './indexDb.js';
import { globBlocks, textBlocks } from './pathBlocks.js';
import type { PathBlock, PathParts } from './pathBlocks.js';
import { readPointedLines } from './pointedLines.js';
import type { LinePointer } from './pointedLines.js';
import { checkPage, untilIso, walkHistory } from './query.js';
import type { AuditQuery, AuditQueryResult } from './query.js';
import { checkFilter, globMatcher } from './tail.js';
import type { AuditRecordLine } from './tail.js';

/** A row of `records` as the queries select it: where the line is. */
interface PointerRow {
  file: number;
  line: number;
  off: number;
  len: number;
}

/** A WHERE clause over `records` and its named parameters. */
interface Where {
  terms: string[];
  params: Record<string, unknown>;
}

/** A path search made SQL: its blocks, their parameters, how big a part of the paths it is. */
interface PathSet {
  name: string;
  blocks: PathBlock[];
  /** Estimated share of the records it matches (0..n), to pick the set that drives. */
  share: number;
}

const RENAME = TYPE_CODES.rename;
const EVENT = KIND_CODES.event;
const DIFF = KIND_CODES.diff;

/** `ord` of a time: ms × 2 (the file-kind bit below it; see the schema). */
const ordOf = (iso: string): number => Date.parse(iso) * 2;

/** Ids as one JSON array parameter (json_each), so any number of them binds as one. */
const inList = (column: string, param: string): string => `${column} IN (SELECT value FROM json_each(@${param}))`;
const PATH = { dir: 'dir', name: 'name', byDir: 'records_dir', byName: 'records_name' };
const OLD_PATH = { dir: 'oldDir', name: 'oldName', byDir: 'records_oldDir', byName: 'records_oldName' };
type Columns = typeof PATH;

/** (directory, name) pairs as one JSON array parameter of [dirId, nameId] arrays. */
const pairSql = (cols: Columns, param: string): string => `(${cols.dir}, ${cols.name}) IN (SELECT value ->> 0, value ->> 1 FROM json_each(@${param}))`;

/** One block of a set as SQL over the path or the oldPath columns. */
function blockSql(set: PathSet, i: number, cols: Columns): string {
  const block = set.blocks[i] as PathBlock;
  // The IS NOT NULL terms let SQLite use the partial indexes (an IN list does not imply them to its planner).
  const notNull = `${cols.dir} IS NOT NULL AND ${cols.name} IS NOT NULL`;
  if (block.pairs) return `${notNull} AND ${pairSql(cols, `${set.name}p${i}`)}`;
  return [
    notNull,
    ...(block.dirs ? [inList(cols.dir, `${set.name}d${i}`)] : []),
    ...(block.names ? [inList(cols.name, `${set.name}n${i}`)] : []),
  ].join(' AND ');
}

/** The whole set, over the path or the oldPath columns. */
const setSql = (set: PathSet, cols: Columns): string => `(${set.blocks.map((_, i) => `(${blockSql(set, i, cols)})`).join(' OR ')})`;
/** Path or oldPath in the set: what `--path` and `--text` test. */
const eitherSql = (set: PathSet): string => `(${setSql(set, PATH)} OR ${setSql(set, OLD_PATH)})`;

/**
 * The searches of an index: the same answers as the linear readers of
 * query.ts (they stay the reference, and a test holds both to it), from the
 * index's rows, every record read back from its JSONL line.
 */
export class IndexQueries {
  readonly #db: Db;
  readonly #auditDir: string;

  constructor(db: Db, auditDir: string) {
    this.#db = db;
    this.#auditDir = auditDir;
  }

  /** See {@link queryAuditRecords}. */
  async query(query: AuditQuery): Promise<AuditQueryResult> {
    const { limit, offset } = checkPage(query);
    const { sinceIso, isEventType } = checkFilter(query);
    const end = untilIso(query.until);
    const where: Where = { terms: [], params: {} };
    const add = (term: string, params: Record<string, unknown> = {}): void => {
      where.terms.push(term);
      Object.assign(where.params, params);
    };
    if (query.agent !== undefined) add('agent = @agent', { agent: this.#agentId(query.agent) ?? -1 });
    if (query.type !== undefined) {
      if (isEventType) add('kind = @kind AND type = @type', { kind: EVENT, type: TYPE_CODES[query.type] });
      else add('kind = @kind', { kind: KIND_CODES[query.type] });
    }
    if (sinceIso) add('ord >= @since', { since: ordOf(sinceIso) });
    if (end !== undefined) add('ord < @until', { until: ordOf(end) });
    const parts = query.path !== undefined || query.text !== undefined ? this.#parts() : undefined;
    const sets: PathSet[] = [];
    if (query.path !== undefined && parts) sets.push(this.#pathSet('glob', globBlocks(query.path, parts) ?? this.#scanGlob(query.path, parts), parts));
    if (query.text !== undefined && parts) sets.push(this.#pathSet('text', textBlocks(query.text, parts), parts));
    for (const set of sets) {
      set.blocks.forEach((block, i) => {
        if (block.dirs) where.params[`${set.name}d${i}`] = JSON.stringify(block.dirs);
        if (block.names) where.params[`${set.name}n${i}`] = JSON.stringify(block.names);
        if (block.pairs) where.params[`${set.name}p${i}`] = JSON.stringify(block.pairs);
      });
    }
    // The path test that matches least drives, through the path indexes; any other is a filter.
    sets.sort((a, b) => a.share - b.share);
    const [driver, ...others] = sets;
    if (sets.some((set) => set.blocks.length === 0)) return { total: 0, records: [] };
    for (const set of others) where.terms.push(eitherSql(set));
    if (!driver) {
      const total = this.#count(where);
      return { total, records: await this.#read(this.#page(where, '', limit, offset)) };
    }
    const total = this.#countPaths(where, driver);
    if (total === 0 || limit === 0) return { total, records: [] };
    return { total, records: await this.#read(this.#pathPage(where, driver, total, limit, offset)) };
  }

  /** See {@link pathHistory}: the records of `target`'s names, gathered through the path indexes until no rename adds a name. */
  async history(target: string, agent: string | undefined): Promise<AuditRecordLine[]> {
    const targetKey = this.#pathKey(target);
    if (targetKey === undefined) return [];
    const agentId = agent === undefined ? undefined : this.#agentId(agent);
    if (agent !== undefined && agentId === undefined) return [];

    const candidates = this.#db.prepare(
      `SELECT file, line, off, len, dir, name, oldDir, oldName, type FROM records
       WHERE rowid IN (SELECT rowid FROM records WHERE dir IS NOT NULL AND ${pairSql(PATH, 'names')} UNION SELECT rowid FROM records WHERE oldDir IS NOT NULL AND ${pairSql(OLD_PATH, 'names')})
       AND kind IN (${EVENT}, ${DIFF}) ${agentId === undefined ? '' : 'AND agent = @agent'} ORDER BY ord, rowid`,
    );
    type Candidate = PointerRow & { dir: number | null; name: number | null; oldDir: number | null; oldName: number | null; type: number | null };
    const key = (dir: number | null, name: number | null): string | null => (dir === null ? null : `${dir}:${name}`);
    let names = new Set([targetKey]);
    for (;;) {
      const rows = candidates.all({ names: JSON.stringify([...names].map((k) => k.split(':').map(Number))), agent: agentId }) as Candidate[];
      const found = new Set([targetKey]);
      const kept = walkHistory(rows, targetKey, (r) => ({ path: key(r.dir, r.name), oldPath: key(r.oldDir, r.oldName), type: r.type === RENAME ? 'rename' : undefined }), found);
      // Only the rows of the names known so far were walked: a name found on the way means walking again with it.
      if ([...found].every((k) => names.has(k))) return this.#read(kept);
      names = new Set([...names, ...found]);
    }
  }

  /** One agent's event records up to `until`, oldest first, read back from the JSONL (the input of the tree's replay). */
  async *agentEvents(agent: string, until: Date | number | undefined): AsyncGenerator<Record<string, unknown>> {
    const end = untilIso(until);
    const agentId = this.#agentId(agent);
    if (agentId === undefined) return;
    // Pages of rows, never an open cursor across an await: better-sqlite3's connection is busy while one is.
    const next = this.#db.prepare(
      `SELECT file, line, off, len, ord, rowid AS id FROM records INDEXED BY records_agent
       WHERE agent = @agent AND kind = ${EVENT} AND (ord, rowid) > (@ord, @id) ${end === undefined ? '' : 'AND ord < @until'} ORDER BY ord, rowid LIMIT 10000`,
    );
    const after = { agent: agentId, ord: -1, id: 0, until: end === undefined ? undefined : ordOf(end) };
    for (;;) {
      const rows = next.all(after) as Array<PointerRow & { ord: number; id: number }>;
      const last = rows.at(-1);
      if (!last) return;
      Object.assign(after, { ord: last.ord, id: last.id });
      for await (const { record } of readPointedLines(this.#auditDir, this.#pointers(rows))) yield record;
    }
  }

  #count(where: Where): number {
    if (where.terms.length === 0) return (this.#db.prepare('SELECT coalesce(sum(records), 0) FROM files').pluck().get() as number);
    return this.#db.prepare(`SELECT count(*) FROM records WHERE ${where.terms.join(' AND ')}`).pluck().get(where.params) as number;
  }

  /** Matches through the path, plus those only through the oldPath (renames): each record counted once, block by block from the path indexes. */
  #countPaths(where: Where, set: PathSet): number {
    const rest = where.terms.map((t) => ` AND ${t}`).join('');
    let total = 0;
    set.blocks.forEach((_, i) => {
      const byPath = `SELECT count(*) FROM records INDEXED BY ${this.#indexFor(set, i, PATH)} WHERE ${blockSql(set, i, PATH)}${rest}`;
      const byOldPath = `SELECT count(*) FROM records INDEXED BY ${this.#indexFor(set, i, OLD_PATH)} WHERE ${blockSql(set, i, OLD_PATH)} AND NOT coalesce(${setSql(set, PATH)}, 0)${rest}`;
      total += (this.#db.prepare(byPath).pluck().get(where.params) as number) + (this.#db.prepare(byOldPath).pluck().get(where.params) as number);
    });
    return total;
  }

  /** The index that narrows block `i` most: by directory, or by name. */
  #indexFor(set: PathSet, i: number, cols: Columns): string {
    const { dirs, names, pairs } = set.blocks[i] as PathBlock;
    if (!names || pairs) return cols.byDir;
    if (!dirs) return cols.byName;
    const counts = this.#partCounts();
    return dirs.length / counts.dirs <= names.length / counts.names ? cols.byDir : cols.byName;
  }

  #page(where: Where, hint: string, limit: number, offset: number): PointerRow[] {
    const clause = where.terms.length > 0 ? `WHERE ${where.terms.join(' AND ')}` : '';
    return this.#db
      .prepare(`SELECT file, line, off, len FROM records ${hint} ${clause} ORDER BY ord, rowid LIMIT @limit OFFSET @offset`)
      .all({ ...where.params, limit, offset }) as PointerRow[];
  }

  /**
   * A page of path matches, by the cheaper of two routes: walk the trail in
   * order (the agent's rows, or all rows in the time range) testing each
   * row's paths, which stops once the page is full and wins when matches are
   * dense; or take every match from the path indexes, block by block, and
   * sort them, which wins when they are few.
   */
  #pathPage(where: Where, set: PathSet, total: number, limit: number, offset: number): PointerRow[] {
    const p = where.params;
    const scanned = p.agent !== undefined ? this.#count({ terms: ['agent = @agent', ...rangeTerms(p)], params: p }) : this.#rangeSize(p);
    const walkCost = Math.min(scanned, ((offset + limit) * scanned) / total);
    if (walkCost <= total * 4) {
      const hint = p.agent !== undefined ? 'INDEXED BY records_agent' : 'INDEXED BY records_ord';
      return this.#page({ terms: [...where.terms, eitherSql(set)], params: p }, hint, limit, offset);
    }
    const selects = set.blocks.flatMap((_, i) =>
      [PATH, OLD_PATH].map((cols) => `SELECT rowid FROM records INDEXED BY ${this.#indexFor(set, i, cols)} WHERE ${blockSql(set, i, cols)}`),
    );
    return this.#page({ terms: [...where.terms, `rowid IN (${selects.join(' UNION ')})`], params: p }, '', limit, offset);
  }

  /** About how many rows lie in the query's time range: rowids grow with time, so the rowids at its two ends tell. */
  #rangeSize(p: Record<string, unknown>): number {
    const rowidAt = this.#db.prepare('SELECT rowid FROM records INDEXED BY records_ord WHERE ord >= ? ORDER BY ord LIMIT 1').pluck();
    const last = (this.#db.prepare('SELECT max(rowid) FROM records').pluck().get() as number | null) ?? 0;
    const from = p.since === undefined ? 0 : ((rowidAt.get(p.since) as number | undefined) ?? last);
    const to = p.until === undefined ? last : ((rowidAt.get(p.until) as number | undefined) ?? last);
    return Math.max(1, to - from);
  }

  /** The distinct directories and names: thousands, where the paths are millions. */
  #parts(): PathParts {
    return {
      dirs: this.#db.prepare('SELECT id, dir FROM dirs').raw().all() as Array<[number, string]>,
      names: this.#db.prepare('SELECT id, name FROM names').raw().all() as Array<[number, string]>,
    };
  }

  #partCounts(): { dirs: number; names: number } {
    return this.#db.prepare('SELECT max(1, (SELECT count(*) FROM dirs)) AS dirs, max(1, (SELECT count(*) FROM names)) AS names').get() as { dirs: number; names: number };
  }

  #pathSet(name: string, blocks: PathBlock[], parts: PathParts): PathSet {
    const share = (ids: number[] | undefined, all: number): number => (ids === undefined ? 1 : ids.length / Math.max(1, all));
    const blockShare = (b: PathBlock): number => (b.pairs ? b.pairs.length / Math.max(1, parts.dirs.length * parts.names.length) : share(b.dirs, parts.dirs.length) * share(b.names, parts.names.length));
    return { name, blocks, share: blocks.reduce((sum, b) => sum + blockShare(b), 0) };
  }

  /**
   * A glob of no shape that splits at the name (`**`, `a/**.conf`, an
   * extglob…): every distinct path is tested. Exact, but it reads the whole
   * directory index; the shapes of pathBlocks.ts are the fast ones.
   */
  #scanGlob(glob: string, parts: PathParts): PathBlock[] {
    const matches = globMatcher(glob);
    const dirs = new Map(parts.dirs);
    const names = new Map(parts.names);
    const found: Array<[number, number]> = [];
    const pairs = this.#db
      .prepare('SELECT DISTINCT dir, name FROM records INDEXED BY records_dir WHERE dir IS NOT NULL UNION SELECT DISTINCT oldDir, oldName FROM records INDEXED BY records_oldDir WHERE oldDir IS NOT NULL')
      .raw()
      .all() as Array<[number, number]>;
    for (const pair of pairs) if (matches(`${dirs.get(pair[0]) ?? ''}${names.get(pair[1]) ?? ''}`)) found.push(pair);
    return found.length === 0 ? [] : [{ pairs: found }];
  }

  #agentId(agent: string): number | undefined {
    return this.#db.prepare('SELECT id FROM agents WHERE agentId = ?').pluck().get(agent) as number | undefined;
  }

  /** `dirId:nameId` of a path, if the index has both parts. */
  #pathKey(path: string): string | undefined {
    const [dir, name] = splitPath(path);
    const dirId = this.#db.prepare('SELECT id FROM dirs WHERE dir = ?').pluck().get(dir) as number | undefined;
    const nameId = this.#db.prepare('SELECT id FROM names WHERE name = ?').pluck().get(name) as number | undefined;
    return dirId === undefined || nameId === undefined ? undefined : `${dirId}:${nameId}`;
  }

  *#pointers(rows: Iterable<PointerRow>): Generator<LinePointer> {
    const names = new Map((this.#db.prepare('SELECT id, name FROM files').raw().all() as Array<[number, string]>));
    for (const row of rows) yield { file: names.get(row.file) ?? '', line: row.line, off: row.off, len: row.len };
  }

  async #read(rows: readonly PointerRow[]): Promise<AuditRecordLine[]> {
    const lines: AuditRecordLine[] = [];
    for await (const line of readPointedLines(this.#auditDir, this.#pointers(rows))) lines.push(line);
    return lines;
  }
}

const rangeTerms = (p: Record<string, unknown>): string[] => [
  ...(p.since === undefined ? [] : ['ord >= @since']),
  ...(p.until === undefined ? [] : ['ord < @until']),
];

