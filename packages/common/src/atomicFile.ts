/** Replacing a small file so a reader sees the old content or the new one, never a mix. */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';

/**
 * Writes `data` to `file` atomically: a hidden temp file beside it, created
 * exclusively with mode 0600 from the first byte, fsync'd, then renamed over
 * `file`. The temp file is removed when anything fails, and the error is
 * thrown as is, so a failed write leaves `file` as it was and nothing beside it.
 *
 * @example
 * await writeFileAtomic(path.join(stateDir, 'config.json'), `${JSON.stringify(saved)}\n`);
 */
export async function writeFileAtomic(file: string, data: string | Buffer): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
