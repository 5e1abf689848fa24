import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';
import type { Logger } from '@fso/common';
import type { AuditFileKind } from '@fso/audit-trail';
import { AuditWriteError } from './errors.js';

/** Lines to append to one audit file. */
export interface PendingLines {
  kind: AuditFileKind;
  /** File name inside the audit directory (from `auditFileName`, never from message content). */
  name: string;
  lines: string[];
}

// O_NOFOLLOW: the recorder appends only to its own regular files, never through a planted symlink.
const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW;

/**
 * The open audit files of a directory, one per kind (the current day's):
 * appends a batch with one write per file, then fsyncs every touched file.
 */
export class AuditFileSet {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #handles = new Map<AuditFileKind, { name: string; handle: FileHandle }>();
  #closed: Promise<void> | undefined;

  constructor(dir: string, log: Logger) {
    this.#dir = dir;
    this.#log = log;
  }

  /** Appends each file's lines in one write, then fsyncs them all. Throws {@link AuditWriteError}. */
  async append(files: readonly PendingLines[]): Promise<void> {
    const touched = new Map<string, FileHandle>();
    for (const file of files) {
      const leaving = this.#handles.get(file.kind);
      const leavingPath = leaving && leaving.name !== file.name ? path.join(this.#dir, leaving.name) : undefined;
      if (leaving && leavingPath !== undefined && touched.has(leavingPath)) {
        // A batch that straddles midnight: the day being left was written above, and its
        // handle is closed when the new day's opens, so it is synced first.
        await syncFile(leavingPath, leaving.handle);
        touched.delete(leavingPath);
      }
      const handle = await this.#handleFor(file.kind, file.name);
      const filePath = path.join(this.#dir, file.name);
      await handle.appendFile(`${file.lines.join('\n')}\n`).catch((err: unknown) => {
        throw new AuditWriteError(filePath, 'write', { cause: err });
      });
      touched.set(filePath, handle);
    }
    await Promise.all([...touched].map(([filePath, handle]) => syncFile(filePath, handle)));
  }

  /** Closes every file. Idempotent: a second call returns the first call's promise. */
  close(): Promise<void> {
    if (!this.#closed) {
      const handles = [...this.#handles.values()];
      this.#handles.clear();
      this.#closed = Promise.allSettled(handles.map(({ handle }) => handle.close())).then(() => undefined);
    }
    return this.#closed;
  }

  /** The open handle of a file, opening it (and closing the kind's previous day) as needed. */
  async #handleFor(kind: AuditFileKind, name: string): Promise<FileHandle> {
    const current = this.#handles.get(kind);
    if (current?.name === name) return current.handle;
    if (current) {
      this.#handles.delete(kind);
      await current.handle.close().catch((err: unknown) => this.#log.warn({ err, file: current.name }, 'closing audit file failed'));
    }
    const filePath = path.join(this.#dir, name);
    let created = true;
    const handle = await open(filePath, APPEND_FLAGS | constants.O_EXCL, 0o600)
      .catch(async (err: unknown) => {
        if (errorCode(err) !== 'EEXIST') throw err;
        created = false;
        return open(filePath, APPEND_FLAGS, 0o600);
      })
      .catch((err: unknown) => {
        throw new AuditWriteError(filePath, 'open', { cause: err });
      });
    this.#handles.set(kind, { name, handle });
    // A new file's directory entry must be durable too, or an fsync'd record could vanish with it.
    if (created) {
      await syncDir(this.#dir).catch((err: unknown) => {
        throw new AuditWriteError(this.#dir, 'fsync', { cause: err });
      });
    }
    return handle;
  }
}

async function syncFile(filePath: string, handle: FileHandle): Promise<void> {
  await handle.sync().catch((err: unknown) => {
    throw new AuditWriteError(filePath, 'fsync', { cause: err });
  });
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
