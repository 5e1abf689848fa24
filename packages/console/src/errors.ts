/** Errors of the console; each carries what it is about. */

/** A request to the HTTP API that cannot be served as asked: answered 400 with the reason. */
export class BadRequestError extends Error {
  override readonly name = 'BadRequestError';
  /** The query parameter or body field at fault, when there is one. */
  readonly field: string | undefined;
  constructor(reason: string, field?: string, options?: ErrorOptions) {
    super(field === undefined ? reason : `${field}: ${reason}`, options);
    this.field = field;
  }
}

/** The console cannot start as configured (a non-loopback bind to an open broker, a port in use…). */
export class ConsoleStartError extends Error {
  override readonly name = 'ConsoleStartError';
  constructor(reason: string, options?: ErrorOptions) {
    super(`cannot start the console: ${reason}`, options);
  }
}
