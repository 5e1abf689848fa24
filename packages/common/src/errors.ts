/** Errors shared by every FSO package; each carries what it is about. */

/** A config (file, flag or MQTT payload) that fails validation. */
export class ConfigValidationError extends Error {
  override readonly name = 'ConfigValidationError';
  /** Where the config came from: a file path or a topic. */
  readonly source: string;
  /** One line per problem, `field.path: message`. */
  readonly issues: readonly string[];
  constructor(source: string, issues: readonly string[], options?: ErrorOptions) {
    super(`invalid config from ${source}: ${issues.join('; ')}`, options);
    this.source = source;
    this.issues = issues;
  }
}

/** An agent id that does not match DESIGN.md's pattern. */
export class InvalidAgentIdError extends Error {
  override readonly name = 'InvalidAgentIdError';
  readonly agentId: string;
  constructor(agentId: string) {
    super(`invalid agent id ${JSON.stringify(agentId)}: it must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`);
    this.agentId = agentId;
  }
}

/** A connection to the broker that could not be made in time. */
export class BrokerConnectError extends Error {
  override readonly name = 'BrokerConnectError';
  readonly url: string;
  constructor(url: string, reason: string, options?: ErrorOptions) {
    super(`cannot connect to MQTT broker at ${url}: ${reason}`, options);
    this.url = url;
  }
}

/** Why a token was refused. */
export type JwtErrorReason = 'malformed' | 'bad-signature' | 'expired' | 'not-yet-valid' | 'wrong-issuer' | 'bad-claims';

/** A token that failed verification (jwt.ts), with a machine-readable `reason`. */
export class JwtError extends Error {
  override readonly name = 'JwtError';
  readonly reason: JwtErrorReason;
  constructor(reason: JwtErrorReason, message: string, options?: ErrorOptions) {
    super(`invalid token (${reason}): ${message}`, options);
    this.reason = reason;
  }
}

/** Turns anything thrown into an Error, once, at a boundary. */
export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(typeof value === 'string' ? value : JSON.stringify(value));
}

/** The `code` of a Node system error (`ENOENT`, `EACCES`…), if any. */
export function errorCode(value: unknown): string | undefined {
  if (typeof value === 'object' && value !== null && 'code' in value) {
    const code = (value as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
