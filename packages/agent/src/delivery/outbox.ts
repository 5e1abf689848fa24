import { open, readFile, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { errorCode, writeFileAtomic } from '@fso/common';
import type { Logger } from '@fso/common';
import { OutboxError } from '../errors.js';
import { Fifo } from './fifo.js';

/** One message kept until the recorder acknowledges it. */
export interface OutboxEntry {
  seq: number;
  topic: string;
  payload: string;
}

/** The agent's durable outbox (DESIGN.md guarantee 1). */
export interface Outbox {
  /** Highest seq whose entry is on disk, or given up as lost (recovered at start). */
  readonly lastSeq: number;
  /** Highest seq the recorder acknowledged. */
  readonly ackedSeq: number;
  /** Bytes of the entries not yet acknowledged. */
  readonly pendingBytes: number;
  /** True when pendingBytes reached the limit: new messages cannot be kept. */
  readonly full: boolean;
  /** The limit of pendingBytes (see {@link entryBytes}). */
  readonly maxBytes: number;
  /** Seqs given up because the outbox was full, until the recorder's ack passes them. */
  lost(): readonly SeqRange[];
  /** Gives up `seq` (the outbox is full): it is announced as lost, never silently dropped. */
  markLost(seq: number): void;
  /** Entries not yet acknowledged, in seq order (a copy: for a resend, not per message). */
  pending(): readonly OutboxEntry[];
  /** How many entries are not yet acknowledged. */
  readonly pendingCount: number;
  /** The oldest entry not yet acknowledged (no copy), or undefined when none is. */
  oldest(): OutboxEntry | undefined;
  /**
   * Appends the entries, and the baseline journal lines that go with them, and
   * fsyncs both; resolves only when everything is on disk.
   */
  append(entries: readonly OutboxEntry[], journal?: readonly string[]): Promise<void>;
  /** The recorder has every seq ≤ `seq` on its disk. */
  acknowledge(seq: number): void;
  close(): Promise<void>;
}

/** Options of {@link openOutbox}. */
export interface OutboxOptions {
  file: string;
  /** The baseline journal written in the same group (see journal.ts). */
  journalFile: string;
  /** Runs once the last durable seq is known, before the journal is opened for appending (the journal fold). */
  recover?: (lastSeq: number) => Promise<void>;
  log: Logger;
  /** Rewrite the file once it holds this many bytes of acknowledged entries. */
  compactBytes?: number;
  /** Most bytes of unacknowledged entries kept; default 256 MiB. */
  maxBytes?: number;
}

interface Meta {
  ackedSeq: number;
  lastSeq: number;
  lost?: SeqRange[];
}

/** What an entry counts for against the outbox's limit. */
export const entryBytes = (e: OutboxEntry): number => e.payload.length + e.topic.length + 32;

/** A seq range the agent had to give up (the outbox was full), announced in its status. */
export interface SeqRange {
  fromSeq: number;
  toSeq: number;
}

/** The seqs in (ackedSeq, lastSeq] that are neither kept nor in `lost`, as ranges. */
export function unaccounted(ackedSeq: number, lastSeq: number, kept: readonly number[], lost: readonly SeqRange[]): SeqRange[] {
  const covered = [...kept.filter((q) => q > ackedSeq).map((q): SeqRange => ({ fromSeq: q, toSeq: q })), ...lost].sort((a, b) => a.fromSeq - b.fromSeq);
  const holes: SeqRange[] = [];
  let next = ackedSeq + 1;
  for (const r of covered) {
    if (r.fromSeq > next) holes.push({ fromSeq: next, toSeq: Math.min(r.fromSeq - 1, lastSeq) });
    next = Math.max(next, r.toSeq + 1);
    if (next > lastSeq) break;
  }
  if (next <= lastSeq) holes.push({ fromSeq: next, toSeq: lastSeq });
  return holes.filter((h) => h.fromSeq <= h.toSeq);
}

/** Opens the outbox in the state dir, recovering unacknowledged entries and the last seq. */
export async function openOutbox(options: OutboxOptions): Promise<Outbox> {
  const { file, log } = options;
  const metaFile = `${file}.meta.json`;
  const compactBytes = options.compactBytes ?? 8 * 1024 * 1024;
  let meta: Meta = { ackedSeq: 0, lastSeq: 0 };
  try {
    meta = JSON.parse(await readFile(metaFile, 'utf8')) as Meta;
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') log.warn({ err, file: metaFile }, 'outbox meta unreadable; recovering from the outbox alone');
  }
  const entries: OutboxEntry[] = [];
  let validBytes = 0;
  try {
    const text = await readFile(file, 'utf8');
    const total = Buffer.byteLength(text);
    let offset = 0;
    for (const line of text.split('\n')) {
      const end = offset + Buffer.byteLength(line) + 1;
      if (end > total) break; // torn last line: never fsync'd, never published
      try {
        const entry = JSON.parse(line) as OutboxEntry;
        if (typeof entry.seq === 'number') entries.push(entry);
      } catch {
        log.warn({ file, offset }, 'skipping a corrupt outbox line');
      }
      offset = end;
      validBytes = end;
    }
  } catch (err) {
    if (errorCode(err) !== 'ENOENT') throw new OutboxError(file, 'cannot read', { cause: err });
  }
  // Not Math.max(...spread): a full outbox holds far more entries than a call has arguments.
  let lastSeq = entries.reduce((max, e) => Math.max(max, e.seq), Math.max(meta.lastSeq, 0));
  let ackedSeq = meta.ackedSeq;
  // An ack takes entries off the front (a slice per ack was O(pending) for each of thousands of acks).
  const unacked = new Fifo(entries.filter((e) => e.seq > ackedSeq));
  const maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
  const sizeOf = entryBytes;
  let pendingBytes = unacked.toArray().reduce((sum, e) => sum + sizeOf(e), 0);
  let lost: SeqRange[] = (meta.lost ?? []).filter((r) => r.toSeq > ackedSeq);
  // A seq counted but neither kept nor announced (a crash between recording a lost seq and
  // the append of lower ones, or a failed append): announced as lost, never a silent hole.
  const holes = unaccounted(ackedSeq, lastSeq, unacked.toArray().map((e) => e.seq), lost);
  if (holes.length > 0) {
    log.warn({ holes }, 'outbox: seqs neither kept nor announced before a restart; announcing them as lost');
    lost = [...lost, ...holes].sort((a, b) => a.fromSeq - b.fromSeq);
    await writeFileAtomic(metaFile, JSON.stringify({ ackedSeq, lastSeq, lost } satisfies Meta));
  }
  await options.recover?.(lastSeq);
  let handle: FileHandle;
  let journal: FileHandle;
  try {
    journal = await open(options.journalFile, 'a', 0o600);
  } catch (err) {
    throw new OutboxError(options.journalFile, 'cannot open the baseline journal', { cause: err });
  }
  try {
    handle = await open(file, 'a+', 0o600);
    const size = (await stat(file)).size;
    if (size > validBytes) {
      await handle.truncate(validBytes);
      log.warn({ file, cut: size - validBytes }, 'cut a torn outbox line');
    }
  } catch (err) {
    throw new OutboxError(file, 'cannot open', { cause: err });
  }
  let fileBytes = validBytes;
  let compacting = false;
  let chain: Promise<void> = Promise.resolve();
  let closed: Promise<void> | undefined;

  const serial = (task: () => Promise<void>): Promise<void> => {
    const next = chain.then(task);
    chain = next.catch(() => undefined);
    return next;
  };

  const compact = async (): Promise<void> => {
    const text = unacked.toArray().map((e) => `${JSON.stringify(e)}\n`).join('');
    await writeFileAtomic(metaFile, JSON.stringify({ ackedSeq, lastSeq, lost } satisfies Meta));
    await handle.close();
    await writeFileAtomic(file, text);
    handle = await open(file, 'a', 0o600);
    fileBytes = Buffer.byteLength(text);
  };

  if (unacked.size > 0) log.info({ pending: unacked.size, lastSeq, ackedSeq }, 'outbox holds unacknowledged messages; they will be resent');

  return {
    get lastSeq() {
      return lastSeq;
    },
    get ackedSeq() {
      return ackedSeq;
    },
    get pendingBytes() {
      return pendingBytes;
    },
    get full() {
      return pendingBytes >= maxBytes;
    },
    maxBytes,
    pending: () => unacked.toArray(),
    get pendingCount() {
      return unacked.size;
    },
    oldest: () => unacked.peek(),
    lost: () => lost,
    markLost(seq) {
      lastSeq = Math.max(lastSeq, seq);
      const last = lost[lost.length - 1];
      if (last && last.toSeq === seq - 1) last.toSeq = seq;
      else lost.push({ fromSeq: seq, toSeq: seq });
      // Kept in the meta file so a restart still announces it.
      serial(() => writeFileAtomic(metaFile, JSON.stringify({ ackedSeq, lastSeq, lost } satisfies Meta))).catch((err: unknown) =>
        log.error({ err, file: metaFile }, 'cannot record the lost range'),
      );
    },
    append(batch, journalLines = []) {
      if (closed) return Promise.reject(new OutboxError(file, 'closed'));
      return serial(async () => {
        const text = batch.map((e) => `${JSON.stringify(e)}\n`).join('');
        try {
          if (journalLines.length > 0) await journal.appendFile(`${journalLines.join('\n')}\n`);
          if (text.length > 0) await handle.appendFile(text);
          await Promise.all([journalLines.length > 0 ? journal.datasync() : undefined, text.length > 0 ? handle.datasync() : undefined]);
        } catch (err) {
          throw new OutboxError(file, `cannot append: ${(err as Error).message}`, { cause: err });
        }
        fileBytes += Buffer.byteLength(text);
        // Only now: a seq counts as durable once its entry is on disk (the journal fold relies on it).
        for (const e of batch) lastSeq = Math.max(lastSeq, e.seq);
        for (const e of batch) {
          if (e.seq <= ackedSeq) continue;
          unacked.push(e);
          pendingBytes += sizeOf(e);
        }
      });
    },
    acknowledge(seq) {
      if (seq <= ackedSeq) return;
      ackedSeq = Math.min(seq, lastSeq);
      for (let first = unacked.peek(); first !== undefined && first.seq <= ackedSeq; first = unacked.peek()) {
        pendingBytes -= sizeOf(first);
        unacked.shift();
      }
      if (lost.length > 0) lost = lost.filter((r) => r.toSeq > ackedSeq);
      // One compaction at a time: each ack of a burst used to queue another rewrite of the whole file.
      if (fileBytes > compactBytes && !closed && !compacting) {
        compacting = true;
        serial(compact)
          .catch((err: unknown) => log.error({ err, file }, 'outbox compaction failed'))
          .finally(() => (compacting = false));
      }
    },
    close() {
      closed ??= serial(async () => {
        await writeFileAtomic(metaFile, JSON.stringify({ ackedSeq, lastSeq, lost } satisfies Meta));
        await handle.close();
        await journal.close();
      });
      return closed;
    },
  };
}
