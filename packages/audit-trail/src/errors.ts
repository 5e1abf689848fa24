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
