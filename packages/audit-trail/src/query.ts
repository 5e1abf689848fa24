import { TailFilterError } from './errors.js';
import { agentOf } from './format.js';
import { readAuditRecords } from './tail.js';
import type { AuditRecordFilter, AuditRecordLine } from './tail.js';

/**
 * A search of the trail: {@link AuditRecordFilter}'s filters plus an end
 * time, a text to find in a path, and a page.
 */
export interface AuditQuery extends AuditRecordFilter {
  /** Records received before this time (a Date, or epoch milliseconds). */
  until?: Date | number;
  /** Text that `path` or `oldPath` contains (case-sensitive, as paths are). */
  text?: string;
  /** At most this many records (default 100). */
  limit?: number;
  /** Records to skip first (paging; default 0). */
  offset?: number;
}

/** One page of a query, with the count of every record that matched. */
export interface AuditQueryResult {
  total: number;
  records: AuditRecordLine[];
}

/** What the trail says a path holds, replayed from its events. */
export interface TrailEntry {
  kind: string;
  size: number | null;
  sha256: string | null;
  /** The last event that set it. */
  type: string;
  receivedAt: string;
}

const pathsOf = (r: Record<string, unknown>): string[] => [r.path, r.oldPath].filter((p): p is string => typeof p === 'string');

/** `until` as an ISO time; throws {@link TailFilterError} for one that is not a time. */
export function untilIso(until: Date | number | undefined): string | undefined {
  if (until === undefined) return undefined;
  const at = new Date(until);
  if (Number.isNaN(at.getTime())) throw new TailFilterError('--until', 'not a valid time');
  return at.toISOString();
}

/** A query's page (default 100 from 0), checked; throws {@link TailFilterError} naming `--limit` or `--offset`. */
export function checkPage(query: Pick<AuditQuery, 'limit' | 'offset'>): { limit: number; offset: number } {
  const { limit = 100, offset = 0 } = query;
  if (!Number.isInteger(limit) || limit < 0) throw new TailFilterError('--limit', 'a whole number ≥ 0');
  if (!Number.isInteger(offset) || offset < 0) throw new TailFilterError('--offset', 'a whole number ≥ 0');
  return { limit, offset };
}

/**
 * Runs `query` over the events and diffs files of `dir`, oldest first, and
 * returns one page and the total count. It reads the JSONL files (no index
 * yet: linear in the trail's size). Throws {@link TailFilterError} for a
 * filter it cannot use.
 *
 * @example
 * const { total, records } = await queryAuditRecords('./audit', { agent: 'web-01', type: 'delete', since: Date.now() - 86_400_000, limit: 50 });
 */
export async function queryAuditRecords(dir: string, query: AuditQuery = {}): Promise<AuditQueryResult> {
  const { until, text, limit: _limit, offset: _offset, ...filter } = query;
  const { limit, offset } = checkPage(query);
  const end = untilIso(until);
  const records: AuditRecordLine[] = [];
  let total = 0;
  for await (const line of readAuditRecords(dir, filter)) {
    const r = line.record;
    if (end !== undefined && !(typeof r.receivedAt === 'string' && r.receivedAt < end)) continue;
    if (text !== undefined && !pathsOf(r).some((p) => p.includes(text))) continue;
    if (total >= offset && records.length < limit) records.push(line);
    total += 1;
  }
  return { total, records };
}

/**
 * Every event and diff of one path, oldest first, following it through
 * renames: the records of the names it had before (`a → b` then `b → c`:
 * the history of `c` has `a`'s), of one agent if given.
 *
 * @example
 * for (const { record } of await pathHistory('./audit', '/etc/nginx/nginx.conf', { agent: 'web-01' })) console.log(record.type);
 */
export async function pathHistory(dir: string, target: string, options: { agent?: string } = {}): Promise<AuditRecordLine[]> {
  const all: AuditRecordLine[] = [];
  for await (const line of readAuditRecords(dir, { agent: options.agent })) {
    if (line.record.record === 'event' || line.record.record === 'diff') all.push(line);
  }
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  return walkHistory(all, target, ({ record: r }) => ({ path: str(r.path), oldPath: str(r.oldPath), type: r.type }));
}

/** The fields of a record {@link walkHistory} looks at; `K` is a path or a path's id. */
export interface HistoryStep<K> {
  path?: K | null;
  oldPath?: K | null;
  type?: unknown;
}

/**
 * Of `all` (events and diffs, oldest first), those of `target` through its
 * renames, oldest first. Walked backwards: a rename to a name the path has
 * had makes its old name one of them too. Generic over the key so the index
 * walks path ids the same way the linear scan walks path strings.
 */
export function walkHistory<T, K>(all: readonly T[], target: K, fieldsOf: (item: T) => HistoryStep<K>, names: Set<K> = new Set([target])): T[] {
  const kept: T[] = [];
  for (let i = all.length - 1; i >= 0; i -= 1) {
    const item = all[i] as T;
    const r = fieldsOf(item);
    if (r.path === undefined || r.path === null || !names.has(r.path)) {
      if (r.oldPath !== undefined && r.oldPath !== null && names.has(r.oldPath)) kept.push(item); // renamed away later, and back
      continue;
    }
    kept.push(item);
    if (r.type === 'rename' && r.oldPath !== undefined && r.oldPath !== null) names.add(r.oldPath);
  }
  return kept.reverse();
}

/**
 * What one agent's watched paths under `under` (a directory) held, as its
 * events replayed from the start of the trail (up to `until` if given): every
 * path with its kind, size and sha256. Paths are per host, so the agent is
 * required.
 *
 * @example
 * const tree = await treeFromTrail('./audit', { agent: 'web-01', under: '/etc' });
 */
export async function treeFromTrail(dir: string, options: TreeOptions): Promise<Map<string, TrailEntry>> {
  async function* events(): AsyncGenerator<Record<string, unknown>> {
    for await (const { record } of readAuditRecords(dir, { agent: options.agent, type: 'event' })) yield record;
  }
  return replayTree(events(), options);
}

/** Options of {@link treeFromTrail}: the agent, a directory, a moment. */
export interface TreeOptions {
  agent: string;
  under?: string;
  until?: Date | number;
}

/**
 * Replays `events` (one agent's event records, oldest first; others are
 * skipped) into the tree they leave: the heart of {@link treeFromTrail},
 * shared with the index, which feeds it the agent's events read back from
 * their lines.
 */
export async function replayTree(events: AsyncIterable<Record<string, unknown>>, options: TreeOptions): Promise<Map<string, TrailEntry>> {
  const end = untilIso(options.until);
  const under = options.under?.replace(/\/+$/, '');
  const inside = under === undefined || under === '' ? () => true : (p: string) => p === under || p.startsWith(`${under}/`);
  const tree = new Map<string, TrailEntry>();
  for await (const r of events) {
    if (typeof r.receivedAt !== 'string' || (end !== undefined && r.receivedAt >= end)) continue;
    if (typeof r.path !== 'string' || agentOf(r) !== options.agent) continue;
    const entry: TrailEntry = {
      kind: String(r.kind), size: typeof r.size === 'number' ? r.size : null, sha256: typeof r.sha256 === 'string' ? r.sha256 : null,
      type: String(r.type), receivedAt: r.receivedAt,
    };
    if (r.type === 'delete') tree.delete(r.path);
    else if (r.type === 'rename' && typeof r.oldPath === 'string') {
      // A directory rename is one event: what was below it moves with it.
      const from = r.oldPath;
      for (const [p, e] of [...tree]) {
        if (p !== from && !p.startsWith(`${from}/`)) continue;
        tree.delete(p);
        tree.set(r.path + p.slice(from.length), e);
      }
      tree.set(r.path, entry);
    } else tree.set(r.path, entry);
  }
  for (const p of [...tree.keys()]) if (!inside(p)) tree.delete(p);
  return tree;
}
