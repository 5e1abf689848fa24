import { z } from 'zod';
import { parseDuration } from './process.js';
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

/** Largest event, status or config payload: only a diff carries bulk. */
export const MAX_SMALL_PAYLOAD_BYTES = 1024 * 1024;

/**
 * Deepest JSON nesting FSO accepts. Messages are shallow; a deeply nested
 * payload would overflow the stack of whatever serializes it again.
 */
export const MAX_JSON_DEPTH = 64;

/** True when `value` nests deeper than `max` (iterative: never recurses itself). */
function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop() as [unknown, number];
    if (typeof item !== 'object' || item === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** Parses UTF-8 JSON without throwing, bounded in size and nesting depth. */
export function parseJson(payload: Buffer | string): JsonResult {
  const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  if (length > MAX_PAYLOAD_BYTES) return { ok: false, error: `payload of ${length} bytes exceeds ${MAX_PAYLOAD_BYTES}` };
  let value: unknown;
  try {
    value = JSON.parse(typeof payload === 'string' ? payload : payload.toString('utf8'));
  } catch (err) {
    return { ok: false, error: `not JSON: ${(err as Error).message}` };
  }
  if (nestsDeeperThan(value, MAX_JSON_DEPTH)) return { ok: false, error: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` };
  return { ok: true, value };
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

/**
 * A positive duration written as text (`500ms`, `10s`, `5m`, `24h`; plain
 * numbers are seconds), parsed to milliseconds: what a YAML or JSON file
 * says where the CLIs take `positiveDurationOption`.
 *
 * @example
 * z.strictObject({ window: positiveDurationSchema }).parse({ window: '1m' }) // { window: 60000 }
 */
export const positiveDurationSchema = z.string().transform((text, ctx) => {
  try {
    const ms = parseDuration(text);
    if (ms > 0) return ms;
    ctx.addIssue({ code: 'custom', message: 'must be more than 0' });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
  return z.NEVER;
});
