/** Errors of the FSO agent; each carries what it is about. */

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
