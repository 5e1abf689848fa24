/** Errors of the audit trail's readers; each carries the path or option it is about. */

/** The audit directory or one of its files cannot be used (not a regular file, unreadable…). */
export class AuditDirError extends Error {
  override readonly name = 'AuditDirError';
  /** The directory or file at fault. */
  readonly path: string;
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`audit directory problem at ${path}: ${reason}`, options);
    this.path = path;
  }
}

/** A filter of `tail` or `query` that cannot be understood (`--type`, `--since`, `--path`…). */
export class TailFilterError extends Error {
  override readonly name = 'TailFilterError';
  /** The option at fault, e.g. `--type`. */
  readonly option: string;
  constructor(option: string, reason: string, options?: ErrorOptions) {
    super(`invalid ${option}: ${reason}`, options);
    this.option = option;
  }
}

/**
 * The trail's index cannot be opened or used: its engine (better-sqlite3)
 * did not build or load, its directory is not writable, it is opened
 * read-only and asked to catch up, or it is closed. `cause` holds the error
 * underneath.
 */
export class TrailIndexError extends Error {
  override readonly name = 'TrailIndexError';
  /** The index directory (or the index file) at fault. */
  readonly path: string;
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`trail index at ${path}: ${reason}`, options);
    this.path = path;
  }
}

/**
 * A record the index points at is no longer where it was in its audit file
 * (the file was replaced or cut since the index last caught up): catch up,
 * which re-indexes that file, and ask again.
 */
export class TrailIndexStaleError extends Error {
  override readonly name = 'TrailIndexStaleError';
  /** The audit file name, e.g. `events-2026-11-22.jsonl`. */
  readonly file: string;
  /** 1-based line number the index expected there. */
  readonly line: number;
  constructor(file: string, line: number, reason: string, options?: ErrorOptions) {
    super(`trail index is stale for ${file} line ${line}: ${reason}; catch up and ask again`, options);
    this.file = file;
    this.line = line;
  }
}
