import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';
import { writeFileAtomic } from './stateDir.js';

/**
 * The last content the agent saw of each important file, kept on disk in the
 * state dir so the first diff after a restart is against the right content.
 * One file per watched path, named by the SHA-256 of the path (a path never
 * becomes a file name: no traversal, no length or encoding limits).
 */
export interface ContentStore {
  /** The stored content of `filePath`, or null when none is stored. */
  get(filePath: string): Promise<Buffer | null>;
  /** Stores `content` for `filePath` atomically (temp file, fsync, rename). */
  put(filePath: string, content: Buffer): Promise<void>;
  /** Forgets `filePath`; nothing stored is fine. */
  delete(filePath: string): Promise<void>;
  /** Moves the content of `oldPath` to `newPath`; when `oldPath` has none, `newPath` ends with none. */
  rename(oldPath: string, newPath: string): Promise<void>;
  has(filePath: string): Promise<boolean>;
  /** Waits for writes in flight; later calls reject with {@link ContentStoreClosedError}. Idempotent. */
  close(): Promise<void>;
}

/** The content store directory cannot be created or is not a private directory. */
export class ContentStoreError extends Error {
  override readonly name = 'ContentStoreError';
  readonly dir: string;
  constructor(dir: string, reason: string, options?: ErrorOptions) {
    super(`content store ${dir}: ${reason}`, options);
    this.dir = dir;
  }
}

/** A call on a closed content store. */
export class ContentStoreClosedError extends Error {
  override readonly name = 'ContentStoreClosedError';
  readonly dir: string;
  constructor(dir: string) {
    super(`content store ${dir} is closed`);
    this.dir = dir;
  }
}

// writeFileAtomic's temp files end so; one left by a crash is removed at open.
const TEMP_SUFFIX = '.tmp';

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
        try {
          return await readFile(fileOf(filePath));
        } catch (err) {
          if (errorCode(err) === 'ENOENT') return null;
          throw err;
        }
      }),
    // Temp file, fsync, rename (the agent's one atomic write). The directory
    // is not fsync'd: after a power cut the worst case is the previous
    // content, and one diff against it.
    put: (filePath, content) => track(() => writeFileAtomic(fileOf(filePath), content)),
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
