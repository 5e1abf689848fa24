import type * as Fs from 'node:fs';
import type { DiffArrays, LineDiffInput, LineDiffOutcome } from './lineDiff.js';

/**
 * The differ's file work, done in the diff worker thread so the agent's
 * event loop never holds, copies, checks or hashes a 10 MB file: read the
 * file (as safely as hash.ts does), read and check the stored previous
 * content, store the new one (no fsync: see contentStore.ts), rule out
 * binary content, diff. Self-contained: compiled into the worker as its
 * source text (like lineDiff), so it uses only what `deps` gives it.
 */

/** One file job: a diff of `path` as it is now against what is stored, or (`remember`) storing it without a diff. */
export interface FileJob {
  kind: 'diff' | 'remember';
  path: string;
  /** The content store's file of `path` (ContentStore.fileOf). */
  storeFile: string;
  change: 'create' | 'modify' | 'delete';
  maxFileBytes: number;
  oldName: string;
  newName: string;
  context: number;
  /** For a diff: give up (`timeout`) when the diff itself takes longer. Also bounds the watchdog. */
  timeoutMs: number;
  maxPatchBytes: number;
}

/** Things worth a log line on the main thread. */
export interface FileJobNotes {
  /** The stored content failed its checksum (torn or damaged): diffed as if nothing were stored. */
  storedDamaged?: boolean;
  /** The new content could not be stored (or the stale one removed): the next diff of this file may be wrong. */
  storeError?: string;
}

/**
 * What became of a {@link FileJob}. `unreadable` carries the code or
 * kind seen (`vanished`, `not-regular`, `EACCES`…). `same`: a modify that
 * changed no byte. `sources`: the whole texts, only when one holds a
 * private key (redaction needs them). `error`: an unexpected I/O error.
 */
export type FileJobResult = FileJobNotes &
  (
    | { outcome: 'skipped'; reason: 'too-large' | 'binary' | 'unreadable'; detail?: string }
    | { outcome: 'same' }
    | { outcome: 'remembered' }
    | { outcome: 'patch'; patch: string; added: number; removed: number; sources?: { old: string; new: string } }
    | { outcome: 'too-large'; added: number; removed: number }
    | { outcome: 'timeout' }
    | { outcome: 'failed'; reason: string }
    | { outcome: 'error'; message: string; code?: string }
  );

/** What {@link runFileJob} uses: node:fs, SHA-256, the store's format, UTF-8 check, the diff. */
export interface FileJobDeps {
  fs: typeof Fs;
  sha256Hex: (data: Uint8Array) => string;
  randomHex: () => string;
  isUtf8: (data: Uint8Array) => boolean;
  encodeStored: (content: Uint8Array, sha256Hex: (data: Uint8Array) => string) => string;
  decodeStored: (stored: Uint8Array, sha256Hex: (data: Uint8Array) => string) => Uint8Array | null;
  lineDiff: (input: LineDiffInput, diffArrays: DiffArrays) => LineDiffOutcome;
  diffArrays: DiffArrays;
}

/** Runs one {@link FileJob} with synchronous I/O (it blocks only the worker thread). */
export function runFileJob(job: FileJob, deps: FileJobDeps): FileJobResult {
  const { fs } = deps;
  const notes: FileJobNotes = {};
  const EMPTY = new Uint8Array(0);
  // Expected errors of reading a file the agent does not trust (hash.ts's list).
  const EXPECTED = ['ENOENT', 'ENOTDIR', 'EACCES', 'EPERM', 'ELOOP', 'EISDIR', 'ENXIO'];
  const codeOf = (err: unknown): string | undefined => (err as { code?: string } | null)?.code;
  const expected = (err: unknown): string => {
    const code = codeOf(err);
    if (code === undefined || !EXPECTED.includes(code)) throw err;
    return code === 'ENOENT' || code === 'ENOTDIR' ? 'vanished' : code;
  };

  /** The file's bytes, or why there are none: never through a symlink, never blocking on a FIFO, never over the bound. */
  function readCurrent(): { content: Uint8Array } | { skipped: string } {
    try {
      if (!fs.lstatSync(job.path).isFile()) return { skipped: 'not-regular' };
    } catch (err) {
      return { skipped: expected(err) };
    }
    let fd: number;
    try {
      const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
      fd = fs.openSync(job.path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    } catch (err) {
      return { skipped: expected(err) };
    }
    try {
      const stats = fs.fstatSync(fd);
      if (!stats.isFile()) return { skipped: 'not-regular' };
      if (stats.size > job.maxFileBytes) return { skipped: 'too-large' };
      // One byte more than the bound: a file that grew past it is seen.
      let buffer = Buffer.allocUnsafe(Math.min(Math.max(stats.size + 1, 64 * 1024), job.maxFileBytes + 1));
      let total = 0;
      for (;;) {
        if (total === buffer.length) {
          if (total > job.maxFileBytes) return { skipped: 'too-large' };
          const grown = Buffer.allocUnsafe(Math.min(2 * buffer.length, job.maxFileBytes + 1));
          buffer.copy(grown, 0, 0, total);
          buffer = grown;
        }
        const read = fs.readSync(fd, buffer, total, buffer.length - total, null);
        if (read === 0) break;
        total += read;
      }
      if (total > job.maxFileBytes) return { skipped: 'too-large' };
      return { content: buffer.subarray(0, total) };
    } catch (err) {
      return { skipped: expected(err) };
    } finally {
      fs.closeSync(fd);
    }
  }

  /** What is stored of the file: null when nothing is, or when it fails its checksum. */
  function readStored(): Uint8Array | null {
    let stored: Buffer;
    try {
      stored = fs.readFileSync(job.storeFile);
    } catch (err) {
      if (codeOf(err) === 'ENOENT') return null;
      throw err;
    }
    const content = deps.decodeStored(stored, deps.sha256Hex);
    if (content === null) notes.storedDamaged = true;
    return content;
  }

  function dropStored(): void {
    try {
      fs.rmSync(job.storeFile, { force: true });
    } catch (err) {
      notes.storeError = String((err as Error).message ?? err);
    }
  }

  /** Temp file, remove the old one, rename (so the rename replaces nothing; see contentStore.ts); no fsync. */
  function store(content: Uint8Array): void {
    const temp = `${job.storeFile}.${deps.randomHex()}.tmp`;
    try {
      const fd = fs.openSync(temp, 'w', 0o600);
      try {
        fs.writeSync(fd, deps.encodeStored(content, deps.sha256Hex));
        let written = 0;
        while (written < content.length) written += fs.writeSync(fd, content, written, content.length - written);
      } finally {
        fs.closeSync(fd);
      }
      fs.rmSync(job.storeFile, { force: true });
      fs.renameSync(temp, job.storeFile);
    } catch (err) {
      notes.storeError = String((err as Error).message ?? err);
      try {
        fs.rmSync(temp, { force: true });
      } catch {
        // Removed at the next start.
      }
    }
  }

  const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;
  /** Not diffed as text: a NUL byte in the first 8 KiB (as git and GNU diff look), or bytes that are not valid UTF-8 anywhere. */
  const isBinary = (content: Uint8Array): boolean => content.subarray(0, 8 * 1024).includes(0) || !deps.isUtf8(content);

  try {
    let current: Uint8Array = EMPTY;
    if (job.change !== 'delete') {
      const read = readCurrent();
      if ('skipped' in read) {
        if (read.skipped !== 'too-large') return { ...notes, outcome: 'skipped', reason: 'unreadable', detail: read.skipped };
        // The stored content is no longer the last seen one: drop it rather than diff a later version against it.
        dropStored();
        return { ...notes, outcome: 'skipped', reason: 'too-large' };
      }
      current = read.content;
    }
    const stored = job.kind === 'remember' || job.change !== 'create' ? readStored() : null;
    const unchanged = stored !== null && sameBytes(stored, current);
    if (job.kind === 'remember') {
      if (!unchanged) store(current);
      return { ...notes, outcome: 'remembered' };
    }
    // Stored first: a diff that crashes the worker or times out still leaves the right content for the next.
    if (job.change === 'delete') dropStored();
    else if (!unchanged) store(current);
    const previous = job.change === 'create' ? EMPTY : (stored ?? EMPTY);
    if (previous.length > job.maxFileBytes) return { ...notes, outcome: 'skipped', reason: 'too-large' };
    if (isBinary(previous) || isBinary(current)) return { ...notes, outcome: 'skipped', reason: 'binary' };
    if (job.change === 'modify' && sameBytes(previous, current)) return { ...notes, outcome: 'same' };
    const decoder = new TextDecoder();
    const oldText = decoder.decode(previous);
    const newText = decoder.decode(current);
    const deadline = Date.now() + job.timeoutMs;
    const result = deps.lineDiff(
      { oldText, newText, oldName: job.oldName, newName: job.newName, context: job.context, maxPatchBytes: job.maxPatchBytes, deadline },
      deps.diffArrays,
    );
    if (result.outcome !== 'patch') return { ...notes, ...result };
    // The whole texts are needed only to spot private key lines a hunk shows without their BEGIN line.
    const hasKey = oldText.includes('PRIVATE KEY-----') || newText.includes('PRIVATE KEY-----');
    return { ...notes, ...result, ...(hasKey ? { sources: { old: oldText, new: newText } } : {}) };
  } catch (err) {
    return { ...notes, outcome: 'error', message: String((err as Error).message ?? err), code: codeOf(err) };
  }
}
