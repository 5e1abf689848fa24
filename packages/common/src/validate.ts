import type { z } from 'zod';
import { ConfigValidationError, InvalidAgentIdError } from './errors.js';
import { AGENT_ID_PATTERN, agentConfigSchema } from './schemas.js';
import type { AgentConfig } from './schemas.js';

/** One line per zod issue: `watch.0.path: path must be absolute`. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const where = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
    return `${where}: ${issue.message}`;
  });
}

/** Result of {@link parseJson}: the value, or why it is not JSON. */
export type JsonResult = { ok: true; value: unknown } | { ok: false; error: string };

/** Largest JSON payload FSO parses; bigger payloads are rejected unparsed. */
export const MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

/** Parses UTF-8 JSON without throwing, bounded in size. */
export function parseJson(payload: Buffer | string): JsonResult {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (length > MAX_PAYLOAD_BYTES) return { ok: false, error: `payload of ${length} bytes exceeds ${MAX_PAYLOAD_BYTES}` };
  try {
    return { ok: true, value: JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8')) };
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
}

/** Validates an agent config; throws {@link ConfigValidationError} naming each bad field. */
export function parseAgentConfig(value: unknown, source: string): AgentConfig {
  const result = agentConfigSchema.safeParse(value);
  if (!result.success) throw new ConfigValidationError(source, formatIssues(result.error));
  return result.data;
}

/** Throws {@link InvalidAgentIdError} unless `id` is a valid agent id. */
export function assertAgentId(id: string): string {
  if (!AGENT_ID_PATTERN.test(id)) throw new InvalidAgentIdError(id);
  return id;
}
