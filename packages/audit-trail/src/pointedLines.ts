import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';
import { TrailIndexStaleError } from './errors.js';
import type { AuditRecordLine } from './tail.js';

/** Where the index says a record's line is. */
export interface LinePointer {
  /** Audit file name, e.g. `events-2026-11-22.jsonl`. */
  file: string;
  /** 1-based line number. */
  line: number;
  /** Byte offset of the line's first byte. */
  off: number;
  /** Byte length of the line, without its newline. */
  len: number;
}

/** Reads in flight at once: enough to keep the disk busy, few enough to bound memory. */
const CONCURRENCY = 64;

/**
 * The lines `pointers` point at, read back from the JSONL with positioned
 * reads, in the order given: the index is never the source of truth, every
 * record comes from its file, exactly as the line parses. Throws
 * {@link TrailIndexStaleError} when a pointer no longer lands on a whole
 * JSON line (the file changed since the index caught up).
 */
export async function* readPointedLines(auditDir: string, pointers: Iterable<LinePointer>): AsyncGenerator<AuditRecordLine> {
  const handles = new Map<string, Promise<FileHandle>>();
  const handle = (file: string): Promise<FileHandle> => {
    let h = handles.get(file);
    if (!h) {
      h = open(path.join(auditDir, file), 'r');
      h.catch(() => undefined); // Reported by the read that awaits it.
      handles.set(file, h);
    }
    return h;
  };
  try {
    let chunk: LinePointer[] = [];
    for (const pointer of pointers) {
      chunk.push(pointer);
      if (chunk.length < CONCURRENCY) continue;
      yield* await Promise.all(chunk.map(async (p) => readOne(await openFor(handle, p), p)));
      chunk = [];
    }
    yield* await Promise.all(chunk.map(async (p) => readOne(await openFor(handle, p), p)));
  } finally {
    await Promise.all([...handles.values()].map((h) => h.then((fh) => fh.close(), () => undefined)));
  }
}

async function openFor(handle: (file: string) => Promise<FileHandle>, p: LinePointer): Promise<FileHandle> {
  try {
    return await handle(p.file);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') throw new TrailIndexStaleError(p.file, p.line, 'the file is gone', { cause: err });
    throw err;
  }
}

async function readOne(fh: FileHandle, p: LinePointer): Promise<AuditRecordLine> {
  // One byte more than the line: its newline proves the line ends where the index says.
  const buf = Buffer.alloc(p.len + 1);
  const { bytesRead } = await fh.read(buf, 0, buf.length, p.off);
  if (bytesRead !== buf.length || buf[p.len] !== 0x0a) throw new TrailIndexStaleError(p.file, p.line, 'no whole line at the indexed offset');
  const text = buf.subarray(0, p.len).toString('utf8');
  let record: unknown;
  try {
    record = JSON.parse(text);
  } catch (err) {
    throw new TrailIndexStaleError(p.file, p.line, 'the line at the indexed offset is not JSON', { cause: err });
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new TrailIndexStaleError(p.file, p.line, 'the line at the indexed offset is not a JSON object');
  return { file: p.file, line: p.line, text, record: record as Record<string, unknown> };
}
