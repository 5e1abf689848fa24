import { createHash } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';
import { ContentStoreClosedError, ContentStoreError } from '../errors.js';

/**
 * The last content the agent saw of each important file, kept on disk in the
 * state dir so the first diff after a restart is against the right content.
 * One file per watched path, named by the SHA-256 of the path (a path never
 * becomes a file name: no traversal, no length or encoding limits).
 *
 * It is a cache, so it is never fsync'd (a 10 MB fsync stalls every small
 * fsync of the outbox and the recorder on the same disk): each file starts
 * with a header holding the SHA-256 and length of the content
 * ({@link encodeStored}), and content that does not match it (torn by a
 * crash or a power cut, or damaged) reads as not stored. After a power cut
 * a file can also hold content a few seconds older than the last (the
 * journal had not committed the rename yet): one diff against it.
 */
export interface ContentStore {
  /** The stored content of `filePath`, or null when none is stored or what is stored fails its checksum. */
  get(filePath: string): Promise<Buffer | null>;
  /** Stores `content` for `filePath` (temp file, rename; not fsync'd: checksummed instead). */
  put(filePath: string, content: Buffer): Promise<void>;
  /** The file that holds `filePath`'s content ({@link encodeStored}); the diff worker reads and writes it itself. */
  fileOf(filePath: string): string;
  /** Forgets `filePath`; nothing stored is fine. */
  delete(filePath: string): Promise<void>;
  /** Moves the content of `oldPath` to `newPath`; when `oldPath` has none, `newPath` ends with none. */
  rename(oldPath: string, newPath: string): Promise<void>;
  has(filePath: string): Promise<boolean>;
  /** Waits for writes in flight; later calls reject with {@link ContentStoreClosedError}. Idempotent. */
  close(): Promise<void>;
}

// Temp files end so; one left by a crash is removed at open.
const TEMP_SUFFIX = '.tmp';

/**
 * The header of a stored file: `fso-content/1 <sha256 hex of the content> <length>\n`,
 * then the content. Self-contained (it is also compiled into the diff
 * worker): `sha256Hex` is node:crypto's SHA-256 in hex.
 */
export function encodeStored(content: Uint8Array, sha256Hex: (data: Uint8Array) => string): string {
  return `fso-content/1 ${sha256Hex(content)} ${content.length}\n`;
}

/**
 * The content of a stored file, or null when its header is missing or its
 * length or checksum does not match (a torn or damaged file). The result
 * shares `stored`'s memory. Self-contained like {@link encodeStored}.
 */
export function decodeStored(stored: Uint8Array, sha256Hex: (data: Uint8Array) => string): Uint8Array | null {
  const newline = stored.indexOf(10);
  if (newline < 0 || newline > 200) return null;
  const header = new TextDecoder().decode(stored.subarray(0, newline)).split(' ');
  const content = stored.subarray(newline + 1);
  if (header.length !== 3 || header[0] !== 'fso-content/1' || header[2] !== String(content.length)) return null;
  return sha256Hex(content) === header[1] ? content : null;
}

const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * Writes `stored` to a temp file next to `file`, removes `file`, renames the
 * temp file to it; no fsync. Removing first means the rename replaces
 * nothing: on ext4 a rename over a file forces the new file's data out at
 * once (auto_da_alloc), which an fsync elsewhere would then wait for.
 */
async function writeUnsynced(file: string, header: string, content: Uint8Array): Promise<void> {
  const temp = `${file}.${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writev([Buffer.from(header), content]);
  } finally {
    await handle.close();
  }
  await rm(file, { force: true });
  await rename(temp, file);
}

/** The file name of `filePath`'s content: SHA-256 of the path, lower-case hex. */
function keyOf(filePath: string): string {
  return createHash('sha256').update(filePath, 'utf8').digest('hex');
}

async function prepareDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const stats = await lstat(dir);
    if (!stats.isDirectory()) throw new ContentStoreError(dir, 'exists and is not a directory (a symlink is refused)');
    // mkdir's mode does not apply to a directory that already existed.
    if ((stats.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
    // Temp files left by a crash between write and rename.
    for (const name of await readdir(dir)) {
      if (name.endsWith(TEMP_SUFFIX)) await rm(path.join(dir, name), { force: true });
    }
  } catch (err) {
    if (err instanceof ContentStoreError) throw err;
    throw new ContentStoreError(dir, `cannot prepare: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Opens (creating if needed, mode 0700) the content store in `dir`; files
 * are written 0600. It stores whatever it is given: the differ bounds that
 * to `diff.maxFileBytes` per file.
 *
 * @example
 * const store = await createContentStore(path.join(stateDir, 'content'));
 * await store.put('/srv/app/app.conf', Buffer.from('port = 80\n'));
 * (await store.get('/srv/app/app.conf'))?.toString(); // 'port = 80\n'
 * await store.close();
 */
export async function createContentStore(dir: string): Promise<ContentStore> {
  await prepareDir(dir);
  const inFlight = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;
  const fileOf = (filePath: string): string => path.join(dir, keyOf(filePath));

  function track<T>(operation: () => Promise<T>): Promise<T> {
    if (closing) return Promise.reject(new ContentStoreClosedError(dir));
    const promise = operation();
    inFlight.add(promise);
    const untrack = (): void => void inFlight.delete(promise);
    promise.then(untrack, untrack);
    return promise;
  }

  return {
    get: (filePath) =>
      track(async () => {
        let stored: Buffer;
        try {
          stored = await readFile(fileOf(filePath));
        } catch (err) {
          if (errorCode(err) === 'ENOENT') return null;
          throw err;
        }
        const content = decodeStored(stored, sha256Hex);
        return content ? Buffer.from(content.buffer, content.byteOffset, content.byteLength) : null;
      }),
    put: (filePath, content) => track(() => writeUnsynced(fileOf(filePath), encodeStored(content, sha256Hex), content)),
    fileOf,
    delete: (filePath) => track(() => rm(fileOf(filePath), { force: true })),
    rename: (oldPath, newPath) =>
      track(async () => {
        if (oldPath === newPath) return;
        try {
          await rename(fileOf(oldPath), fileOf(newPath));
        } catch (err) {
          if (errorCode(err) !== 'ENOENT') throw err;
          // Nothing known of oldPath: what was known of newPath is stale now.
          await rm(fileOf(newPath), { force: true });
        }
      }),
    has: (filePath) =>
      track(async () => {
        try {
          return (await stat(fileOf(filePath))).isFile();
        } catch (err) {
          if (errorCode(err) === 'ENOENT') return false;
          throw err;
        }
      }),
    close: () => {
      closing ??= Promise.allSettled([...inFlight]).then(() => undefined);
      return closing;
    },
  };
}
