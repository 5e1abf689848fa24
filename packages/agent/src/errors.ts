/** Errors of the FSO agent; each carries what it is about. */
import { toError } from '@fso/common';

/** The state directory cannot be created, read or written. */
export class StateDirError extends Error {
  override readonly name = 'StateDirError';
  readonly dir: string;
  constructor(dir: string, reason: string, options?: ErrorOptions) {
    super(`agent state dir ${dir}: ${reason}`, options);
    this.dir = dir;
  }
}

/** The durable outbox cannot be written: the agent must not publish what it could not keep. */
export class OutboxError extends Error {
  override readonly name = 'OutboxError';
  readonly file: string;
  constructor(file: string, reason: string, options?: ErrorOptions) {
    super(`agent outbox ${file}: ${reason}`, options);
    this.file = file;
  }
}

/** A watched root cannot be watched (not a directory, watcher error). */
export class WatchError extends Error {
  override readonly name = 'WatchError';
  readonly root: string;
  constructor(root: string, reason: string, options?: ErrorOptions) {
    super(`cannot watch ${root}: ${reason}`, options);
    this.root = root;
  }
}

/** A configured extra pattern that is not a valid regex (the config schema refuses these first). */
export class RedactPatternError extends Error {
  override readonly name = 'RedactPatternError';
  readonly patternName: string;
  constructor(patternName: string, options?: ErrorOptions) {
    super(`redact pattern ${patternName} is not a valid regex: ${toError(options?.cause).message}`, options);
    this.patternName = patternName;
  }
}

/** A diff that failed for an unexpected reason (an I/O error other than the expected ones). */
export class DiffError extends Error {
  override readonly name = 'DiffError';
  readonly path: string;
  constructor(path: string, options?: ErrorOptions) {
    super(`cannot diff ${path}: ${toError(options?.cause).message}`, options);
    this.path = path;
  }
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

/** A diff asked of, or still running in, a closed differ. */
export class DifferClosedError extends Error {
  override readonly name = 'DifferClosedError';
  constructor() {
    super('differ is closed');
  }
}

/** The redaction key file exists but cannot be used. */
export class RedactionKeyError extends Error {
  override readonly name = 'RedactionKeyError';
  readonly path: string;
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`redaction key ${path}: ${reason}`, options);
    this.path = path;
  }
}
