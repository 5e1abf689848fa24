import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { EVENT_TYPES, RECORD_KINDS, parseDuration } from '@fso/common';
import picomatch from 'picomatch';
import { listAuditFiles } from './auditFiles.js';
import type { AuditFile } from './auditFiles.js';
import { TailFilterError } from './errors.js';
import { agentOf } from './format.js';
import { readLines } from './lineReader.js';

/** Which records to show; every field narrows, none means all. */
export interface AuditRecordFilter {
  /** Records of this agent. */
  agent?: string;
  /** An event type (create, modify, delete, rename) or a record kind (event, diff, status, config, gap). */
  type?: string;
  /** A glob matched (picomatch, dot: true) against `path` or `oldPath`. */
  path?: string;
  /** Records received at or after this time (a Date, or epoch milliseconds). */
  since?: Date | number;
}

/** One record read from an audit file. */
export interface AuditRecordLine {
  /** File name, e.g. `events-2026-11-22.jsonl`. */
  file: string;
  /** 1-based line number in the file. */
  line: number;
  /** The raw line, as stored (with `prevHash` and `hash`). */
  text: string;
  record: Record<string, unknown>;
}

/** Options of {@link followAuditRecords}. */
export interface FollowOptions {
  /** Stops following when aborted. */
  signal?: AbortSignal;
  /** Poll period beside fs.watch (which can miss events on some file systems); default 500 ms. */
  pollMs?: number;
}

/** Values `--type` accepts. */
export const TAIL_TYPES: readonly string[] = [...new Set<string>([...EVENT_TYPES, ...RECORD_KINDS])];

/** `--since`: an ISO time, or a duration back from `now` (`10m`, `24h`). Throws {@link TailFilterError}. */
export function parseSince(value: string, now: number = Date.now()): Date {
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const ms = Date.parse(value);
    if (Number.isNaN(ms)) throw new TailFilterError('--since', `${JSON.stringify(value)} is not a valid time`);
    return new Date(ms);
  }
  try {
    return new Date(now - parseDuration(value));
  } catch (err) {
    throw new TailFilterError('--since', `${JSON.stringify(value)} is neither an ISO time nor a duration like 10m`, { cause: err });
  }
}

type Matcher = (record: Record<string, unknown>) => boolean;

/** A filter's `type` and `since`, checked: what every reader of the trail (linear or indexed) refuses alike. */
export interface CheckedFilter {
  /** `since` as an ISO time; '' when there is none. */
  sinceIso: string;
  /** True when `type` is an event type (create…) rather than a record kind (event, diff…). */
  isEventType: boolean;
}

/** Checks `type` and `since`; throws {@link TailFilterError} naming the option. */
export function checkFilter(filter: AuditRecordFilter): CheckedFilter {
  const { type } = filter;
  if (type !== undefined && !TAIL_TYPES.includes(type)) {
    throw new TailFilterError('--type', `${JSON.stringify(type)}: use one of ${TAIL_TYPES.join(', ')}`);
  }
  const since = filter.since === undefined ? undefined : new Date(filter.since);
  if (since && Number.isNaN(since.getTime())) throw new TailFilterError('--since', 'not a valid time');
  return { sinceIso: since?.toISOString() ?? '', isEventType: (EVENT_TYPES as readonly string[]).includes(type ?? '') };
}

/** The matcher of a path glob: picomatch with `dot: true`, as `--path` means everywhere. */
export function globMatcher(glob: string): (path: string) => boolean {
  return picomatch(glob, { dot: true });
}

function compileFilter(filter: AuditRecordFilter): { match: Matcher; sinceIso: string } {
  const { agent, type, path: glob } = filter;
  const { sinceIso, isEventType } = checkFilter(filter);
  const pathMatch = glob === undefined ? undefined : globMatcher(glob);
  const match: Matcher = (r) => {
    if (agent !== undefined && agentOf(r) !== agent) return false;
    if (type !== undefined && (isEventType ? r.record !== 'event' || r.type !== type : r.record !== type)) return false;
    if (sinceIso && !(typeof r.receivedAt === 'string' && r.receivedAt >= sinceIso)) return false;
    if (pathMatch) {
      const paths = [r.path, r.oldPath].filter((p): p is string => typeof p === 'string');
      if (!paths.some((p) => pathMatch(p))) return false;
    }
    return true;
  };
  return { match, sinceIso };
}

/** Events and diffs files from `sinceIso`'s day on, grouped by day in day order. */
async function filesByDay(dir: string, sinceIso: string): Promise<AuditFile[][]> {
  const sinceDay = sinceIso.slice(0, 10);
  const byDay = new Map<string, AuditFile[]>();
  for (const file of await listAuditFiles(dir)) {
    if (file.kind === 'rejected' || file.day < sinceDay) continue;
    byDay.set(file.day, [...(byDay.get(file.day) ?? []), file]);
  }
  return [...byDay.keys()].sort().map((day) => byDay.get(day) ?? []);
}

/** The complete lines of a file from `offsets`' position, advancing it; lines that are not JSON objects are skipped. */
async function* fileRecords(file: AuditFile, offsets: Map<string, number>): AsyncGenerator<AuditRecordLine> {
  for await (const line of readLines(file.path, offsets.get(file.name) ?? 0)) {
    if (!line.complete) return; // A write in progress: shown once its newline is there.
    offsets.set(file.name, line.end);
    let record: unknown;
    try {
      record = JSON.parse(line.text);
    } catch {
      continue;
    }
    if (typeof record === 'object' && record !== null && !Array.isArray(record)) {
      yield { file: file.name, line: line.number, text: line.text, record: record as Record<string, unknown> };
    }
  }
}

const receivedAtOf = (r: AuditRecordLine): string => (typeof r.record.receivedAt === 'string' ? r.record.receivedAt : '');

/** Merges streams each sorted by receivedAt into one sorted stream. */
async function* mergeByReceivedAt(streams: Array<AsyncGenerator<AuditRecordLine>>): AsyncGenerator<AuditRecordLine> {
  try {
    const heads = await Promise.all(streams.map(async (s) => (await s.next()).value as AuditRecordLine | undefined));
    for (;;) {
      let best = -1;
      heads.forEach((head, i) => {
        const current = heads[best];
        if (head && (!current || receivedAtOf(head) < receivedAtOf(current))) best = i;
      });
      const head = heads[best];
      const stream = streams[best];
      if (!head || !stream) return;
      yield head;
      heads[best] = (await stream.next()).value as AuditRecordLine | undefined;
    }
  } finally {
    // A consumer that stops early must not leave file streams open.
    await Promise.all(streams.map((s) => s.return(undefined)));
  }
}

async function* readFrom(dir: string, match: Matcher, sinceIso: string, offsets: Map<string, number>): AsyncGenerator<AuditRecordLine> {
  for (const files of await filesByDay(dir, sinceIso)) {
    for await (const record of mergeByReceivedAt(files.map((f) => fileRecords(f, offsets)))) {
      if (match(record.record)) yield record;
    }
  }
}

/**
 * The records of an audit directory's events and diffs files, day by day,
 * both kinds merged by `receivedAt`. Only complete lines are read. Throws
 * {@link TailFilterError} for a filter it cannot use.
 *
 * @example
 * for await (const { record } of readAuditRecords('./audit', { agent: 'web-01', type: 'rename' })) {
 *   process.stdout.write(`${formatRecord(record)}\n`);
 * }
 */
export async function* readAuditRecords(dir: string, filter: AuditRecordFilter = {}): AsyncGenerator<AuditRecordLine> {
  const { match, sinceIso } = compileFilter(filter);
  yield* readFrom(dir, match, sinceIso, new Map());
}

/**
 * Like {@link readAuditRecords}, then follows: yields new complete lines as
 * they are appended, and the files of new days as they appear, until the
 * signal aborts (or the consumer stops iterating). Uses fs.watch on the
 * directory plus a poll.
 *
 * @example
 * const ac = new AbortController();
 * process.once('SIGINT', () => ac.abort());
 * for await (const { text } of followAuditRecords('./audit', {}, { signal: ac.signal })) process.stdout.write(`${text}\n`);
 */
export async function* followAuditRecords(
  dir: string,
  filter: AuditRecordFilter = {},
  options: FollowOptions = {},
): AsyncGenerator<AuditRecordLine> {
  const { match, sinceIso } = compileFilter(filter);
  const { signal, pollMs = 500 } = options;
  const offsets = new Map<string, number>();
  let wake: (() => void) | undefined;
  let changed = false;
  const poke = (): void => {
    changed = true;
    wake?.();
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, poke);
    watcher.on('error', () => watcher?.close()); // The poll carries on alone.
  } catch {
    // No directory yet (or no inotify): the poll finds files when they appear.
  }
  signal?.addEventListener('abort', poke);
  try {
    yield* readFrom(dir, match, sinceIso, offsets);
    while (!signal?.aborted) {
      if (!changed) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pollMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
      changed = false;
      if (signal?.aborted) break;
      // New lines of every file (a new day included), merged by receivedAt.
      const fresh: AuditRecordLine[] = [];
      for (const files of await filesByDay(dir, sinceIso)) {
        for (const file of files) for await (const record of fileRecords(file, offsets)) if (match(record.record)) fresh.push(record);
      }
      fresh.sort((a, b) => receivedAtOf(a).localeCompare(receivedAtOf(b)));
      yield* fresh;
    }
  } finally {
    signal?.removeEventListener('abort', poke);
    watcher?.close();
  }
}
