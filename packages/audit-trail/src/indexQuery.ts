import { globLiterals, prefixEnd } from './globLiterals.js';
import { KIND_CODES, TYPE_CODES } from './indexDb.js';
import type { Db } from './indexDb.js';
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

const RENAME = TYPE_CODES.rename;
const EVENT = KIND_CODES.event;
const DIFF = KIND_CODES.diff;

/** `ord` of a time: ms × 2 (the file-kind bit below it; see the schema). */
const ordOf = (iso: string): number => Date.parse(iso) * 2;

/** A set of path ids as SQL, bound as one JSON array (json_each), so any size binds as one parameter. */
const inSet = (column: string, param: string): string => `${column} IN (SELECT value FROM json_each(@${param}))`;
/** Path or oldPath in a set: what `--path` and `--text` test. */
const eitherIn = (param: string): string => `(${inSet('path', param)} OR (oldPath IS NOT NULL AND ${inSet('oldPath', param)}))`;

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
    const sets: Array<{ param: string; ids: number[] }> = [];
    if (query.path !== undefined) sets.push({ param: 'glob', ids: this.#globIds(query.path) });
    if (query.text !== undefined) sets.push({ param: 'text', ids: this.#textIds(query.text) });
    for (const { param, ids } of sets) where.params[param] = JSON.stringify(ids);
    // The path test that drives (the fewest paths) comes through the path indexes; any other is a filter.
    sets.sort((a, b) => a.ids.length - b.ids.length);
    const [driver, ...others] = sets;
    for (const { param } of others) where.terms.push(eitherIn(param));
    if (!driver) {
      const total = this.#count(where);
      return { total, records: await this.#read(this.#page(where, '', limit, offset)) };
    }
    if (driver.ids.length === 0) return { total: 0, records: [] };
    const total = this.#countPaths(where, driver.param);
    if (total === 0 || limit === 0) return { total, records: [] };
    const paged = { terms: [...where.terms, eitherIn(driver.param)], params: where.params };
    return { total, records: await this.#read(this.#pathPage(paged, total, limit, offset)) };
  }

  /** See {@link pathHistory}: the records of `target`'s names, gathered through the path indexes until no rename adds a name. */
  async history(target: string, agent: string | undefined): Promise<AuditRecordLine[]> {
    const targetId = this.#pathId(target);
    if (targetId === undefined) return [];
    const agentId = agent === undefined ? undefined : this.#agentId(agent);
    if (agent !== undefined && agentId === undefined) return [];
    const byAgent = agentId === undefined ? '' : 'AND agent = @agent';
    const candidates = this.#db.prepare(
      `SELECT file, line, off, len, path, oldPath, type FROM records
       WHERE kind IN (${EVENT}, ${DIFF}) ${byAgent} AND ${eitherIn('names')} ORDER BY ord, rowid`,
    );
    type Candidate = PointerRow & { path: number | null; oldPath: number | null; type: number | null };
    let names = new Set([targetId]);
    for (;;) {
      const rows = candidates.all({ names: JSON.stringify([...names]), agent: agentId }) as Candidate[];
      const found = new Set([targetId]);
      const kept = walkHistory(rows, targetId, (r) => ({ path: r.path, oldPath: r.oldPath, type: r.type === RENAME ? 'rename' : undefined }), found);
      // Only the rows of the names known so far were walked: a name found on the way means walking again with it.
      if ([...found].every((id) => names.has(id))) return this.#read(kept);
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

  /** Matches through `path`, plus those only through `oldPath` (renames): each record counted once, from the path indexes. */
  #countPaths(where: Where, param: string): number {
    const rest = where.terms.map((t) => ` AND ${t}`).join('');
    const byPath = this.#db.prepare(`SELECT count(*) FROM records INDEXED BY records_path WHERE ${inSet('path', param)}${rest}`);
    const byOldPath = this.#db.prepare(
      `SELECT count(*) FROM records INDEXED BY records_oldPath WHERE oldPath IS NOT NULL AND ${inSet('oldPath', param)} AND (path IS NULL OR NOT ${inSet('path', param)})${rest}`,
    );
    return (byPath.pluck().get(where.params) as number) + (byOldPath.pluck().get(where.params) as number);
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
   * dense; or take every match from the path indexes and sort them, which
   * wins when they are few.
   */
  #pathPage(where: Where, total: number, limit: number, offset: number): PointerRow[] {
    const p = where.params;
    const scanned = p.agent !== undefined ? this.#count({ terms: ['agent = @agent', ...rangeTerms(p)], params: p }) : this.#rangeSize(p);
    const walkCost = Math.min(scanned, ((offset + limit) * scanned) / total);
    const hint = p.agent !== undefined ? 'INDEXED BY records_agent' : 'INDEXED BY records_ord';
    if (walkCost <= total * 4) return this.#page(where, hint, limit, offset);
    return this.#page(where, '', limit, offset);
  }

  /** About how many rows lie in the query's time range: rowids grow with time, so the rowids at its two ends tell. */
  #rangeSize(p: Record<string, unknown>): number {
    const rowidAt = this.#db.prepare('SELECT rowid FROM records INDEXED BY records_ord WHERE ord >= ? ORDER BY ord LIMIT 1').pluck();
    const last = (this.#db.prepare('SELECT max(rowid) FROM records').pluck().get() as number | null) ?? 0;
    const from = p.since === undefined ? 0 : ((rowidAt.get(p.since) as number | undefined) ?? last);
    const to = p.until === undefined ? last : ((rowidAt.get(p.until) as number | undefined) ?? last);
    return Math.max(1, to - from);
  }

  #globIds(glob: string): number[] {
    const matches = globMatcher(glob);
    const { prefix, required } = globLiterals(glob);
    const terms: string[] = [];
    const params: Record<string, string> = {};
    if (prefix) {
      terms.push('path >= @from');
      params.from = prefix;
      const to = prefixEnd(prefix);
      if (to) {
        terms.push('path < @to');
        params.to = to;
      }
    }
    if (required) {
      terms.push('instr(path, @required) > 0');
      params.required = required;
    }
    const rows = this.#db
      .prepare(`SELECT id, path FROM paths ${terms.length > 0 ? `WHERE ${terms.join(' AND ')}` : ''}`)
      .raw()
      .iterate(params) as IterableIterator<[number, string]>;
    const ids: number[] = [];
    for (const [id, path] of rows) if (matches(path)) ids.push(id);
    return ids;
  }

  #textIds(text: string): number[] {
    return this.#db.prepare('SELECT id FROM paths WHERE instr(path, ?) > 0').pluck().all(text) as number[];
  }

  #agentId(agent: string): number | undefined {
    return this.#db.prepare('SELECT id FROM agents WHERE agentId = ?').pluck().get(agent) as number | undefined;
  }

  #pathId(path: string): number | undefined {
    return this.#db.prepare('SELECT id FROM paths WHERE path = ?').pluck().get(path) as number | undefined;
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

