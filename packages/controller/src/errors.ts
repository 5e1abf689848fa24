/** Errors of the controller; each carries what it is about. Shared ones live in @fso/common. */

/** A config file that cannot be read or is not JSON (schema problems are common's `ConfigValidationError`). */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
  /** The file as the user named it. */
  readonly path: string;
  constructor(path: string, reason: string, options?: ErrorOptions) {
    super(`cannot use config file ${path}: ${reason}`, options);
    this.path = path;
  }
}

/** `get` found neither a status nor a retained config for an agent. */
export class AgentNotFoundError extends Error {
  override readonly name = 'AgentNotFoundError';
  readonly agentId: string;
  /** The status topic that had nothing retained. */
  readonly topic: string;
  constructor(agentId: string, topic: string) {
    super(`agent ${agentId} has never reported a status (nothing retained on ${topic}) and no config is retained for it`);
    this.agentId = agentId;
    this.topic = topic;
  }
}

/** The broker did not acknowledge a SUBSCRIBE, PUBLISH or UNSUBSCRIBE in time (it went away after the connect). */
export class BrokerTimeoutError extends Error {
  override readonly name = 'BrokerTimeoutError';
  /** `SUBSCRIBE`, `PUBLISH` or `UNSUBSCRIBE`. */
  readonly operation: string;
  /** The topic or topic filters concerned. */
  readonly topic: string;
  constructor(operation: string, topic: string, timeoutMs: number) {
    super(`the broker did not acknowledge ${operation} ${topic} within ${timeoutMs} ms`);
    this.operation = operation;
    this.topic = topic;
  }
}

/** An operation stopped by its AbortSignal (Ctrl-C in the CLI). */
export class OperationAbortedError extends Error {
  override readonly name = 'OperationAbortedError';
  /** What was stopped, e.g. `waiting for agent status`. */
  readonly operation: string;
  constructor(operation: string, options?: ErrorOptions) {
    super(`interrupted while ${operation}`, options);
    this.operation = operation;
  }
}

/** A token that cannot be minted (`fso-controller token`): a missing or unusable key, bad claims. */
export class TokenError extends Error {
  override readonly name = 'TokenError';
  /** The key file it is about, when it is about one. */
  readonly file: string | undefined;
  constructor(message: string, options: ErrorOptions & { file?: string } = {}) {
    const { file, ...errorOptions } = options;
    super(message, errorOptions);
    this.file = file;
  }
}
