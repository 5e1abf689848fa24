import { AUDIT_FILE_KINDS, listAuditFiles } from './auditFiles.js';
import { GENESIS_HASH, openLine } from './chain.js';
import { readLines } from './lineReader.js';

/** Where and why an audit directory's chain first breaks. */
export interface VerifyFailure {
  /** File name inside the directory, e.g. `events-2026-11-22.jsonl`. */
  file: string;
  /** 1-based line number in that file. */
  line: number;
  reason: string;
}

/** What {@link verifyAuditDir} found. */
export interface VerifyResult {
  ok: boolean;
  /** Audit files checked (up to the failure). */
  files: number;
  /** Lines checked and found intact. */
  lines: number;
  /** The first broken line; set when `ok` is false. */
  failure?: VerifyFailure;
}

/**
 * Checks the hash chains of an audit directory: every line's hash against its
 * own bytes (an edit shows there), and its `prevHash` against the line before
 * it, across day files of the same kind (a deletion, insertion or reordering
 * shows there). Chains are checked in the order events, diffs, rejected;
 * the first broken line found is reported.
 *
 * What no chain can show: lines cut from the very end of a chain (keep the
 * last hash somewhere else to catch that).
 *
 * @example
 * const result = await verifyAuditDir('./audit');
 * if (!result.ok) console.error(`${result.failure?.file} line ${result.failure?.line}: ${result.failure?.reason}`);
 */
export async function verifyAuditDir(dir: string): Promise<VerifyResult> {
  const files = await listAuditFiles(dir);
  let fileCount = 0;
  let lineCount = 0;
  for (const kind of AUDIT_FILE_KINDS) {
    let prevHash = GENESIS_HASH;
    let prevWhere = 'the start of the chain';
    for (const file of files.filter((f) => f.kind === kind)) {
      fileCount++;
      for await (const line of readLines(file.path)) {
        const fail = (reason: string): VerifyResult => ({
          ok: false,
          files: fileCount,
          lines: lineCount,
          failure: { file: file.name, line: line.number, reason },
        });
        if (!line.complete) return fail('incomplete last line (a torn write; the recorder cuts it at its next start)');
        if (line.text.length === 0) return fail('empty line');
        const opened = openLine(line.text);
        if (!opened.ok) return fail(opened.reason);
        if (!opened.intact) return fail('hash mismatch: the record was edited');
        if (opened.prevHash !== prevHash) {
          return fail(`prevHash does not match ${prevWhere}: a record was deleted, inserted or reordered here`);
        }
        prevHash = opened.hash;
        prevWhere = `line ${line.number} of ${file.name}`;
        lineCount++;
      }
    }
  }
  return { ok: true, files: fileCount, lines: lineCount };
}
