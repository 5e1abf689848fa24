import { createHash } from 'node:crypto';
import { close, constants, fstat, lstat, open, read } from 'node:fs';
import type { Stats } from 'node:fs';
import { errorCode } from '@fso/common';
import type { HashSkipReason } from '@fso/common';

/**
 * Reading files the agent does not trust: never through a symlink, never
 * blocking on a FIFO, never more than a bound, never the whole file in memory
 * when only its hash is wanted.
 */

/** The hash of a file, or why there is none. */
export interface HashResult {
  /** Lower-case hex SHA-256 of the bytes read, null when `skipped`. */
  sha256: string | null;
  /** Bytes hashed; for `too-large` the size found; null otherwise. */
  size: number | null;
  skipped: HashSkipReason | null;
  /** The file's mtime (epoch ms) when it was opened for hashing: the content read is at least that new. */
  mtimeMs?: number;
}

/** Options of {@link hashFile}. */
export interface HashFileOptions {
  /** Files larger than this are not read (`too-large`). */
  maxBytes: number;
}

/** What {@link readRegularFile} returns: the whole content, or why there is none. */
export type ReadResult = { content: Buffer; skipped: null } | { content: null; skipped: HashSkipReason };

type Opened = { fd: number; size: number; mtimeMs: number } | { skipped: HashSkipReason };

// The callback API on a plain fd: a FileHandle (an object the GC tracks, a
// promise per call) cost a fifth of the CPU of hashing a burst of small files.
// Every fd opened here is closed in a finally.
const call = <T>(start: (done: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value))));
const lstatOf = (path: string): Promise<Stats> => call((done) => lstat(path, done));
const openFd = (path: string, flags: number): Promise<number> => call((done) => open(path, flags, done));
const fstatOf = (fd: number): Promise<Stats> => call((done) => fstat(fd, done));
const readInto = (fd: number, buffer: Buffer): Promise<number> => call((done) => read(fd, buffer, 0, buffer.length, null, done));
const closeFd = (fd: number): Promise<void> => call((done) => close(fd, (err) => done(err, undefined)));

// O_NOFOLLOW: a symlink swapped in after lstat fails with ELOOP instead of
// being followed. O_NONBLOCK: a FIFO swapped in does not block open(2).
export const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
const CHUNK_BYTES = 1024 * 1024;

// Expected errors, filtered by code (the chokidar habit); anything else is a
// real failure and is rethrown.
export const SKIP_BY_CODE: Readonly<Record<string, HashSkipReason>> = {
  ENOENT: 'vanished',
  ENOTDIR: 'vanished', // a parent directory was replaced by a file
  EACCES: 'unreadable',
  EPERM: 'unreadable',
  ELOOP: 'unreadable', // a symlink swapped in after lstat, or a symlink loop in a parent
  EISDIR: 'unreadable',
  ENXIO: 'not-regular', // a UNIX socket swapped in after lstat
};

function skipReason(err: unknown): HashSkipReason {
  const reason = SKIP_BY_CODE[errorCode(err) ?? ''];
  if (reason === undefined) throw err;
  return reason;
}

/** Opens `path` read-only if it is a regular file; never follows a symlink, never opens a FIFO or device. */
async function openRegularFile(path: string): Promise<Opened> {
  try {
    // lstat first so devices and FIFOs are never opened at all (opening a
    // tty or tape device can have side effects); fstat below closes the race.
    if (!(await lstatOf(path)).isFile()) return { skipped: 'not-regular' };
    const fd = await openFd(path, OPEN_FLAGS);
    try {
      const stats = await fstatOf(fd);
      if (stats.isFile()) return { fd, size: stats.size, mtimeMs: stats.mtimeMs };
    } catch (err) {
      await closeFd(fd);
      throw err;
    }
    await closeFd(fd);
    return { skipped: 'not-regular' };
  } catch (err) {
    return { skipped: skipReason(err) };
  }
}

/**
 * Reads an open file chunk by chunk until EOF, handing each chunk to
 * `onChunk` (the buffer is reused: copy what you keep). Returns the bytes
 * read, or null as soon as more than `maxBytes` were read (the file grew).
 */
async function readChunks(fd: number, maxBytes: number, size: number, onChunk: (chunk: Buffer) => void): Promise<number | null> {
  const largest = Math.min(CHUNK_BYTES, maxBytes + 1);
  // Sized to the file just stat'ed (a small one comes from Node's buffer pool):
  // a fresh 1 MiB buffer for every file, however small, was a third of the
  // agent's CPU in garbage collection at a first start on 50,000 files.
  let buffer = Buffer.allocUnsafe(Math.min(largest, size + 1));
  let total = 0;
  for (;;) {
    const bytesRead = await readInto(fd, buffer);
    if (bytesRead === 0) return total;
    total += bytesRead;
    if (total > maxBytes) return null;
    onChunk(buffer.subarray(0, bytesRead));
    // A short read that ends where fstat said the file ends is its end: no extra
    // read to hear so (a later write is a later event, hashed then).
    if (bytesRead < buffer.length && total === size) return total;
    // The file grew since its stat: read the rest in full chunks.
    if (bytesRead === buffer.length && buffer.length < largest) buffer = Buffer.allocUnsafe(largest);
  }
}

async function withRegularFile<T>(
  path: string,
  maxBytes: number,
  onSkip: (reason: HashSkipReason, size: number | null) => T,
  read: (fd: number, size: number, mtimeMs: number) => Promise<T>,
): Promise<T> {
  const opened = await openRegularFile(path);
  if ('skipped' in opened) return onSkip(opened.skipped, null);
  const { fd, size, mtimeMs } = opened;
  try {
    if (size > maxBytes) return onSkip('too-large', size);
    return await read(fd, size, mtimeMs);
  } catch (err) {
    return onSkip(skipReason(err), null);
  } finally {
    await closeFd(fd);
  }
}

/**
 * Streaming SHA-256 of a regular file, in 1 MiB chunks (a 50 MB file is
 * never held in memory). Symlinks, FIFOs, sockets and devices are
 * `not-regular` and are not read; files over `maxBytes` are `too-large`;
 * ENOENT is `vanished`; EACCES, EPERM, ELOOP, EISDIR are `unreadable`. Any
 * other error is rethrown.
 *
 * @example
 * const { sha256, size, skipped } = await hashFile('/srv/app/app.conf', { maxBytes: 256 * 1024 * 1024 });
 */
export async function hashFile(path: string, options: HashFileOptions): Promise<HashResult> {
  return withRegularFile<HashResult>(
    path,
    options.maxBytes,
    (skipped, size) => ({ sha256: null, size, skipped }),
    async (fd, statSize, mtimeMs) => {
      const hash = createHash('sha256');
      const bytes = await readChunks(fd, options.maxBytes, statSize, (chunk) => hash.update(chunk));
      if (bytes === null) return { sha256: null, size: statSize, skipped: 'too-large' };
      // The mtime of when the file was opened: the content read is at least that new. A write
      // during the read leaves a newer mtime on disk, so the next look reports it as a modify.
      return { sha256: hash.digest('hex'), size: bytes, skipped: null, mtimeMs };
    },
  );
}

/**
 * Reads a whole regular file of at most `maxBytes` bytes, with the same
 * safety and the same skip reasons as {@link hashFile}.
 */
export async function readRegularFile(path: string, maxBytes: number): Promise<ReadResult> {
  return withRegularFile<ReadResult>(
    path,
    maxBytes,
    (skipped) => ({ content: null, skipped }),
    async (fd, size) => {
      const chunks: Buffer[] = [];
      const bytes = await readChunks(fd, maxBytes, size, (chunk) => chunks.push(Buffer.from(chunk)));
      if (bytes === null) return { content: null, skipped: 'too-large' };
      return { content: Buffer.concat(chunks, bytes), skipped: null };
    },
  );
}
