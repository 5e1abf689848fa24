/** Errors of fso-alert; each carries what it is about. */

// --- rules --------------------------------------------------------------

/** A rules file that cannot be used: refused at start, and on reload (the old rules keep running). */
export class RulesFileError extends Error {
  override readonly name = 'RulesFileError';
  readonly file: string;
  /** One line per problem, each naming the rule and the field: `rules[2] (mass-delete).threshold.window: …`. */
  readonly problems: readonly string[];
  constructor(file: string, problems: readonly string[], options?: ErrorOptions) {
    super(`invalid rules file ${file}:\n  ${problems.join('\n  ')}`, options);
    this.file = file;
    this.problems = problems;
  }
}

// --- notifications -------------------------------------------------------

/**
 * One notification attempt that did not reach its target. `retryable` says
 * whether another attempt may succeed (a network error, a timeout, HTTP
 * 408/429/5xx, an SMTP 4xx) or not (HTTP 4xx, an SMTP 5xx, a TLS policy
 * refusal): the dispatcher retries only the first kind.
 */
export class NotifyError extends Error {
  override readonly name = 'NotifyError';
  /** The target's name in the rules file. */
  readonly target: string;
  /** `webhook`, `syslog` or `email`. */
  readonly targetType: string;
  readonly retryable: boolean;
  /** The HTTP status or SMTP reply code, when the receiver answered. */
  readonly status: number | undefined;
  constructor(target: string, targetType: string, reason: string, details: { retryable: boolean; status?: number }, options?: ErrorOptions) {
    super(`notification to ${target} (${targetType}) failed: ${reason}`, options);
    this.target = target;
    this.targetType = targetType;
    this.retryable = details.retryable;
    this.status = details.status;
  }
}

/**
 * A notification target that cannot be built from its valid entry: a secret
 * or CA file that cannot be read, an environment variable that is unset or
 * empty. Thrown by `createNotifier`, at start or on reload.
 */
export class TargetConfigError extends Error {
  override readonly name = 'TargetConfigError';
  readonly target: string;
  /** The entry's field at fault: `secretFile`, `passwordEnv`, `caFile`… */
  readonly field: string;
  constructor(target: string, field: string, reason: string, options?: ErrorOptions) {
    super(`target ${target}: ${field}: ${reason}`, options);
    this.target = target;
    this.field = field;
  }
}
