/** Errors of the audit recorder; each carries the path or topic it is about. The readers' errors are in @fso/audit-trail. */

/**
 * Appending to or fsyncing an audit file failed. The recorder stops
 * acknowledging at once: an ack must never cover a record that may not be on disk.
 */
export class AuditWriteError extends Error {
  override readonly name = 'AuditWriteError';
  /** The audit file that could not be written or synced. */
  readonly path: string;
  constructor(path: string, operation: 'open' | 'write' | 'fsync', options?: ErrorOptions) {
    const cause = options?.cause instanceof Error ? `: ${options.cause.message}` : '';
    super(`cannot ${operation} audit file ${path}${cause}`, options);
    this.path = path;
  }
}

/** The recorder could not subscribe to its topics (refused by the broker). */
export class SubscribeError extends Error {
  override readonly name = 'SubscribeError';
  /** The topic filter that was refused. */
  readonly topic: string;
  /** The MQTT client id of the recorder. */
  readonly clientId: string;
  constructor(topic: string, clientId: string, options?: ErrorOptions) {
    super(`broker refused subscription to ${topic} for client ${clientId}`, options);
    this.topic = topic;
    this.clientId = clientId;
  }
}
