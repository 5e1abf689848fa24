import { lstat, open } from 'node:fs/promises';
import type { Logger } from '@fso/common';
import { AuditDirError, listAuditFiles, openLine, readLines } from '@fso/audit-trail';
import type { AuditFile } from '@fso/audit-trail';
import { AuditLedger } from './ledger.js';

const PREVIEW_CHARS = 200;

/**
 * Rebuilds the recorder's {@link AuditLedger} from the audit files of `dir`,
 * repairing torn tails on the way: bytes after the last valid line of a file
 * (a line cut by a crash, or garbage the file system left) are truncated
 * away and logged. Nothing cut was ever acknowledged, so its agent resends it.
 */
export async function loadLedger(dir: string, log: Logger): Promise<AuditLedger> {
  const ledger = new AuditLedger();
  for (const file of await listAuditFiles(dir)) {
    await loadFile(file, ledger, log);
  }
  return ledger;
}

async function loadFile(file: AuditFile, ledger: AuditLedger, log: Logger): Promise<void> {
  const stats = await lstat(file.path).catch((err: unknown) => {
    throw new AuditDirError(file.path, 'cannot stat the audit file', { cause: err });
  });
  // O_NOFOLLOW on write, and no symlinks or devices on read: the recorder only ever appends to its own regular files.
  if (!stats.isFile()) throw new AuditDirError(file.path, 'not a regular file');
  let goodEnd = 0;
  let size = 0;
  const trailing: Array<{ line: number; reason: string; preview: string }> = [];
  try {
    for await (const line of readLines(file.path)) {
      size = line.end;
      const opened = line.complete ? openLine(line.text) : { ok: false as const, reason: 'no trailing newline' };
      if (!opened.ok) {
        trailing.push({ line: line.number, reason: opened.reason, preview: line.text.slice(0, PREVIEW_CHARS) });
        continue;
      }
      for (const bad of trailing) {
        // Not at the end, so not a torn write: leave it for `fso-audit verify` to report.
        log.error({ file: file.name, ...bad }, 'audit file holds an invalid line; fso-audit verify will report it');
      }
      trailing.length = 0;
      ledger.apply(file.kind, opened.value);
      ledger.chainTail[file.kind] = opened.hash;
      goodEnd = line.end;
    }
  } catch (err) {
    throw new AuditDirError(file.path, 'cannot read the audit file', { cause: err });
  }
  if (size > goodEnd) await cutTornTail(file, goodEnd, size - goodEnd, trailing, log);
}

async function cutTornTail(
  file: AuditFile,
  goodEnd: number,
  bytes: number,
  cut: Array<{ line: number; reason: string; preview: string }>,
  log: Logger,
): Promise<void> {
  try {
    const handle = await open(file.path, 'r+');
    try {
      await handle.truncate(goodEnd);
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw new AuditDirError(file.path, 'cannot repair the torn last line', { cause: err });
  }
  log.warn({ file: file.name, offset: goodEnd, bytes, lines: cut }, 'repaired a torn tail: cut what a crash left half-written (never acknowledged, so agents resend it)');
}
