import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '@fso/common';
import { AuditDirError } from './errors.js';

/**
 * The three kinds of audit file (DESIGN.md "Audit files"). Each kind is its
 * own hash chain across days.
 */
export const AUDIT_FILE_KINDS = ['events', 'diffs', 'rejected'] as const;
export type AuditFileKind = (typeof AUDIT_FILE_KINDS)[number];

/** One audit file found in a directory. */
export interface AuditFile {
  kind: AuditFileKind;
  /** UTC day, `YYYY-MM-DD`. */
  day: string;
  /** File name inside the directory, e.g. `events-2026-11-22.jsonl`. */
  name: string;
  /** Absolute or caller-relative path. */
  path: string;
}

const FILE_NAME = /^(events|diffs|rejected)-(\d{4}-\d{2}-\d{2})\.jsonl$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * The name of the `kind` file of `day`. The day comes from the recorder's own
 * clock, never from message content, and is checked here once more.
 */
export function auditFileName(kind: AuditFileKind, day: string): string {
  if (!DAY.test(day)) throw new TypeError(`invalid audit day ${JSON.stringify(day)}`);
  return `${kind}-${day}.jsonl`;
}

/** The UTC day (`YYYY-MM-DD`) of an ISO timestamp. */
export function dayOf(iso: string): string {
  return iso.slice(0, 10);
}

/**
 * The audit files of `dir`, sorted by kind (events, diffs, rejected) then day.
 * Other names are ignored. A missing directory has no files.
 */
export async function listAuditFiles(dir: string): Promise<AuditFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return [];
    throw new AuditDirError(dir, 'cannot list the directory', { cause: err });
  }
  const files: AuditFile[] = [];
  for (const name of names) {
    const match = FILE_NAME.exec(name);
    if (!match) continue;
    files.push({ kind: match[1] as AuditFileKind, day: match[2] ?? '', name, path: path.join(dir, name) });
  }
  const order = (kind: AuditFileKind): number => AUDIT_FILE_KINDS.indexOf(kind);
  return files.sort((a, b) => order(a.kind) - order(b.kind) || a.day.localeCompare(b.day));
}
